package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"llmproxy/router"
)

// The benchmarks run the real server on loopback in front of a fast fake
// upstream, with every feature of a typical deployment on: a budget and a
// rate limit (in-process guard), the SQLite usage ledger, metrics and the
// JSON access log (to io.Discard, so the formatting cost stays in).
//
//	go test ./cmd/proxy -run '^$' -bench 'Proxy|Metrics|SSE' -benchmem
//	go test ./cmd/proxy -run '^$' -bench ProxyChat -cpuprofile cpu.out

const benchConfig = `
server:
  listen: 127.0.0.1:0
  data_dir: ${DATA_DIR}
providers:
  - name: up
    type: openai
    base_url: ${FAKE_URL}/v1
    api_key: sk-up
models:
  - name: bench
    pricing: {input_per_mtok: 0.15, output_per_mtok: 0.6}
    deployments:
      - provider: up
        model: bench-upstream
teams:
  - name: t
    api_keys: ["sk-bench"]
    budget: {usd: 1000000, period: day}
    rate_limit: {rpm: 100000000, tpm: 1000000000}
`

const benchReply = `{"id":"chatcmpl-bench","object":"chat.completion","created":1733000000,"model":"bench-upstream","system_fingerprint":"fp_bench",` +
	`"choices":[{"index":0,"message":{"role":"assistant","content":"Hello! This is a fixed reply from the fast fake upstream used by the benchmarks.","refusal":null},"logprobs":null,"finish_reason":"stop"}],` +
	`"usage":{"prompt_tokens":24,"completion_tokens":17,"total_tokens":41,"prompt_tokens_details":{"cached_tokens":0},"completion_tokens_details":{"reasoning_tokens":0}}}`

const benchRequest = `{"model":"bench","messages":[{"role":"system","content":"You are terse."},{"role":"user","content":"Say hello in one short sentence."}],"max_tokens":64}`

// benchUpstream answers every chat call at once: the fixed reply, or with
// stream:true, chunks events flushed one by one without delay.
func benchUpstream(chunks int) http.Handler {
	var ev bytes.Buffer
	ev.WriteString(`data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1733000000,"model":"bench-upstream","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}` + "\n\n")
	role := ev.Len()
	for i := range chunks {
		fmt.Fprintf(&ev, `data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1733000000,"model":"bench-upstream","choices":[{"index":0,"delta":{"content":" tok%d"},"finish_reason":null}]}`+"\n\n", i)
	}
	ev.WriteString(`data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1733000000,"model":"bench-upstream","choices":[],"usage":{"prompt_tokens":24,"completion_tokens":20,"total_tokens":44}}` + "\n\ndata: [DONE]\n\n")
	events := ev.Bytes()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if !bytes.Contains(body, []byte(`"stream":true`)) {
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, benchReply)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		f := w.(http.Flusher)
		w.Write(events[:role])
		f.Flush()
		for rest := events[role:]; len(rest) > 0; {
			n := bytes.Index(rest, []byte("\n\n")) + 2
			w.Write(rest[:n])
			f.Flush()
			rest = rest[n:]
		}
	})
}

// startBenchProxy starts the fake and the proxy; both stop in b.Cleanup.
func startBenchProxy(b *testing.B, chunks int) (url string, hc *http.Client) {
	b.Helper()
	return startBenchProxyWith(b, chunks, benchConfig, nil)
}

// startBenchProxyWith is startBenchProxy with config (benchConfig and
// more) and extra ${NAME} values.
func startBenchProxyWith(b *testing.B, chunks int, config string, extra map[string]string) (url string, hc *http.Client) {
	b.Helper()
	up := httptest.NewUnstartedServer(benchUpstream(chunks))
	// Upstream dials per request: a pool that works keeps this near 0.
	var dials atomic.Int64
	up.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			dials.Add(1)
		}
	}
	up.Start()
	b.Cleanup(func() { b.ReportMetric(float64(dials.Load())/float64(max(b.N, 1)), "dials/op") })
	b.Cleanup(up.Close) // after the proxy's cleanup (LIFO)
	env := map[string]string{"FAKE_URL": up.URL, "DATA_DIR": b.TempDir()}
	for k, v := range extra {
		env[k] = v
	}
	p := startProxy(b, parseTestConfig(b, config, env), withoutLogCapture(),
		withTransport(func(tr *http.Transport) {
			tr.Proxy, tr.MaxIdleConns, tr.MaxIdleConnsPerHost, tr.DisableCompression = nil, 256, 256, true
		}))
	return p.url, p.hc
}

func benchPost(b *testing.B, hc *http.Client, url, body string) []byte {
	req, _ := http.NewRequest(http.MethodPost, url+"/v1/chat/completions", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer sk-bench")
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	out, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		b.Fatalf("status %d, err %v: %s", resp.StatusCode, err, out)
	}
	return out
}

