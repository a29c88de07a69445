package main

import (
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
	"testing"
	"time"
)

// TestE2EActiveProbe: with router.probe_interval set, a provider whose
// GET /models fails is benched before any client request fails on it, and
// comes back once the probe passes again.
func TestE2EActiveProbe(t *testing.T) {
	a, b := newFakeUpstream(t), newFakeUpstream(t)
	var down atomic.Bool
	down.Store(true)
	var modelsCalls atomic.Int64
	a.handle(func(w http.ResponseWriter, r *http.Request, body []byte) {
		if r.URL.Path == "/v1/models" {
			modelsCalls.Add(1)
			if down.Load() {
				w.WriteHeader(http.StatusServiceUnavailable)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"object":"list","data":[]}`)
			return
		}
		defaultHandler(w, r, body)
	})
	b.handle(func(w http.ResponseWriter, r *http.Request, body []byte) {
		if r.URL.Path == "/v1/models" {
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"object":"list","data":[]}`)
			return
		}
		defaultHandler(w, r, body)
	})
	cfg := `
server: {listen: 127.0.0.1:0}
providers:
  - {name: a, type: openai, base_url: "${A_URL}/v1", api_key: k}
  - {name: b, type: openai, base_url: "${B_URL}/v1", api_key: k}
router:
  strategy: priority
  probe_interval: 50ms
models:
  - name: ha
    deployments:
      - {provider: a, model: gpt-4o-mini}
      - {provider: b, model: gpt-4o-mini}
teams:
  - {name: default, api_keys: ["sk-test"]}
`
	e := startRouterProxy(t, cfg, map[string]string{"A_URL": a.srv.URL, "B_URL": b.srv.URL}, io.Discard)
	// The windows are generous (they end as soon as the condition holds):
	// under -race on a loaded 2-core machine a 50 ms ticker can starve.
	if !eventually(10*time.Second, func() bool { return modelsCalls.Load() >= 2 }) {
		t.Fatalf("probe hit GET /v1/models %d times in 10s; want at least 2", modelsCalls.Load())
	}
	chats := func(f *fakeUpstream) int {
		n := 0
		f.mu.Lock()
		for _, r := range f.reqs {
			if r.Path == "/v1/chat/completions" {
				n++
			}
		}
		f.mu.Unlock()
		return n
	}
	for i := 0; i < 5; i++ {
		if st, _, body := e.chat(t, "ha", false); st != 200 {
			t.Fatalf("chat while a is down = %d %s; want 200 from b", st, body)
		}
	}
	if n := chats(a); n != 0 {
		t.Errorf("a (probe failing, priority 1st) got %d chat requests; want 0", n)
	}
	if n := chats(b); n != 5 {
		t.Errorf("b got %d chat requests; want 5", n)
	}
	down.Store(false)
	back := eventually(10*time.Second, func() bool {
		st, hdr, _ := e.chat(t, "ha", false)
		return st == 200 && hdr.Get("x-llmproxy-provider") == "a"
	})
	if !back {
		t.Fatal(fmt.Sprintf("a never served again after its probe passed (probe calls %d)", modelsCalls.Load()))
	}
}
