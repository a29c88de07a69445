package main

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"llmproxy/rag"
)

// startProxy is the one way a test starts the proxy: every end-to-end
// helper (startE2E, startConfigE2E, startRouterProxy, startReplicas, ...)
// builds its config and calls it. It builds cfg (data_dir in a temp dir
// unless the test set one), listens on 127.0.0.1:0, captures the logs, and
// in t.Cleanup shuts the server down with a short drain and checks what
// every test must keep:
//   - each response the proxy's clients (p.hc, and SDK clients built on it)
//     saw carried an x-request-id;
//   - no log line is at ERROR level, unless the test said expectErrorLogs;
//   - no log line holds a configured secret (provider keys, team keys, the
//     master key) or the prompt/completion canaries, and each is JSON.
//
// Goroutines that outlive the tests fail the package in TestMain.
func startProxy(t testing.TB, cfg *Config, opts ...proxyOption) *proxy {
	t.Helper()
	o := proxyOpts{level: slog.LevelInfo, drain: time.Second, serve: (*Server).Serve}
	for _, f := range opts {
		f(&o)
	}
	if cfg.Server.DataDir == "" || cfg.Server.DataDir == "./data" {
		cfg.Server.DataDir = t.TempDir()
	}
	p := &proxy{t: t, logs: &syncBuffer{}, reg: prometheus.NewRegistry(), drain: o.drain,
		secrets: append(configSecrets(cfg), o.secrets...), expectErrors: o.expectErrors}
	var sink io.Writer = p.logs
	switch {
	case o.discardLogs:
		sink = io.Discard
	case o.tee != nil:
		sink = io.MultiWriter(p.logs, o.tee)
	}
	p.log = slog.New(slog.NewJSONHandler(sink, &slog.HandlerOptions{Level: o.level}))
	srv, err := buildServer(cfg, p.log, p.reg, deps{retriever: o.retriever})
	if err != nil {
		t.Fatalf("buildServer: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	p.srv, p.addr, p.url = srv, ln.Addr().String(), "http://"+ln.Addr().String()
	p.served = make(chan error, 1)
	go func() { p.served <- o.serve(srv, ln) }()

	base := &http.Transport{}
	if o.transport != nil {
		o.transport(base)
	}
	p.tr = &checkTransport{base: base, noCopy: o.discardLogs}
	p.hc = &http.Client{Transport: p.tr, Timeout: o.clientTimeout}
	t.Cleanup(func() {
		stoppedByTest := p.stopped.Load()
		if err := p.stop(p.drain); err != nil && !stoppedByTest {
			t.Errorf("Shutdown: %v", err)
		}
		if p.serveErr != nil {
			t.Errorf("Serve: %v", p.serveErr)
		}
		p.check()
	})
	return p
}

// proxy is one running proxy started by startProxy.
type proxy struct {
	t     testing.TB
	srv   *Server
	url   string // http://127.0.0.1:port, no trailing slash
	addr  string
	log   *slog.Logger
	logs  *syncBuffer
	reg   *prometheus.Registry
	tr    *checkTransport
	hc    *http.Client
	drain time.Duration

	secrets      []string
	expectErrors bool

	served   chan error
	once     sync.Once
	stopped  atomic.Bool
	shutErr  error // what Shutdown returned
	serveErr error // what Serve returned
}

// stop shuts the server down (once) with drain, waits for Serve to
// return, and returns Shutdown's error. The cleanup calls it too and
// reports a Serve error, so a test may stop the proxy early (a drain, a
// restart) and check the Shutdown error itself.
//
// The test's clients close their idle connections first, as a client
// that is done would: net/http keeps a connection it dialed for a request
// that another connection then served, and fasthttp's shutdown waits up
// to 5 s for such a never-used connection (StateNew) to send a request,
// longer than the tests' drains (TestE2EReplicaMixedBudget overran its
// 5 s drain on one in a CI run).
func (p *proxy) stop(drain time.Duration) error {
	p.once.Do(func() {
		p.stopped.Store(true)
		p.tr.base.CloseIdleConnections()
		p.shutErr = p.srv.Shutdown(drain)
		p.serveErr = <-p.served
		p.tr.base.CloseIdleConnections()
	})
	return p.shutErr
}

// check fails the test on a response without x-request-id, an unexpected
// ERROR line, a secret or canary in the logs, or a log line that is not
// JSON.
func (p *proxy) check() {
	t := p.t
	t.Helper()
	for _, m := range p.tr.missingIDs() {
		t.Errorf("%s: response has no x-request-id", m)
	}
	out := p.logs.String()
	for _, secret := range p.secrets {
		if strings.Contains(out, secret) {
			t.Errorf("logs contain the secret %q:\n%s", secret, grepLines(out, secret))
		}
	}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line == "" {
			continue
		}
		if !json.Valid([]byte(line)) {
			t.Errorf("log line is not JSON: %s", line)
		} else if !p.expectErrors && strings.Contains(line, `"level":"ERROR"`) {
			t.Errorf("unexpected ERROR log line (use expectErrorLogs if the test provokes one): %s", line)
		}
	}
}

// minSecretLen skips configured credentials too short to search for
// ("k" would match every line).
const minSecretLen = 6

// configSecrets lists cfg's credentials and the canaries: none may reach
// a log line.
func configSecrets(cfg *Config) []string {
	out := []string{promptCanary, completionCanary}
	add := func(s Secret) {
		if len(s.Value()) >= minSecretLen {
			out = append(out, s.Value())
		}
	}
	add(cfg.Server.MasterKey)
	for _, pc := range cfg.Providers {
		add(pc.APIKey)
	}
	for _, tc := range cfg.Teams {
		for _, k := range tc.APIKeys {
			add(k)
		}
	}
	return out
}

// proxyOption changes how startProxy runs the proxy.
type proxyOption func(*proxyOpts)

type proxyOpts struct {
	level         slog.Level
	tee           io.Writer
	discardLogs   bool
	expectErrors  bool
	secrets       []string
	drain         time.Duration
	transport     func(*http.Transport)
	clientTimeout time.Duration
	serve         func(*Server, net.Listener) error
	retriever     rag.Retriever
}

// withRetriever gives RAG a vector-store search (a fake, until issue 11's
// store is wired in buildServer).
func withRetriever(r rag.Retriever) proxyOption { return func(o *proxyOpts) { o.retriever = r } }

// withDebugLogs logs at Debug level (per-chunk lines are checked too).
func withDebugLogs() proxyOption { return func(o *proxyOpts) { o.level = slog.LevelDebug } }

// withLogTee also writes every log line to w.
func withLogTee(w io.Writer) proxyOption { return func(o *proxyOpts) { o.tee = w } }

// withoutLogCapture sends the logs nowhere and keeps no copies of the
// requests sent (x-request-id is still checked): benchmarks only, whose
// b.N requests would fill the buffers and whose allocs/op count the
// client too.
func withoutLogCapture() proxyOption { return func(o *proxyOpts) { o.discardLogs = true } }

// expectErrorLogs declares that the test provokes an ERROR log line.
func expectErrorLogs() proxyOption { return func(o *proxyOpts) { o.expectErrors = true } }

// withSecrets adds strings that must not appear in a log line.
func withSecrets(s ...string) proxyOption {
	return func(o *proxyOpts) { o.secrets = append(o.secrets, s...) }
}

// withDrain sets the drain the cleanup's Shutdown allows (1 s by default).
func withDrain(d time.Duration) proxyOption { return func(o *proxyOpts) { o.drain = d } }

// withTransport configures the client transport behind p.hc.
func withTransport(f func(*http.Transport)) proxyOption {
	return func(o *proxyOpts) { o.transport = f }
}

// withClientTimeout sets p.hc's Timeout.
func withClientTimeout(d time.Duration) proxyOption {
	return func(o *proxyOpts) { o.clientTimeout = d }
}

// withServe runs serve instead of srv.Serve (serveUntilSignal); it must
// return once srv.Shutdown is called.
func withServe(serve func(*Server, net.Listener) error) proxyOption {
	return func(o *proxyOpts) { o.serve = serve }
}

// parseTestConfig parses config text, taking its ${NAME}s from env.
func parseTestConfig(t testing.TB, config string, env map[string]string) *Config {
	t.Helper()
	cfg, err := ParseConfig([]byte(config), func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatalf("ParseConfig: %v", err)
	}
	return cfg
}

// errRecorder is a testing.TB that keeps Errorf's messages instead of
// failing the test.
type errRecorder struct {
	testing.TB
	errs []string
}

func (r *errRecorder) Helper() {}

func (r *errRecorder) Errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

// TestProxyCheckCatches: the cleanup's check fails a test on each thing it
// guards (an ERROR line, a secret, a line that is not JSON, a reply
// without x-request-id) and passes clean logs and declared errors.
func TestProxyCheckCatches(t *testing.T) {
	info := `{"level":"INFO","msg":"request","status":200}`
	for _, tc := range []struct {
		name         string
		logs         string
		missing      []string
		expectErrors bool
		want         string // "" for no error
	}{
		{"clean", info, nil, false, ""},
		{"error line", `{"level":"ERROR","msg":"ledger write failed"}`, nil, false, "unexpected ERROR log line"},
		{"declared error line", `{"level":"ERROR","msg":"ledger write failed"}`, nil, true, ""},
		{"team key", `{"level":"INFO","msg":"auth","key":"` + teamKeyDefault + `"}`, nil, false, "logs contain the secret"},
		{"provider key", `{"level":"WARN","err":"401 for ` + providerKey + `"}`, nil, false, "logs contain the secret"},
		{"prompt text", `{"level":"DEBUG","text":"` + promptCanary + `"}`, nil, false, "logs contain the secret"},
		{"not json", "panic: boom", nil, false, "log line is not JSON"},
		{"no request id", info, []string{"POST /v1/chat/completions -> 502"}, false, "response has no x-request-id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &errRecorder{TB: t}
			cfg := &Config{Teams: []TeamConfig{{APIKeys: []Secret{teamKeyDefault}}}, Providers: []ProviderConfig{{APIKey: providerKey}}}
			p := &proxy{t: rec, logs: &syncBuffer{}, tr: &checkTransport{missing: tc.missing},
				secrets: configSecrets(cfg), expectErrors: tc.expectErrors}
			p.logs.Write([]byte(tc.logs + "\n"))
			p.check()
			got := strings.Join(rec.errs, "\n")
			if tc.want == "" && got != "" || tc.want != "" && !strings.Contains(got, tc.want) {
				t.Errorf("check() reported %q; want %q", got, tc.want)
			}
		})
	}
}