// BenchmarkProxyChat is one non-streamed request through the whole proxy.
// allocs/op counts the client, the proxy and the fake (all in process).
func BenchmarkProxyChat(b *testing.B) {
	url, hc := startBenchProxy(b, 0)
	benchPost(b, hc, url, benchRequest) // warm the connections
	b.ReportAllocs()
	for b.Loop() {
		benchPost(b, hc, url, benchRequest)
	}
}

// benchRAGConfig is benchConfig with retrieval configured (issue 12): a
// top-level rag block and another alias, docs, that retrieves for every
// request. The benchmark's requests go to "bench" and name no store, so
// RAG must cost them nothing measurable: compare with BenchmarkProxyChat.
var benchRAGConfig = strings.Replace(benchConfig, "\nteams:\n", `
  - name: docs
    rag: {vector_stores: [handbook], top_k: 5}
    deployments:
      - provider: up
        model: bench-upstream
rag:
  max_context_tokens: 2000
teams:
`, 1)

// BenchmarkProxyChatRAGConfigured is BenchmarkProxyChat with RAG
// configured but not asked for.
func BenchmarkProxyChatRAGConfigured(b *testing.B) {
	url, hc := startBenchProxyWith(b, 0, benchRAGConfig, nil)
	benchPost(b, hc, url, benchRequest)
	b.ReportAllocs()
	for b.Loop() {
		benchPost(b, hc, url, benchRequest)
	}
}

// BenchmarkProxyChatParallel is BenchmarkProxyChat from GOMAXPROCS×8
// concurrent clients.
func BenchmarkProxyChatParallel(b *testing.B) {
	url, hc := startBenchProxy(b, 0)
	benchPost(b, hc, url, benchRequest)
	b.ReportAllocs()
	b.SetParallelism(8)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			benchPost(b, hc, url, benchRequest)
		}
	})
}

// BenchmarkProxyStream is one streamed request of 20 content chunks.
func BenchmarkProxyStream(b *testing.B) {
	url, hc := startBenchProxy(b, 20)
	body := strings.Replace(benchRequest, `"max_tokens":64`, `"max_tokens":64,"stream":true`, 1)
	if out := benchPost(b, hc, url, body); !bytes.HasSuffix(out, []byte("data: [DONE]\n\n")) {
		b.Fatalf("stream did not end with [DONE]: %q", out)
	}
	b.ReportAllocs()
	for b.Loop() {
		benchPost(b, hc, url, body)
	}
}

// BenchmarkMetricsRequest is the per-request metric work: the access
// record's counters and histogram, and one upstream attempt.
func BenchmarkMetricsRequest(b *testing.B) {
	m := newMetrics(prometheus.NewRegistry())
	rec := &reqRecord{route: routeChat, model: "bench", modelUsed: "bench-upstream", provider: "up",
		usage: router.Usage{PromptTokens: 24, CompletionTokens: 17}}
	b.ReportAllocs()
	for b.Loop() {
		m.Attempt("up", "bench-upstream", "ok", 3*time.Millisecond)
		m.request(rec, "ok", 5*time.Millisecond)
	}
}

// sliceStream hands out a fixed list of chunks.
type sliceStream struct {
	chunks []*router.Chunk
	i      int
}

func (s *sliceStream) Next() (*router.Chunk, error) {
	if s.i >= len(s.chunks) {
		return nil, io.EOF
	}
	s.i++
	return s.chunks[s.i-1], nil
}

func (s *sliceStream) Close() error { return nil }

// BenchmarkSSEWrite is the stream writer loop alone: 20 chunks relayed to
// a buffered writer, with the access record and metrics at the end.
// ns/op is per stream.
func BenchmarkSSEWrite(b *testing.B) {
	chunks := make([]*router.Chunk, 20)
	for i := range chunks {
		chunks[i] = &router.Chunk{Data: fmt.Appendf(nil, `{"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1733000000,"model":"bench-upstream","choices":[{"index":0,"delta":{"content":" tok%d"},"finish_reason":null}]}`, i)}
	}
	s := &Server{log: slog.New(slog.NewJSONHandler(io.Discard, nil)), metrics: newMetrics(prometheus.NewRegistry()), base: context.Background()}
	w := bufio.NewWriter(io.Discard)
	req := &router.ChatRequest{Model: "bench", Stream: true}
	b.ReportAllocs()
	for b.Loop() {
		rec := &reqRecord{route: routeChat, model: "bench", start: time.Now(), stream: true}
		s.streamBody(&sliceStream{chunks: chunks}, func() {}, req, rec)(w)
	}
}
