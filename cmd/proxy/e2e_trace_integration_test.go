//go:build integration

package main

// The tracing done-when test: a real Jaeger (the all-in-one binary built
// from tools/go.mod by scripts/jaeger.sh, which make test runs) receives
// the proxy's spans over OTLP, and its query API must show one trace with
// the server span, both attempts of a fallback with the GenAI attributes,
// the budget's spans and their Redis calls.

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// jaegerConfig runs Jaeger on the loopback ports given, memory storage,
// no self-metrics (their default port 8888 would clash between runs).
const jaegerConfig = `
service:
  extensions: [jaeger_storage, jaeger_query]
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [jaeger_storage_exporter]
  telemetry:
    metrics:
      level: none
    logs:
      level: warn
extensions:
  jaeger_query:
    storage:
      traces: mem
    http:
      endpoint: 127.0.0.1:%d
    grpc:
      endpoint: 127.0.0.1:%d
  jaeger_storage:
    backends:
      mem:
        memory:
          max_traces: 1000
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:%d
      http:
        endpoint: 127.0.0.1:%d
exporters:
  jaeger_storage_exporter:
    trace_storage: mem
`

// jaeger is a running Jaeger.
type jaeger struct {
	otlpHTTP string // http://127.0.0.1:port, OTLP over HTTP
	query    string // http://127.0.0.1:port, the query API
}

