package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// BenchmarkProxyChatTracing is BenchmarkProxyChat with tracing off (no
// endpoint: the default), on with a sampler that keeps nothing, and on
// with every request sampled and exported (to an in-process OTLP sink
// that reads and drops the batches). cpu-ns/op is the process's CPU time
// (user+system, from getrusage) per request: client, proxy, fake upstream
// and exporter together, so it shows what tracing adds on the machine.
//
//	go test ./cmd/proxy -run '^$' -bench ProxyChatTracing -benchmem -count 5
func BenchmarkProxyChatTracing(b *testing.B) {
	for _, tc := range []struct{ name, telemetry string }{
		{"off", ""},
		{"sampled0", "telemetry: {endpoint: \"${OTLP_URL}\", sampler: parentbased_traceidratio, sampler_arg: 0}\n"},
		{"sampled1", "telemetry: {endpoint: \"${OTLP_URL}\", sampler: always_on}\n"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			var exported atomic.Int64
			sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				n, _ := io.Copy(io.Discard, r.Body)
				exported.Add(n)
				w.Header().Set("Content-Type", "application/x-protobuf")
			}))
			b.Cleanup(sink.Close)
			url, hc := startBenchProxyWith(b, 0, benchConfig+tc.telemetry, map[string]string{"OTLP_URL": sink.URL})
			benchPost(b, hc, url, benchRequest)
			b.ReportAllocs()
			cpu0 := cpuTime()
			for b.Loop() {
				benchPost(b, hc, url, benchRequest)
			}
			b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/op")
		})
	}
}

// cpuTime is the process's user+system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
