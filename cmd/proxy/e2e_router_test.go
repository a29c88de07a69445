package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The router's end-to-end tests: a proxy in front of two fake upstreams
// ("a" and "b") behind one alias, with faults injected into "a".

// routerConfig is the test config; %s is the alias's strategy.
const routerConfig = `
server:
  listen: 127.0.0.1:0
  master_key: sk-master
providers:
  - {name: a, type: openai, base_url: "${A_URL}/v1", api_key: k}
  - {name: b, type: openai, base_url: "${B_URL}/v1", api_key: k}
router:
  max_attempts: 3
  breaker: {failure_ratio: 0.5, min_requests: 4, window: 60s, open_for: 400ms, half_open_probes: 1}
  timeouts: {first_token: 2s, idle: 2s, total: 10s}
models:
  - name: ha
    strategy: %s
    deployments:
      - {provider: a, model: gpt-4o-mini}
      - {provider: b, model: gpt-4o-mini}
  - name: solo
    fallbacks: [ha]
    deployments:
      - {provider: a, model: solo-model}
teams:
  - name: default
    api_keys: ["sk-test"]
`

type routerE2E struct {
	*proxy
	a, b *fakeUpstream
}

func startRouterE2E(t *testing.T, strategy string, opts ...proxyOption) *routerE2E {
	t.Helper()
	a, b := newFakeUpstream(t), newFakeUpstream(t)
	e := startRouterProxy(t, fmt.Sprintf(routerConfig, strategy), map[string]string{"A_URL": a.srv.URL, "B_URL": b.srv.URL}, io.Discard, opts...)
	e.a, e.b = a, b
	return e
}

// startRouterProxy starts a proxy with config text (its ${NAME}s taken
// from env) through startProxy, also logging to logs; a and b are left
// for the caller to set.
func startRouterProxy(t *testing.T, config string, env map[string]string, logs io.Writer, opts ...proxyOption) *routerE2E {
	t.Helper()
	if logs != io.Discard {
		opts = append([]proxyOption{withLogTee(logs)}, opts...)
	}
	return &routerE2E{proxy: startProxy(t, parseTestConfig(t, config, env), opts...)}
}

// chat sends one request and returns the status, headers and body.
func (e *routerE2E) chat(t *testing.T, model string, stream bool, hdr ...string) (int, http.Header, string) {
	t.Helper()
	body := fmt.Sprintf(`{"model":%q,"stream":%v,"messages":[{"role":"user","content":"hi"}]}`, model, stream)
	return e.call(t, "POST", "/v1/chat/completions", body, append([]string{"Authorization", "Bearer sk-test"}, hdr...)...)
}

