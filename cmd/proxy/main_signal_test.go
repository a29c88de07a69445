package main

import (
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// signalProxy is a proxy run by serveUntilSignal with a signal channel the
// test writes to, as main's signal.Notify would.
type signalProxy struct {
	*proxy
	sigs chan os.Signal
	done chan error
}

func startSignalProxy(t *testing.T, o stopOptions) *signalProxy {
	t.Helper()
	up := newFakeUpstream(t)
	env := map[string]string{"FAKE_URL": up.srv.URL, "UPSTREAM_KEY": providerKey, "TEAM_KEY": teamKeyDefault}
	sp := &signalProxy{sigs: make(chan os.Signal, 1), done: make(chan error, 1)}
	serve := func(srv *Server, ln net.Listener) error {
		err := serveUntilSignal(srv, ln, o, sp.sigs, srv.log)
		sp.done <- err
		return err
	}
	sp.proxy = startProxy(t, parseTestConfig(t, e2eConfig, env), withServe(serve),
		// A new connection per request: a request during the delay must
		// find the port still open, not reuse an old connection.
		withTransport(func(tr *http.Transport) { tr.DisableKeepAlives = true }),
		withClientTimeout(10*time.Second))
	if !eventually(5*time.Second, func() bool { return sp.status(t, "GET", "/ready", "") == 200 }) {
		t.Fatal("/ready never turned 200")
	}
	return sp
}

// status sends one request on a new connection; 0 means it was refused.
func (p *signalProxy) status(t *testing.T, method, path, body string) int {
	t.Helper()
	req, _ := http.NewRequest(method, p.url+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+teamKeyDefault)
	resp, err := p.hc.Do(req)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

func (p *signalProxy) stopped(within time.Duration) bool {
	select {
	case err := <-p.done:
		p.done <- err
		return true
	case <-time.After(within):
		return false
	}
}

const demoChat = `{"model":"demo-chat","messages":[{"role":"user","content":"hi"}]}`

// TestShutdownDelayKeepsServing: after SIGTERM the proxy keeps accepting
// and serving new requests while /ready answers 503 (the preStop
// pattern), until the delay ends or a second signal cuts it short.
func TestShutdownDelayKeepsServing(t *testing.T) {
	p := startSignalProxy(t, stopOptions{Delay: time.Minute, Drain: 5 * time.Second})
	p.sigs <- syscall.SIGTERM
	if !eventually(5*time.Second, func() bool { return p.status(t, "GET", "/ready", "") == 503 }) {
		t.Fatal("/ready still not 503 after SIGTERM; want it red during the shutdown delay")
	}
	if resp, err := p.hc.Get(p.url + "/ready"); err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(b), `"shutting_down"`) {
			t.Errorf("/ready during the shutdown delay = %s; want status shutting_down", b)
		}
	}
	if got := p.status(t, "POST", "/v1/chat/completions", demoChat); got != 200 {
		t.Errorf("chat on a new connection during the shutdown delay = %d; want 200", got)
	}
	if p.stopped(200 * time.Millisecond) {
		t.Fatal("serveUntilSignal returned during the shutdown delay")
	}
	p.sigs <- syscall.SIGTERM // a second signal skips the rest of the delay
	if !p.stopped(10 * time.Second) {
		t.Fatal("serveUntilSignal did not return after a second SIGTERM")
	}
	if err := <-p.done; err != nil {
		t.Errorf("serveUntilSignal = %v; want nil", err)
	}
	p.done <- nil
	if got := p.status(t, "GET", "/health", ""); got != 0 {
		t.Errorf("GET /health after the drain = %d; want the connection refused", got)
	}
}

// TestShutdownDelayEnds: the delay ends on its own after SIGTERM, and
// SIGINT (Ctrl-C) skips it.
func TestShutdownDelayEnds(t *testing.T) {
	for _, tc := range []struct {
		name    string
		sig     os.Signal
		atLeast time.Duration
	}{
		{"SIGTERM waits out the delay", syscall.SIGTERM, 300 * time.Millisecond},
		{"SIGINT skips it", syscall.SIGINT, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			delay := 300 * time.Millisecond
			if tc.atLeast == 0 {
				delay = time.Minute
			}
			p := startSignalProxy(t, stopOptions{Delay: delay, Drain: time.Second})
			began := time.Now()
			p.sigs <- tc.sig
			if !p.stopped(10 * time.Second) {
				t.Fatalf("serveUntilSignal did not return after %v", tc.sig)
			}
			if took := time.Since(began); took < tc.atLeast {
				t.Errorf("stopped %v after %v; want at least the %v delay", took, tc.sig, tc.atLeast)
			}
		})
	}
}

// TestSIGHUPIgnored: SIGHUP's default action would kill the process; the
// proxy logs it and keeps serving.
func TestSIGHUPIgnored(t *testing.T) {
	p := startSignalProxy(t, stopOptions{Drain: time.Second})
	p.sigs <- syscall.SIGHUP
	if !eventually(5*time.Second, func() bool { return strings.Contains(p.logs.String(), "reload not supported yet; ignoring SIGHUP") }) {
		t.Errorf("no log line for SIGHUP; logs:\n%s", p.logs.String())
	}
	if p.stopped(100 * time.Millisecond) {
		t.Fatal("serveUntilSignal returned after SIGHUP")
	}
	if got := p.status(t, "POST", "/v1/chat/completions", demoChat); got != 200 {
		t.Errorf("chat after SIGHUP = %d; want 200", got)
	}
	if got := p.status(t, "GET", "/ready", ""); got != 200 {
		t.Errorf("/ready after SIGHUP = %d; want 200", got)
	}
}

// TestShutdownDelayConfig: unset is the documented 5 s; an explicit "0s"
// stays 0 (drain at once), not the default.
func TestShutdownDelayConfig(t *testing.T) {
	for _, tc := range []struct {
		yaml string
		want time.Duration
	}{
		{"", 5 * time.Second},
		{"server: {shutdown_delay: 0s}\n", 0},
		{"server: {shutdown_delay: 12s}\n", 12 * time.Second},
	} {
		c := mustParseConfig(t, tc.yaml+validBase, nil)
		if got := c.Server.ShutdownDelay.Std(); got != tc.want {
			t.Errorf("%q: shutdown_delay = %v; want %v", tc.yaml, got, tc.want)
		}
	}
}
