package main

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"llmproxy/providers/providertest"
)

// connectConfig routes "ha" to a provider at a blackholed address first,
// then to a fake upstream. %s is the dead provider's timeouts block and
// %s the router's connect timeout. Every other bound is long, so only
// the connect timeout can move the request on in time.
const connectConfig = `
server:
  listen: 127.0.0.1:0
providers:
  - {name: dead, type: openai, base_url: "http://${DEAD}/v1", api_key: k%s}
  - {name: b, type: openai, base_url: "${B_URL}/v1", api_key: k}
router:
  max_attempts: 3
  timeouts: {connect: %s, first_token: 20s, idle: 20s, total: 30s}
models:
  - name: ha
    strategy: priority
    deployments:
      - {provider: dead, model: gpt-4o-mini}
      - {provider: b, model: gpt-4o-mini}
teams:
  - name: default
    api_keys: ["sk-test"]
`

// TestE2ERouterConnectTimeout: a provider whose address never answers the
// SYN fails within its connect timeout (its own, or router.timeouts.connect
// when it sets none), and the router moves on to the next deployment.
func TestE2ERouterConnectTimeout(t *testing.T) {
	tests := []struct {
		name, provider, router string
	}{
		{"provider's own connect timeout", ", timeouts: {connect: 300ms}", "10s"},
		{"inherited from router.timeouts.connect", "", "300ms"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := newFakeUpstream(t)
			env := map[string]string{"DEAD": providertest.Blackhole(t), "B_URL": b.srv.URL}
			e := startRouterProxy(t, fmt.Sprintf(connectConfig, tc.provider, tc.router), env, io.Discard)
			for _, stream := range []bool{false, true} {
				start := time.Now()
				status, h, body := e.chat(t, "ha", stream)
				took := time.Since(start)
				if !ok(status, body, stream) || h.Get("x-llmproxy-provider") != "b" || h.Get("x-llmproxy-attempts") != "2" {
					t.Errorf("stream %v: %d provider %q attempts %q body %s; want b's reply after 2 attempts",
						stream, status, h.Get("x-llmproxy-provider"), h.Get("x-llmproxy-attempts"), body)
				}
				if took < 250*time.Millisecond || took > 3*time.Second {
					t.Errorf("stream %v: answered after %v; want about the 300ms connect timeout", stream, took)
				}
			}
		})
	}
}

// TestE2ERouterErrorHeaders: a request that fails after upstream calls
// still says how many were made and which provider answered last.
func TestE2ERouterErrorHeaders(t *testing.T) {
	fail := func(status int) func(w http.ResponseWriter, r *http.Request, body []byte) {
		return func(w http.ResponseWriter, r *http.Request, body []byte) {
			writeUpstreamError(w, status, `{"error":{"message":"nope","type":"server_error","param":null,"code":null}}`)
		}
	}
	tests := []struct {
		name         string
		a, b         int // the upstreams' statuses
		stream       bool
		wantStatus   int
		wantAttempts string
		wantProvider string
	}{
		// a, b, then a again after a backoff: max_attempts is 3.
		{"every attempt failed", 500, 500, false, 502, "3", "a"},
		{"every attempt failed, streamed", 500, 500, true, 502, "3", "a"},
		{"a 4xx the request caused is not retried", 400, 200, false, 400, "1", "a"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := startRouterE2E(t, "priority")
			e.a.handle(fail(tc.a))
			if tc.b != 200 {
				e.b.handle(fail(tc.b))
			}
			status, h, body := e.chat(t, "ha", tc.stream)
			if status != tc.wantStatus || h.Get("x-llmproxy-attempts") != tc.wantAttempts || h.Get("x-llmproxy-provider") != tc.wantProvider {
				t.Errorf("got %d, attempts %q, provider %q (%s); want %d, %s, %s", status, h.Get("x-llmproxy-attempts"),
					h.Get("x-llmproxy-provider"), body, tc.wantStatus, tc.wantAttempts, tc.wantProvider)
			}
		})
	}
}

// TestE2ERouterNoHealthyDeployment: with every deployment cooling down the
// client learns only the alias and when to come back; the log line says
// which deployment was skipped and why.
func TestE2ERouterNoHealthyDeployment(t *testing.T) {
	logs := &syncBuffer{}
	a, b := newFakeUpstream(t), newFakeUpstream(t)
	e := startRouterProxy(t, fmt.Sprintf(routerConfig, "priority"), map[string]string{"A_URL": a.srv.URL, "B_URL": b.srv.URL}, logs)
	e.a, e.b = a, b
	limited := func(after string) func(w http.ResponseWriter, r *http.Request, body []byte) {
		return func(w http.ResponseWriter, r *http.Request, body []byte) {
			w.Header().Set("Retry-After", after)
			writeUpstreamError(w, 429, `{"error":{"message":"Rate limit reached","type":"requests","param":null,"code":"rate_limit_exceeded"}}`)
		}
	}
	a.handle(limited("2"))
	b.handle(limited("3"))
	if status, _, _ := e.chat(t, "ha", false); status != 429 {
		t.Fatalf("first request = %d; want the upstreams' 429", status)
	}
	status, h, body := e.chat(t, "ha", false)
	msg, typ, code := errorShape(t, []byte(body))
	if status != 429 || typ != "rate_limit_error" || code != "rate_limit_exceeded" {
		t.Errorf("during the cooldowns = %d %s/%s; want 429 rate_limit_error/rate_limit_exceeded", status, typ, code)
	}
	if want := `no healthy deployment for model "ha"; retry later`; msg != want {
		t.Errorf("message = %q; want %q", msg, want)
	}
	for _, leak := range []string{"gpt-4o-mini", "a/", "b/", "cooldown"} {
		if strings.Contains(body, leak) {
			t.Errorf("client body names %q: %s", leak, body)
		}
	}
	if got := h.Get("Retry-After"); got != "2" {
		t.Errorf("Retry-After = %q; want 2 (a's cooldown ends first)", got)
	}
	if h.Get("x-llmproxy-attempts") != "" {
		t.Errorf("x-llmproxy-attempts = %q; want none (no upstream was called)", h.Get("x-llmproxy-attempts"))
	}
	if n := a.count() + b.count(); n != 2 {
		t.Errorf("upstreams got %d requests; want 2 (none during the cooldowns)", n)
	}
	e.srv.Shutdown(time.Second) // flush the access lines
	if l := logs.String(); !strings.Contains(l, "ha a/gpt-4o-mini: cooldown (rate_limited)") || !strings.Contains(l, "ha b/gpt-4o-mini: cooldown (rate_limited)") {
		t.Errorf("access log does not name the skipped deployments:\n%s", l)
	}
}
