package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"llmproxy/router"
)

// TestAccessLogFallbacks: the access line's fallbacks field counts the
// fallback aliases called, not attempts - 1: a retry on another
// deployment of the requested alias is not a fallback.
func TestAccessLogFallbacks(t *testing.T) {
	logs := &syncBuffer{}
	a, b := newFakeUpstream(t), newFakeUpstream(t)
	e := startRouterProxy(t, fmt.Sprintf(routerConfig, "priority"), map[string]string{"A_URL": a.srv.URL, "B_URL": b.srv.URL}, logs)
	fail := func(w http.ResponseWriter, r *http.Request, body []byte) {
		writeUpstreamError(w, 500, `{"error":{"message":"boom","type":"server_error","param":null,"code":null}}`)
	}
	b.handle(defaultHandler)
	for _, tc := range []struct {
		name, model         string
		aFails              bool
		attempts, fallbacks int
	}{
		{"first deployment answers", "ha", false, 1, 0},
		{"second deployment of the alias answers", "ha", true, 2, 0},
		{"fallback alias answers on its second deployment", "solo", true, 3, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a.handle(defaultHandler)
			if tc.aFails {
				a.handle(fail)
			}
			id := "fb-" + strings.ReplaceAll(tc.name, " ", "-")
			status, _, body := e.chat(t, tc.model, false, "X-Request-Id", id)
			if status != 200 {
				t.Fatalf("status %d: %s", status, body)
			}
			line := accessLine(t, logs.String(), id)
			if line.Attempts != tc.attempts || line.Fallbacks != tc.fallbacks {
				t.Errorf("access line attempts=%d fallbacks=%d; want %d and %d", line.Attempts, line.Fallbacks, tc.attempts, tc.fallbacks)
			}
		})
	}
}

type accessFields struct {
	RequestID string `json:"request_id"`
	Attempts  int    `json:"attempts"`
	Fallbacks int    `json:"fallbacks"`
}

// accessLine finds the access line of request id.
func accessLine(t *testing.T, logs, id string) accessFields {
	t.Helper()
	for _, l := range strings.Split(logs, "\n") {
		var f accessFields
		if json.Unmarshal([]byte(l), &f) == nil && f.RequestID == id && strings.Contains(l, `"msg":"request"`) {
			return f
		}
	}
	t.Fatalf("no access line for %s in:\n%s", id, logs)
	return accessFields{}
}

// noKeyConfig has a provider with no API key (type openai on OpenAI's own
// host: it fails without a call) in front of a working fake.
const noKeyConfig = `
server: {listen: 127.0.0.1:0}
providers:
  - {name: nokey, type: openai}
  - {name: b, type: openai, base_url: "${B_URL}/v1", api_key: k}
router:
  max_attempts: 3
models:
  - name: ha
    strategy: priority
    deployments:
      - {provider: nokey, model: gpt-4o-mini, priority: 0}
      - {provider: b, model: gpt-4o-mini, priority: 1}
  - name: only-nokey
    deployments: [{provider: nokey, model: gpt-4o-mini}]
teams:
  - name: default
    api_keys: ["sk-test"]
`

// TestMissingKeyNotRetried: a provider without a key is a configuration
// error: the router calls the next candidate at once and never retries it
// (attempts 1, so no backoff sleep either).
func TestMissingKeyNotRetried(t *testing.T) {
	b := newFakeUpstream(t)
	e := startRouterProxy(t, noKeyConfig, map[string]string{"B_URL": b.srv.URL}, &syncBuffer{})
	for _, tc := range []struct {
		model    string
		status   int
		attempts string
		bCalls   int
	}{
		{"ha", 200, "2", 1},
		{"only-nokey", 502, "1", 0},
	} {
		t.Run(tc.model, func(t *testing.T) {
			before := b.count()
			status, h, body := e.chat(t, tc.model, false)
			if status != tc.status || h.Get("x-llmproxy-attempts") != tc.attempts {
				t.Errorf("status %d, x-llmproxy-attempts %q; want %d and %s: %s", status, h.Get("x-llmproxy-attempts"), tc.status, tc.attempts, body)
			}
			if n := b.count() - before; n != tc.bCalls {
				t.Errorf("fake got %d calls; want %d", n, tc.bCalls)
			}
			if tc.status != 200 && !strings.Contains(body, `has no API key configured`) {
				t.Errorf("body = %s; want the missing-key message", body)
			}
		})
	}
}

// TestBreakerGaugeReadsDeployments: llmproxy_breaker_state is read from
// the router's deployments at scrape time, so a deployment benched by
// another replica's breaker (no transition on this one) reports 2.
func TestBreakerGaugeReadsDeployments(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := newMetrics(reg)
	m.breaker.watch(func() []router.DeploymentStatus {
		return []router.DeploymentStatus{
			{ID: "a/m", Provider: "a", Breaker: "open", BreakerState: router.BreakerOpen, BreakerRemote: true},
			{ID: "b/m", Provider: "b", Breaker: "closed"},
		}
	})
	e := &routerE2E{proxy: &proxy{reg: reg}} // no server: only the registry is read
	if g := e.gauge(t, "a/m"); g != 2 {
		t.Errorf("gauge for the remotely opened deployment = %v; want 2", g)
	}
	if g := e.gauge(t, "b/m"); g != 0 {
		t.Errorf("gauge for the closed deployment = %v; want 0 (reported before any transition)", g)
	}
}