// startJaeger runs the binary LLMPROXY_TEST_JAEGER names until the test
// ends. Without it the test skips, or fails under CI (make test builds
// it).
func startJaeger(t *testing.T) *jaeger {
	t.Helper()
	bin := os.Getenv("LLMPROXY_TEST_JAEGER")
	if bin == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("CI: LLMPROXY_TEST_JAEGER is required (make test builds it with scripts/jaeger.sh)")
		}
		t.Skip("needs LLMPROXY_TEST_JAEGER: the jaeger binary (bash scripts/jaeger.sh builds it and prints its path)")
	}
	ports := freePorts(t, 4)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "jaeger.yaml")
	if err := os.WriteFile(cfg, fmt.Appendf(nil, jaegerConfig, ports[0], ports[1], ports[2], ports[3]), 0o600); err != nil {
		t.Fatal(err)
	}
	var out syncBuffer
	cmd := exec.Command(bin, "--config", cfg)
	cmd.Stdout, cmd.Stderr = &out, &out
	// Jaeger traces itself to localhost:4317 by default: not here.
	cmd.Env = append(os.Environ(), "OTEL_TRACES_EXPORTER=none", "OTEL_SDK_DISABLED=true")
	if err := cmd.Start(); err != nil {
		t.Fatalf("start jaeger: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("jaeger output:\n%s", out.String())
		}
	})
	j := &jaeger{otlpHTTP: fmt.Sprintf("http://127.0.0.1:%d", ports[3]), query: fmt.Sprintf("http://127.0.0.1:%d", ports[0])}
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case err := <-exited:
			t.Fatalf("jaeger exited: %v\n%s", err, out.String())
		default:
		}
		if j.ready() {
			return j
		}
		if time.Now().After(deadline) {
			t.Fatalf("jaeger not ready within 60s:\n%s", out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// ready reports whether the query API answers and the OTLP port accepts.
func (j *jaeger) ready() bool {
	resp, err := http.Get(j.query + "/api/services")
	if err != nil {
		return false
	}
	resp.Body.Close()
	c, err := net.DialTimeout("tcp", strings.TrimPrefix(j.otlpHTTP, "http://"), time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return resp.StatusCode == http.StatusOK
}

// freePorts reserves n loopback ports the kernel says are free.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var out []int
	var lns []net.Listener
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		out = append(out, ln.Addr().(*net.TCPAddr).Port)
	}
	for _, ln := range lns {
		ln.Close()
	}
	return out
}

// jaegerSpan is a span as Jaeger's query API returns it.
type jaegerSpan struct {
	SpanID        string `json:"spanID"`
	OperationName string `json:"operationName"`
	ProcessID     string `json:"processID"`
	References    []struct {
		RefType string `json:"refType"`
		SpanID  string `json:"spanID"`
	} `json:"references"`
	Tags []struct {
		Key   string `json:"key"`
		Value any    `json:"value"`
	} `json:"tags"`
	Logs []struct {
		Fields []struct {
			Key   string `json:"key"`
			Value any    `json:"value"`
		} `json:"fields"`
	} `json:"logs"`
}

func (s *jaegerSpan) tag(k string) string {
	for _, t := range s.Tags {
		if t.Key == k {
			return fmt.Sprint(t.Value)
		}
	}
	return ""
}

func (s *jaegerSpan) parent() string {
	for _, r := range s.References {
		if r.RefType == "CHILD_OF" {
			return r.SpanID
		}
	}
	return ""
}

func (s *jaegerSpan) event(name string) bool {
	for _, l := range s.Logs {
		for _, f := range l.Fields {
			if f.Key == "event" && f.Value == name {
				return true
			}
		}
	}
	return false
}

// jaegerTrace is one trace from the query API.
type jaegerTrace struct {
	Spans     []jaegerSpan `json:"spans"`
	Processes map[string]struct {
		ServiceName string `json:"serviceName"`
	} `json:"processes"`
}

// trace fetches a trace by id; nil while Jaeger does not have it.
func (j *jaeger) trace(t *testing.T, id string) *jaegerTrace {
	resp, err := http.Get(j.query + "/api/traces/" + id)
	if err != nil {
		t.Fatalf("jaeger query: %v", err)
	}
	defer resp.Body.Close()
	var body struct {
		Data []jaegerTrace `json:"data"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&body) != nil || len(body.Data) == 0 {
		return nil
	}
	return &body.Data[0]
}

func (tr *jaegerTrace) named(name string) []*jaegerSpan {
	var out []*jaegerSpan
	for i := range tr.Spans {
		if tr.Spans[i].OperationName == name {
			out = append(out, &tr.Spans[i])
		}
	}
	return out
}

const traceConfig = `
server:
  listen: 127.0.0.1:0
providers:
  - {name: a, type: openai, base_url: "${FAKE_A}/v1", api_key: sk-upstream-a}
  - {name: b, type: openai, base_url: "${FAKE_B}/v1", api_key: sk-upstream-b}
models:
  - name: traced
    strategy: priority
    pricing: {input_per_mtok: 1, output_per_mtok: 2}
    deployments:
      - {provider: a, model: model-a, priority: 0}
      - {provider: b, model: model-b, priority: 1}
teams:
  - name: tracers
    api_keys: [sk-trace-team]
    budget: {usd: 10, period: day}
redis: {url: "${REDIS_URL}", prefix: "${REDIS_PREFIX}", on_error: fail_closed}
database: {url: "${DATABASE_URL}"}
telemetry:
  endpoint: "${OTLP}"
  service_name: "${SERVICE}"
`

// TestE2ETraceInJaeger is the tracing done-when test: a streamed chat
// request with a client traceparent, a fallback (the first deployment
// answers 500, the second streams) and a budget in Redis ends up in Jaeger
// as one trace holding the server span, both attempt spans with the GenAI
// attributes, and the budget's admission and settlement with their Redis
// calls; each upstream saw the trace in its traceparent, with its own
// attempt span as the parent. The stream is relayed event by event with
// tracing on: the client reads the first content before the upstream
// sends the rest.
func TestE2ETraceInJaeger(t *testing.T) {
	st := mustSharedStores(t)
	j := startJaeger(t)
	a, b := newFakeUpstream(t), newFakeUpstream(t)
	a.handle(func(w http.ResponseWriter, r *http.Request, body []byte) {
		writeUpstreamError(w, http.StatusInternalServerError, `{"error":{"message":"boom","type":"server_error","param":null,"code":null}}`)
	})
	release := make(chan struct{})
	b.handle(func(w http.ResponseWriter, r *http.Request, body []byte) {
		w.Header().Set("Content-Type", "text/event-stream")
		f := w.(http.Flusher)
		ev := func(s string) { fmt.Fprintf(w, "data: %s\n\n", s); f.Flush() }
		head := `{"id":"chatcmpl-traced","object":"chat.completion.chunk","created":1,"model":"model-b-2025","choices":[{"index":0,`
		ev(head + `"delta":{"role":"assistant","content":""},"finish_reason":null}]}`)
		ev(head + `"delta":{"content":"first"},"finish_reason":null}]}`)
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		ev(head + `"delta":{"content":" second"},"finish_reason":null}]}`)
		ev(head + `"delta":{},"finish_reason":"stop"}]}`)
		ev(`{"id":"chatcmpl-traced","object":"chat.completion.chunk","created":1,"model":"model-b-2025","choices":[],"usage":{"prompt_tokens":11,"completion_tokens":2,"total_tokens":13}}`)
		ev("[DONE]")
	})
	var tag [4]byte
	_, _ = rand.Read(tag[:])
	service := "llmproxy-trace-" + hex.EncodeToString(tag[:])
	p := startProxy(t, parseTestConfig(t, traceConfig, map[string]string{"FAKE_A": a.srv.URL, "FAKE_B": b.srv.URL,
		"REDIS_URL": st.redisURL, "REDIS_PREFIX": st.prefix, "DATABASE_URL": st.dbURL, "OTLP": j.otlpHTTP, "SERVICE": service}))

	var tid, sid [16]byte
	_, _ = rand.Read(tid[:])
	_, _ = rand.Read(sid[:8])
	traceID, clientSpan := hex.EncodeToString(tid[:]), hex.EncodeToString(sid[:8])
	req, _ := http.NewRequestWithContext(withTimeout(t), http.MethodPost, p.url+"/v1/chat/completions",
		strings.NewReader(`{"model":"traced","stream":true,"max_tokens":50,"messages":[{"role":"user","content":"`+promptCanary+`"}]}`))
	req.Header.Set("Authorization", "Bearer sk-trace-team")
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("traceparent", "00-"+traceID+"-"+clientSpan+"-01")
	resp, err := p.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	rd := bufio.NewReader(resp.Body)
	var got []string
	for {
		ev, err := readEvent(rd)
		if err != nil {
			t.Fatalf("stream ended early after %v: %v", got, err)
		}
		got = append(got, ev)
		if strings.Contains(ev, `"first"`) {
			close(release) // the first content reached the client before the upstream sent the rest
		}
		if ev == "[DONE]" {
			break
		}
	}
	if err := p.stop(5 * time.Second); err != nil { // flushes the spans
		t.Fatalf("Shutdown: %v", err)
	}

	// Each upstream saw the trace, with its own attempt span as parent.
	parents := map[string]string{}
	for name, f := range map[string]*fakeUpstream{"a": a, "b": b} {
		tp := f.last(t).Header.Get("traceparent")
		parts := strings.Split(tp, "-")
		if len(parts) != 4 || parts[1] != traceID || parts[2] == clientSpan || parts[3] != "01" {
			t.Fatalf("upstream %s got traceparent %q; want trace %s, a span of the proxy's, sampled", name, tp, traceID)
		}
		parents[name] = parts[2]
	}

	var tr *jaegerTrace
	want := []string{"POST /v1/chat/completions", "chat model-a", "chat model-b", "budget.admit", "budget.settle"}
	if !eventually(30*time.Second, func() bool {
		tr = j.trace(t, traceID)
		if tr == nil {
			return false
		}
		for _, n := range want {
			if len(tr.named(n)) == 0 {
				return false
			}
		}
		return true
	}) {
		var names []string
		if tr != nil {
			for _, s := range tr.Spans {
				names = append(names, s.OperationName)
			}
		}
		t.Fatalf("Jaeger has not the spans %v of trace %s; has %v", want, traceID, names)
	}
	server := tr.named("POST /v1/chat/completions")[0]
	if server.parent() != clientSpan || server.tag("span.kind") != "server" || server.tag("http.response.status_code") != "200" {
		t.Errorf("server span: parent %s, kind %s, status %s; want the client's span, server, 200",
			server.parent(), server.tag("span.kind"), server.tag("http.response.status_code"))
	}
	if svc := tr.Processes[server.ProcessID].ServiceName; svc != service {
		t.Errorf("service.name = %q; want %q", svc, service)
	}
	first, second := tr.named("chat model-a")[0], tr.named("chat model-b")[0]
	for _, s := range []*jaegerSpan{first, second} {
		for k, v := range map[string]string{"span.kind": "client", "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
			"gen_ai.request.max_tokens": "50", "server.address": "127.0.0.1", "llmproxy.model_alias": "traced"} {
			if got := s.tag(k); got != v {
				t.Errorf("%s: %s = %q; want %q", s.OperationName, k, got, v)
			}
		}
		if s.parent() != server.SpanID {
			t.Errorf("%s: parent %s; want the server span %s", s.OperationName, s.parent(), server.SpanID)
		}
	}
	if first.tag("error.type") != "upstream" || first.SpanID != parents["a"] {
		t.Errorf("first attempt: error.type %q, span %s (upstream a saw parent %s); want upstream and the same span",
			first.tag("error.type"), first.SpanID, parents["a"])
	}
	for k, v := range map[string]string{"gen_ai.request.model": "model-b", "gen_ai.response.model": "model-b-2025",
		"gen_ai.response.id": "chatcmpl-traced", "gen_ai.usage.input_tokens": "11", "gen_ai.usage.output_tokens": "2"} {
		if got := second.tag(k); got != v {
			t.Errorf("second attempt: %s = %q; want %q", k, got, v)
		}
	}
	if fr := second.tag("gen_ai.response.finish_reasons"); !strings.Contains(fr, "stop") || second.tag("error.type") != "" {
		t.Errorf("second attempt: finish_reasons %q, error.type %q; want stop and no error", fr, second.tag("error.type"))
	}
	if !second.event("gen_ai.first_chunk") || second.SpanID != parents["b"] {
		t.Errorf("second attempt: first-chunk event %v, span %s (upstream b saw parent %s)", second.event("gen_ai.first_chunk"), second.SpanID, parents["b"])
	}
	admit := tr.named("budget.admit")[0]
	if admit.parent() != server.SpanID || admit.tag("llmproxy.team") != "tracers" {
		t.Errorf("budget.admit: parent %s, team %q; want the server span, tracers", admit.parent(), admit.tag("llmproxy.team"))
	}
	redisUnderAdmit := false
	for i := range tr.Spans {
		s := &tr.Spans[i]
		if s.parent() == admit.SpanID && (s.tag("db.system.name") == "redis" || s.tag("db.system") == "redis") {
			redisUnderAdmit = true
		}
	}
	if !redisUnderAdmit {
		t.Errorf("no Redis span (redisotel) under budget.admit")
	}
	if settle := tr.named("budget.settle")[0]; settle.tag("llmproxy.budget.tokens") != "13" {
		t.Errorf("budget.settle: tokens %q; want 13", settle.tag("llmproxy.budget.tokens"))
	}
	raw, _ := json.Marshal(tr)
	for _, secret := range []string{promptCanary, "sk-trace-team", "sk-upstream-a", "sk-upstream-b"} {
		if strings.Contains(string(raw), secret) {
			t.Errorf("the trace holds %q", secret)
		}
	}
	if !strings.Contains(p.logs.String(), `"trace_id":"`+traceID+`"`) {
		t.Errorf("no access line with trace_id %s:\n%s", traceID, p.logs.String())
	}
}
