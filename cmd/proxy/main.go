// Command proxy is llmproxy: an OpenAI-compatible gateway in front of many
// LLM providers. See README.md for the quickstart.
package main

import (
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
	"go.opentelemetry.io/otel"
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
	pprofAddr := fs.String("pprof", os.Getenv("LLMPROXY_PPROF"), "serve Go's net/http/pprof on this address, e.g. 127.0.0.1:6060 (env LLMPROXY_PPROF; off by default; keep it on loopback)")
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
	if err := checkDemoKeys(cfg); err != nil {
		return fmt.Errorf("config %s: %w", *path, err)
	}
	log := newLogger(cfg.Server.LogLevel)
	if *pprofAddr != "" {
		stop, err := servePprof(*pprofAddr, log)
		if err != nil {
			return err
		}
		defer stop()
	}
	// The OpenTelemetry SDK reports export failures (a collector that is
	// down) through its global handler: to our log, as degraded service.
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		log.Warn("telemetry: export failed", slog.Any("err", err))
	}))
	srv, err := buildServer(cfg, log, prometheus.NewRegistry(), deps{})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Server.Listen)
	if err != nil {
		return err
	}
	log.Info("listening", slog.String("addr", ln.Addr().String()), slog.String("config", *path))
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)
	return serveUntilSignal(srv, ln, stopOptions{Delay: cfg.Server.ShutdownDelay.Std(), Drain: cfg.Server.DrainTimeout.Std()}, sigs, log)
}

// stopOptions say how serveUntilSignal stops.
type stopOptions struct {
	// Delay is server.shutdown_delay: how long to keep serving, with /ready
	// answering 503, after SIGTERM.
	Delay time.Duration
	// Drain is server.drain_timeout.
	Drain time.Duration
}

// serveUntilSignal serves ln until SIGINT or SIGTERM arrives on sigs. After
// SIGTERM it keeps accepting and serving for o.Delay while /ready answers
// 503, so the load balancer stops sending before the port closes (the
// preStop pattern); SIGINT or a second SIGTERM cuts the delay short. Then
// it drains for up to o.Drain. SIGHUP is logged and ignored: a reload is
// not implemented yet, and its default action would kill the process.
func serveUntilSignal(srv *Server, ln net.Listener, o stopOptions, sigs <-chan os.Signal, log *slog.Logger) error {
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	sig, err := nextStop(errc, sigs, nil, log)
	if sig == nil {
		return err
	}
	srv.Unready()
	if sig == syscall.SIGTERM && o.Delay > 0 {
		log.Info("shutting down: /ready answers 503; still serving until the delay ends",
			slog.String("signal", sig.String()), slog.Duration("shutdown_delay", o.Delay))
		t := time.NewTimer(o.Delay)
		sig, err = nextStop(errc, sigs, t.C, log)
		t.Stop()
		if err != nil {
			return err
		}
		if sig != nil {
			log.Info("second signal: skipping the rest of the shutdown delay", slog.String("signal", sig.String()))
		}
	}
	log.Info("draining", slog.Duration("drain_timeout", o.Drain))
	if err := srv.Shutdown(o.Drain); err != nil {
		log.Warn("drain cut short", slog.Any("err", err))
	}
	log.Info("stopped")
	return nil
}

// nextStop waits for SIGINT or SIGTERM (returned), the end of Serve (its
// error returned, with a nil signal) or timeout (both nil). SIGHUP is
// logged and waited past.
func nextStop(errc <-chan error, sigs <-chan os.Signal, timeout <-chan time.Time, log *slog.Logger) (os.Signal, error) {
	for {
		select {
		case err := <-errc:
			return nil, err
		case <-timeout:
			return nil, nil
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				log.Info("reload not supported yet; ignoring SIGHUP")
				continue
			}
			return sig, nil
		}
	}
}

func newLogger(level string) *slog.Logger {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		l = slog.LevelInfo
	}
	return slog.New(slog.NewJSONHandler(os.Stdout, &slog.HandlerOptions{Level: l}))
}
