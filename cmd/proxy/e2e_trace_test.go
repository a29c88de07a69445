package main

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestE2ETracePropagation is tracing on against an OTLP sink, without a
// trace backend (that is TestE2ETraceInJaeger's): the client's traceparent
// continues upstream, sampled or not; only a sampled request's access line
// names its trace; a request with no traceparent starts a trace of its
// own; and the client's tracestate travels with it. The sampler keeps what
// the client sampled and drops the rest (parentbased_always_off).
func TestE2ETracePropagation(t *testing.T) {
	var exports atomic.Int64
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/traces" {
			exports.Add(1)
		}
		_, _ = io.Copy(io.Discard, r.Body)
	}))
	defer sink.Close()
	cfg := e2eConfig + "telemetry: {endpoint: \"" + sink.URL + "\", sampler: parentbased_always_off}\n"
	e := startE2EWith(t, cfg)
	const trace = "4bf92f3577b34da6a3ce929d0e0e4736"
	for _, tc := range []struct {
		name, traceparent string
		sampled           bool
	}{
		{"client sampled", "00-" + trace + "-00f067aa0ba902b7-01", true},
		{"client not sampled", "00-" + trace + "-00f067aa0ba902b7-00", false},
		{"no traceparent", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hdr := authHeader(teamKeyDefault)
			if tc.traceparent != "" {
				hdr["traceparent"] = tc.traceparent
				hdr["tracestate"] = "vendor=opaque"
			}
			before := e.logs.String()
			resp, body := e.do(http.MethodPost, "/v1/chat/completions", `{"model":"gpt-test","stream":true,"messages":[{"role":"user","content":"hi"}]}`, hdr)
			if resp.StatusCode != http.StatusOK || !bytes.Contains(body, []byte("data: [DONE]")) {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			up := e.up.last(t).Header
			parts := strings.Split(up.Get("traceparent"), "-")
			if len(parts) != 4 || len(parts[1]) != 32 || len(parts[2]) != 16 {
				t.Fatalf("upstream traceparent = %q; want one", up.Get("traceparent"))
			}
			if tc.traceparent != "" {
				flags := tc.traceparent[len(tc.traceparent)-2:]
				if parts[1] != trace || parts[3] != flags || up.Get("tracestate") != "vendor=opaque" {
					t.Errorf("upstream got %q, tracestate %q; want trace %s, flags %s, the client's tracestate",
						up.Get("traceparent"), up.Get("tracestate"), trace, flags)
				}
			} else if parts[1] == trace || parts[3] != "00" {
				t.Errorf("upstream got %q; want a new trace, not sampled", up.Get("traceparent"))
			}
			// A stream's access line is written when its writer ends,
			// which may be just after the client read [DONE].
			var line string
			if !eventually(5*time.Second, func() bool {
				line = strings.TrimPrefix(e.logs.String(), before)
				return strings.Contains(line, `"msg":"request"`)
			}) {
				t.Fatalf("no access line:\n%s", line)
			}
			if got := strings.Contains(line, `"trace_id":"`+parts[1]+`"`); got != tc.sampled {
				t.Errorf("access line has trace_id: %v; want %v:\n%s", got, tc.sampled, line)
			}
		})
	}
	if err := e.stop(e.drain); err != nil {
		t.Fatal(err)
	}
	if exports.Load() == 0 {
		t.Error("the sampled request's spans never reached the OTLP endpoint")
	}
}
