package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestE2EShedPastMaxInflight: with server.max_inflight requests in
// flight (two held by a stalled upstream), the next API request is
// refused at once with 503 overloaded, Retry-After and x-request-id, in
// OpenAI's error shape and before its body is read; probes still answer;
// once the held requests finish, requests are served again.
func TestE2EShedPastMaxInflight(t *testing.T) {
	cfg := strings.Replace(e2eConfig, "  max_body_bytes: 65536\n", "  max_body_bytes: 65536\n  max_inflight: 2\n", 1)
	e := startE2EWith(t, cfg)
	release := make(chan struct{})
	var arrived sync.WaitGroup
	arrived.Add(2)
	e.up.handle(func(w http.ResponseWriter, r *http.Request, body []byte) {
		arrived.Done()
		<-release
		defaultHandler(w, r, body)
	})
	post := func() (*http.Response, []byte) {
		req, _ := http.NewRequest("POST", e.url+"/v1/chat/completions",
			strings.NewReader(`{"model":"gpt-test","messages":[{"role":"user","content":"hi"}]}`))
		req.Header.Set("Authorization", "Bearer "+teamKeyDefault)
		req.Header.Set("Content-Type", "application/json")
		resp, err := e.hc.Do(req)
		if err != nil {
			t.Fatalf("post: %v", err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp, b
	}
	held := make(chan int, 2)
	for range 2 {
		go func() {
			resp, _ := post()
			held <- resp.StatusCode
		}()
	}
	arrived.Wait() // both are in flight, at the upstream

	start := time.Now()
	resp, body := post()
	if took := time.Since(start); resp.StatusCode != http.StatusServiceUnavailable || took > 2*time.Second {
		t.Fatalf("third request: status %d after %v, want 503 at once: %s", resp.StatusCode, took, body)
	}
	if ra := resp.Header.Get("Retry-After"); ra != "1" {
		t.Errorf("Retry-After %q, want 1", ra)
	}
	var env struct {
		Error struct {
			Message, Type, Code string
			Param               *string
		} `json:"error"`
	}
	if err := json.Unmarshal(body, &env); err != nil || env.Error.Code != "overloaded" || env.Error.Type != "server_error" || env.Error.Message == "" {
		t.Errorf("body %s (err %v), want an OpenAI error with code overloaded", body, err)
	}
	if !bytes.Contains(body, []byte(`"param":null`)) {
		t.Errorf("body %s has no param field", body)
	}
	// Probes and metrics are not shed.
	for _, path := range []string{"/health", "/metrics"} {
		r, err := e.hc.Get(e.url + path)
		if err != nil || r.StatusCode != 200 {
			t.Fatalf("GET %s while saturated: %v %v", path, err, r)
		}
		io.Copy(io.Discard, r.Body)
		r.Body.Close()
	}
	if got := testutil.ToFloat64(e.srv.metrics.shed); got != 1 {
		t.Errorf("llmproxy_shed_requests_total = %v, want 1", got)
	}

	e.up.handle(defaultHandler)
	close(release)
	for range 2 {
		if s := <-held; s != 200 {
			t.Errorf("held request: status %d, want 200", s)
		}
	}
	if resp, body := post(); resp.StatusCode != 200 {
		t.Errorf("after the held requests ended: status %d: %s", resp.StatusCode, body)
	}
}

// TestDefaultMaxInflight: the derived default stays within its bounds
// and follows memory: a 512 MiB limit gives 512.
func TestDefaultMaxInflight(t *testing.T) {
	if n := defaultMaxInflight(); n < minDefaultInflight || n > maxDefaultInflight {
		t.Errorf("defaultMaxInflight() = %d, want within [%d, %d]", n, minDefaultInflight, maxDefaultInflight)
	}
	for _, tc := range []struct {
		mem  int64
		want int
	}{{512 << 20, 512}, {64 << 20, minDefaultInflight}, {64 << 30, maxDefaultInflight}} {
		if got := clampInflight(tc.mem / 4 / inflightCost); got != tc.want {
			t.Errorf("%d MiB: %d, want %d", tc.mem>>20, got, tc.want)
		}
	}
}
