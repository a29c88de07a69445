package main

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The embed mode (-mode embed) measures issue 10's request coalescing:
// single-input /v1/embeddings requests, every text new (cache misses),
// from 1, 64 and 512 concurrent callers, through a proxy with coalescing
// off (max_inputs 1) and on (max_inputs 128, max_wait 5ms). The fake
// upstream (in process) takes -embed-latency per call whatever its size,
// as a real one roughly does. It prints req/s, p50 and p99 and upstream
// calls per request; coalesced p50 minus uncoalesced p50 is what the
// batcher adds.
//
//	go run ./bench -mode embed -duration 5s

const embedBenchConfig = `# Written by go run ./bench -mode embed; removed when it exits.
server:
  listen: 127.0.0.1:0
  data_dir: ${BENCH_DATA_DIR}
  log_level: warn
providers:
  - {name: up, type: openai, base_url: "${BENCH_UPSTREAM_URL}", api_key: x}
models:
  - name: emb
    type: embedding
    pricing: {input_per_mtok: 0.02, output_per_mtok: 0}
    deployments: [{provider: up, model: text-embedding-3-small}]
teams:
  - name: t
    api_keys: ["${BENCH_KEY}"]
    budget: {usd: 1000000000, period: month}
embeddings:
  batch: %s
`

// embedUpstream answers OpenAI embeddings (base64, 256 dimensions) after
// latency, and counts its calls.
func embedUpstream(latency time.Duration, calls *atomic.Int64) http.Handler {
	raw := make([]byte, 4*256)
	for i := range 256 {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(float32(i)/256))
	}
	vec := `"` + base64.StdEncoding.EncodeToString(raw) + `"`
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		var ask struct {
			Input []string `json:"input"`
		}
		_ = json.NewDecoder(r.Body).Decode(&ask)
		time.Sleep(latency) // the upstream's own time
		var sb strings.Builder
		sb.WriteString(`{"object":"list","data":[`)
		for i := range ask.Input {
			if i > 0 {
				sb.WriteByte(',')
			}
			fmt.Fprintf(&sb, `{"object":"embedding","index":%d,"embedding":%s}`, i, vec)
		}
		fmt.Fprintf(&sb, `],"model":"text-embedding-3-small","usage":{"prompt_tokens":%d,"total_tokens":%d}}`, 6*len(ask.Input), 6*len(ask.Input))
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, sb.String())
	})
}

func runEmbed(ctx context.Context, o *options) error {
	p, err := newProcs(false)
	if err != nil {
		return err
	}
	defer p.Close()
	var calls atomic.Int64
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	up := &http.Server{Handler: embedUpstream(o.embedLatency, &calls)}
	go up.Serve(ln)
	defer up.Close()
	bin := o.proxyBin
	if bin == "" {
		fmt.Fprintln(os.Stderr, "building ./cmd/proxy ...")
		if bin, err = p.buildProxy(ctx); err != nil {
			return err
		}
	}
	fmt.Printf("fake upstream: %v per call; %v per cell\n\n", o.embedLatency, o.dur)
	fmt.Printf("%-12s %8s %10s %9s %9s %16s\n", "mode", "callers", "req/s", "p50", "p99", "upstream/request")
	for _, m := range []struct{ name, batch string }{
		{"uncoalesced", "{max_inputs: 1, max_wait: 0s}"},
		{"coalesced", "{max_inputs: 128, max_wait: 5ms}"},
	} {
		cfg := filepath.Join(p.tmp, "embed-"+m.name+".yaml")
		if err := os.WriteFile(cfg, []byte(fmt.Sprintf(embedBenchConfig, m.batch)), 0o600); err != nil {
			return err
		}
		base, _, err := p.startProxy(ctx, proxySpec{bin: bin, config: cfg, upstream: "http://" + ln.Addr().String() + "/v1", key: o.key})
		if err != nil {
			return err
		}
		for _, conc := range []int{1, 64, 512} {
			before := calls.Load()
			lat := embedLoad(ctx, base, o.key, m.name, conc, o.dur)
			if len(lat) == 0 {
				return fmt.Errorf("%s, %d callers: no request succeeded", m.name, conc)
			}
			slices.Sort(lat)
			fmt.Printf("%-12s %8d %10.0f %9s %9s %16.3f\n", m.name, conc, float64(len(lat))/o.dur.Seconds(),
				lat[len(lat)/2].Round(10*time.Microsecond), lat[len(lat)*99/100].Round(10*time.Microsecond),
				float64(calls.Load()-before)/float64(len(lat)))
		}
	}
	return nil
}

// embedLoad runs conc callers for d, each sending single-input requests
// with new texts one after another, and returns the successes' latencies.
func embedLoad(ctx context.Context, base, key, tag string, conc int, d time.Duration) []time.Duration {
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: conc, DisableCompression: true}, Timeout: 30 * time.Second}
	defer hc.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var (
		mu  sync.Mutex
		out []time.Duration
		seq atomic.Int64
		wg  sync.WaitGroup
	)
	run := time.Now().UnixNano()
	for range conc {
		wg.Go(func() {
			for ctx.Err() == nil {
				body := fmt.Sprintf(`{"model":"emb","input":"bench %s %d text %d"}`, tag, run, seq.Add(1))
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/embeddings", strings.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+key)
				req.Header.Set("Content-Type", "application/json")
				t0 := time.Now()
				resp, err := hc.Do(req)
				if err != nil {
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					mu.Lock()
					out = append(out, time.Since(t0))
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	return out
}
