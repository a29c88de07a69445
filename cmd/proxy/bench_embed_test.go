package main

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// BenchmarkProxyEmbedCoalescing compares coalesced embeddings (max_inputs
// 128, max_wait 5ms: the defaults) with uncoalesced ones (max_inputs 1)
// through the real server, at 1, 64 and 512 concurrent callers each
// sending single-input requests with texts never seen before (every one a
// cache miss). The fake upstream takes benchUpstreamLatency per call, as a
// real one does, whatever the batch size. It reports req/s, p50_ms (the
// client's median latency: coalesced minus uncoalesced is the p50 the
// batcher adds) and upstream_calls/op.
//
//	go test ./cmd/proxy -run '^$' -bench EmbedCoalescing -benchtime 2000x
func BenchmarkProxyEmbedCoalescing(b *testing.B) {
	for _, mode := range []struct{ name, batch string }{
		{"uncoalesced", "{max_inputs: 1, max_wait: 0s}"},
		{"coalesced", "{max_inputs: 128, max_wait: 5ms}"},
	} {
		for _, conc := range []int{1, 64, 512} {
			b.Run(fmt.Sprintf("%s/callers=%d", mode.name, conc), func(b *testing.B) {
				benchEmbed(b, mode.batch, conc)
			})
		}
	}
}

// benchUpstreamLatency is the fake upstream's time per call.
const benchUpstreamLatency = 20 * time.Millisecond

const benchEmbedConfig = `
server:
  listen: 127.0.0.1:0
  data_dir: ${DATA_DIR}
providers:
  - {name: up, type: openai, base_url: "${FAKE_URL}/v1", api_key: sk-up}
models:
  - name: emb
    type: embedding
    pricing: {input_per_mtok: 0.02, output_per_mtok: 0}
    deployments: [{provider: up, model: text-embedding-3-small}]
teams:
  - name: t
    api_keys: ["sk-bench"]
    budget: {usd: 1000000, period: day}
embeddings:
  batch: BATCH
`

func benchEmbed(b *testing.B, batch string, conc int) {
	var calls atomic.Int64
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		body, _ := io.ReadAll(r.Body)
		time.Sleep(benchUpstreamLatency) // the upstream's own time, not synchronisation
		serveTextEmbeddings(w, body)
	}))
	defer up.Close()
	env := map[string]string{"FAKE_URL": up.URL, "DATA_DIR": b.TempDir()}
	cfg, err := ParseConfig([]byte(strings.Replace(benchEmbedConfig, "BATCH", batch, 1)), func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		b.Fatalf("ParseConfig: %v", err)
	}
	srv, err := buildServer(cfg, slog.New(slog.NewJSONHandler(io.Discard, nil)), prometheus.NewRegistry(), deps{})
	if err != nil {
		b.Fatalf("buildServer: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	tr := &http.Transport{MaxIdleConns: 1024, MaxIdleConnsPerHost: 1024, DisableCompression: true}
	defer func() {
		tr.CloseIdleConnections()
		_ = srv.Shutdown(time.Second)
		<-served
	}()
	hc := &http.Client{Transport: tr}
	url := "http://" + ln.Addr().String() + "/v1/embeddings"
	var next atomic.Int64
	lat := make([]time.Duration, b.N)
	run := fmt.Sprint(time.Now().UnixNano()) // texts never seen before
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for range conc {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= b.N {
					return
				}
				body := fmt.Sprintf(`{"model":"emb","input":"bench %s text number %d"}`, run, i)
				t0 := time.Now()
				req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
				req.Header.Set("Authorization", "Bearer sk-bench")
				req.Header.Set("Content-Type", "application/json")
				resp, err := hc.Do(req)
				if err != nil {
					b.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					b.Errorf("status %d", resp.StatusCode)
					return
				}
				lat[i] = time.Since(t0)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "req/s")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50_ms")
	b.ReportMetric(float64(calls.Load())/float64(b.N), "upstream_calls/op")
}