func (e *routerE2E) call(t *testing.T, method, path, body string, hdr ...string) (int, http.Header, string) {
	t.Helper()
	req, _ := http.NewRequest(method, e.url+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := e.hc.Do(req)
	if err != nil {
		t.Errorf("%s %s: %v", method, path, err)
		return 0, nil, ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// ok reports whether a reply is a complete success: 200 and, for a
// stream, [DONE] with no error event.
func ok(status int, body string, stream bool) bool {
	if status != 200 {
		return false
	}
	if stream {
		return strings.HasSuffix(strings.TrimSpace(body), "data: [DONE]") && !strings.Contains(body, `"error"`)
	}
	return strings.Contains(body, `"chat.completion"`)
}

// TestE2ERouterKillOneUpstream: with one of two upstreams killed under
// load, no request that starts after the kill sees a failure, streamed or
// not. A request in flight at the kill may only fail honestly: a stream
// already past its commit point (content sent) ends with an error event
// and no [DONE]; a non-streamed request never fails (nothing reached the
// client, so the router retries it on the other upstream).
func TestE2ERouterKillOneUpstream(t *testing.T) {
	e := startRouterE2E(t, "weighted")
	var killed atomic.Bool
	var failures, cut atomic.Int64
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 15 {
				stream := (w+i)%2 == 0
				afterKill := killed.Load()
				status, _, body := e.chat(t, "ha", stream)
				switch {
				case ok(status, body, stream):
				case stream && !afterKill && honestCut(status, body):
					cut.Add(1) // in flight at the kill, past its commit point
				default:
					failures.Add(1)
					t.Errorf("request failed (stream %v, started after the kill %v): %d %s", stream, afterKill, status, body)
				}
				if w == 0 && i == 4 {
					e.a.srv.CloseClientConnections()
					e.a.srv.Listener.Close() // "a" is gone: refused from now on
					killed.Store(true)
				}
			}
		}()
	}
	wg.Wait()
	t.Logf("%d streams in flight at the kill ended with an error event after their content", cut.Load())
	if failures.Load() != 0 {
		t.Errorf("%d client-visible failures; want 0", failures.Load())
	}
}

// honestCut reports a stream cut after its commit point: 200, some
// content, then an error event and no [DONE].
func honestCut(status int, body string) bool {
	return status == 200 && strings.Contains(body, `"content"`) &&
		strings.Contains(body, `data: {"error"`) && !strings.Contains(body, "[DONE]")
}

// TestE2ERouterPreCommitFailover: an error event after the role chunk is
// invisible; a cut after content ends the stream with an error event and
// no [DONE].
func TestE2ERouterPreCommitFailover(t *testing.T) {
	e := startRouterE2E(t, "priority")
	e.a.handle(func(w http.ResponseWriter, r *http.Request, body []byte) {
		sw := newSSEWriter(w)
		sw.event(chunks(defaultReply, false)[0])
		sw.raw(`data: {"error":{"message":"overloaded","type":"server_error"}}` + "\n\n")
	})
	status, h, body := e.chat(t, "ha", true)
	if !ok(status, body, true) || h.Get("x-llmproxy-provider") != "b" || h.Get("x-llmproxy-attempts") != "2" {
		t.Errorf("pre-commit error: %d provider %q attempts %q body %s; want b's stream after 2 attempts", status, h.Get("x-llmproxy-provider"), h.Get("x-llmproxy-attempts"), body)
	}
	if strings.Count(body, `"role":"assistant"`) != 1 {
		t.Errorf("client saw %d role chunks; want 1 (a's was held, not sent)", strings.Count(body, `"role":"assistant"`))
	}
	e.a.handle(func(w http.ResponseWriter, r *http.Request, body []byte) {
		sw := newSSEWriter(w)
		cs := chunks(defaultReply, false)
		sw.event(cs[0])
		sw.event(cs[1])
		panic(http.ErrAbortHandler) // cut the connection after content
	})
	_, _, body = e.chat(t, "ha", true)
	if strings.Contains(body, "[DONE]") || !strings.Contains(body, `data: {"error"`) || !strings.Contains(body, "Hello") {
		t.Errorf("post-commit cut: body %s; want the content, then an error event, no [DONE]", body)
	}
}

// TestE2ERouterRetryAfter: a 429 with Retry-After: 2 keeps every request
// away from that deployment for 2 s.
func TestE2ERouterRetryAfter(t *testing.T) {
	e := startRouterE2E(t, "priority")
	e.a.handle(func(w http.ResponseWriter, r *http.Request, body []byte) {
		w.Header().Set("Retry-After", "2")
		writeUpstreamError(w, 429, `{"error":{"message":"Rate limit reached","type":"requests","param":null,"code":"rate_limit_exceeded"}}`)
	})
	start := time.Now()
	for time.Since(start) < 1800*time.Millisecond {
		if status, _, body := e.chat(t, "ha", false); !ok(status, body, false) {
			t.Fatalf("request failed: %d %s", status, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n := e.a.count(); n != 1 {
		t.Errorf("rate-limited upstream got %d requests within its Retry-After; want 1", n)
	}
	time.Sleep(time.Until(start.Add(2100 * time.Millisecond)))
	e.chat(t, "ha", false)
	if n := e.a.count(); n != 2 {
		t.Errorf("after Retry-After the upstream got %d requests in all; want 2", n)
	}
}

// TestE2ERouterBreaker: an upstream failing half its requests opens its
// breaker within the window, traffic moves to the other, and one probe
// after open_for closes it again.
func TestE2ERouterBreaker(t *testing.T) {
	e := startRouterE2E(t, "priority")
	var n atomic.Int64
	var healthy atomic.Bool
	e.a.handle(func(w http.ResponseWriter, r *http.Request, body []byte) {
		if !healthy.Load() && n.Add(1)%2 == 0 {
			writeUpstreamError(w, 500, `{"error":{"message":"boom","type":"server_error","param":null,"code":null}}`)
			return
		}
		serveChat(w, body, defaultReply)
	})
	for range 20 {
		if status, _, body := e.chat(t, "ha", false); !ok(status, body, false) {
			t.Fatalf("request failed: %d %s", status, body)
		}
	}
	if got := e.a.count(); got != 4 {
		t.Errorf("half-failing upstream got %d requests; want 4 (2 failures of 4 reach the 0.5 ratio)", got)
	}
	if st := e.breaker(t, "a/gpt-4o-mini"); st != "open" {
		t.Errorf("breaker = %q; want open", st)
	}
	if g := e.gauge(t, "a/gpt-4o-mini"); g != 2 {
		t.Errorf("llmproxy_breaker_state = %v; want 2", g)
	}
	healthy.Store(true)
	time.Sleep(450 * time.Millisecond)
	_, h, _ := e.chat(t, "ha", false)
	if h.Get("x-llmproxy-provider") != "a" || e.breaker(t, "a/gpt-4o-mini") != "closed" {
		t.Errorf("after open_for: provider %q, breaker %q; want the probe on a to close it", h.Get("x-llmproxy-provider"), e.breaker(t, "a/gpt-4o-mini"))
	}
}

// breaker reads a deployment's breaker state from /admin/deployments.
func (e *routerE2E) breaker(t *testing.T, id string) string {
	t.Helper()
	_, _, body := e.call(t, "GET", "/admin/deployments", "", "Authorization", "Bearer sk-master")
	var out struct {
		Data []struct{ ID, Breaker string }
	}
	json.Unmarshal([]byte(body), &out)
	for _, d := range out.Data {
		if d.ID == id {
			return d.Breaker
		}
	}
	t.Fatalf("/admin/deployments has no %s: %s", id, body)
	return ""
}

func (e *routerE2E) gauge(t *testing.T, id string) float64 {
	t.Helper()
	mfs, err := e.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "llmproxy_breaker_state" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "deployment" && l.GetValue() == id {
					return m.GetGauge().GetValue()
				}
			}
		}
	}
	return -1
}

// TestE2ERouterHeadersExplainAdmin covers the fallback headers, route
// explain (which calls no upstream), the admin auth and the timeout header.
func TestE2ERouterHeadersExplainAdmin(t *testing.T) {
	e := startRouterE2E(t, "priority")
	e.a.handle(func(w http.ResponseWriter, r *http.Request, body []byte) {
		if bytes.Contains(body, []byte("solo-model")) {
			writeUpstreamError(w, 503, `{"error":{"message":"down","type":"server_error","param":null,"code":null}}`)
			return
		}
		serveChat(w, body, defaultReply)
	})
	_, h, _ := e.chat(t, "solo", false)
	if h.Get("x-llmproxy-fallback-from") != "solo" || h.Get("x-llmproxy-model") != "ha;upstream=gpt-4o-mini" {
		t.Errorf("fallback headers: from %q model %q; want solo and ha;upstream=gpt-4o-mini", h.Get("x-llmproxy-fallback-from"), h.Get("x-llmproxy-model"))
	}
	before := e.a.count() + e.b.count()
	status, _, body := e.call(t, "POST", "/v1/route/explain", `{"model":"solo","messages":[{"role":"user","content":"hi"}]}`, "Authorization", "Bearer sk-test")
	if status != 200 || !strings.Contains(body, `"chosen":true`) || !strings.Contains(body, `"fallback_from":"solo"`) {
		t.Errorf("explain = %d %s; want candidates with a chosen one and the fallback", status, body)
	}
	if after := e.a.count() + e.b.count(); after != before {
		t.Errorf("explain reached an upstream (%d calls); want none", after-before)
	}
	if status, _, _ := e.call(t, "POST", "/v1/route/explain", `{"model":"ha","messages":[]}`); status != 401 {
		t.Errorf("explain without a key = %d; want 401", status)
	}
	if status, _, _ := e.call(t, "GET", "/admin/deployments", "", "Authorization", "Bearer sk-test"); status != 401 {
		t.Errorf("/admin/deployments with a team key = %d; want 401", status)
	}
	if status, _, body := e.chat(t, "ha", false, "x-llmproxy-timeout", "soon"); status != 400 || !strings.Contains(body, "x-llmproxy-timeout") {
		t.Errorf("bad x-llmproxy-timeout = %d %s; want 400 naming the header", status, body)
	}
	if status, _, body := e.chat(t, "ha", false, "x-llmproxy-timeout", "5"); !ok(status, body, false) {
		t.Errorf("x-llmproxy-timeout: 5 = %d %s; want success", status, body)
	}
}
