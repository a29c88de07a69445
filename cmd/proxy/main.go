// Command proxy is llmproxy: an OpenAI-compatible gateway in front of many
// LLM providers. See README.md for the quickstart.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "llmproxy:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("llmproxy", flag.ContinueOnError)
	path := fs.String("config", os.Getenv("LLMPROXY_CONFIG"), "path to the YAML config (env LLMPROXY_CONFIG)")
	listen := fs.String("listen", "", "listen address, overriding server.listen")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *path == "" {
		return errors.New("no config: pass -config PATH or set LLMPROXY_CONFIG (try -config configs/example.yaml)")
	}
	cfg, err := LoadConfig(*path)
	if err != nil {
		return err
	}
	if *listen != "" {
		cfg.Server.Listen = *listen
	}
	log := newLogger(cfg.Server.LogLevel)
	srv, err := buildServer(cfg, log, prometheus.NewRegistry(), nil)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Server.Listen)
	if err != nil {
		return err
	}
	log.Info("listening", slog.String("addr", ln.Addr().String()), slog.String("config", *path))
	return serveUntilSignal(srv, ln, time.Duration(cfg.Server.DrainTimeout), log)
}

// serveUntilSignal serves until SIGINT or SIGTERM, then drains.
func serveUntilSignal(srv *Server, ln net.Listener, drain time.Duration, log *slog.Logger) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("draining", slog.Duration("drain_timeout", drain))
	if err := srv.Shutdown(drain); err != nil {
		log.Warn("drain cut short", slog.Any("err", err))
	}
	log.Info("stopped")
	return nil
}

func newLogger(level string) *slog.Logger {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		l = slog.LevelInfo
	}
	return slog.New(slog.NewJSONHandler(os.Stdout, &slog.HandlerOptions{Level: l}))
}
