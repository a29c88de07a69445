package main

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"
)

// servePprof serves Go's profiler on its own listener, apart from the API:
// no team key guards it, so it is off unless -pprof names an address, and
// that address belongs on loopback. It is how the profiles behind the
// performance work were taken (bench/README.md).
// The returned stop closes the listener.
func servePprof(addr string, log *slog.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("-pprof %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	log.Warn("pprof: serving the Go profiler without authentication", slog.String("addr", ln.Addr().String()))
	done := make(chan struct{})
	go func() { _ = srv.Serve(ln); close(done) }()
	return func() { srv.Close(); <-done }, nil
}
