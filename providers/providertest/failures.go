package providertest

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"llmproxy/router"
)

type statusScenario struct {
	name    string
	status  int
	message string
	header  http.Header
	kind    router.Kind
	code    int           // the client's status
	retry   time.Duration // wanted RetryAfter
	secret  bool          // the message must not reach the client
}

func statusScenarios() []statusScenario {
	return []statusScenario{
		{name: "status_429", status: 429, message: "Rate limit reached for requests", header: http.Header{"Retry-After": {"2"}},
			kind: router.KindUpstreamRateLimited, code: 429, retry: 2 * time.Second},
		{name: "status_500", status: 500, message: "The server had an error while processing your request.", kind: router.KindUpstream, code: 502},
		{name: "status_401", status: 401, message: "Incorrect API key provided: " + TestKey + ".", kind: router.KindUpstream, code: 502, secret: true},
		{name: "status_400", status: 400, message: "Invalid value for 'temperature': must be at most 2.", kind: router.KindInvalidRequest, code: 400},
	}
}

func runStatus(t *testing.T, f Factory, stream bool, sc statusScenario) {
	tr := f.Fake.Error(sc.status, sc.message)
	if tr.Header == nil {
		tr.Header = http.Header{}
	}
	for k, v := range sc.header {
		tr.Header[k] = v
	}
	p := &plan{tr: tr, events: -1, want: Want{Stream: stream}}
	s, err := open(t, context.Background(), f, p, router.Timeouts{FirstToken: slack, Idle: slack})
	if err == nil { // an adapter may report the status on the first Next
		_, err = s.Next()
	}
	e := wantKind(t, err, sc.kind)
	if got := e.StatusCode(); got != sc.code {
		t.Errorf("StatusCode() = %d; want %d", got, sc.code)
	}
	if e.RetryAfter != sc.retry {
		t.Errorf("RetryAfter = %v; want %v", e.RetryAfter, sc.retry)
	}
	if strings.Contains(e.Error(), TestKey) || strings.Contains(e.Message, TestKey) {
		t.Errorf("error leaks the API key: %q", e.Error())
	}
	if sc.secret && strings.Contains(e.Message, "Incorrect API key") {
		t.Errorf("Message = %q passes on the upstream's auth text", e.Message)
	}
	if sc.kind == router.KindInvalidRequest && !strings.Contains(e.Message, sc.message) {
		t.Errorf("Message = %q; want the upstream's %q", e.Message, sc.message)
	}
}

// runEnding plays a stream that goes wrong after some events and checks the
// error that ends it.
func runEnding(t *testing.T, f Factory, end ending, kind router.Kind) {
	tr := transcript(t, f, ReplyStreamText)
	n := -1
	if end == endCut || end == endError {
		n = max(1, len(tr.Events)/2)
	}
	const msg = "The server had an error while processing your request. Sorry about that!"
	p := &plan{tr: tr, events: n, end: end, errMsg: msg, want: Want{Stream: true}}
	s, err := open(t, context.Background(), f, p, router.Timeouts{FirstToken: slack, Idle: stall})
	if err != nil {
		t.Fatalf("Chat: %v", err)
	}
	var ra reassembly
	e := wantKind(t, drain(t, s, &ra), kind)
	if len(ra.chunks) == 0 {
		t.Errorf("no chunk arrived before the failure")
	}
	if end == endError && !strings.Contains(e.Message, msg) {
		t.Errorf("Message = %q; want the upstream's %q", e.Message, msg)
	}
	if end == endStall {
		s.Close()
		waitGone(t, p)
	}
}

func runFirstTokenStall(t *testing.T, f Factory) {
	p := &plan{tr: Transcript{Header: transcript(t, f, ReplyStreamText).Header}, end: endStall, want: Want{Stream: true}}
	s, err := open(t, context.Background(), f, p, router.Timeouts{FirstToken: stall, Idle: slack})
	if err == nil {
		_, err = s.Next()
	}
	wantKind(t, err, router.KindUpstreamTimeout)
	if s != nil {
		s.Close()
	}
	waitGone(t, p)
}

// runCancel cancels the caller's context mid-stream: the stream must end as
// KindCanceled and the upstream request must be torn down.
func runCancel(t *testing.T, f Factory) {
	tr := transcript(t, f, ReplyStreamText)
	p := &plan{tr: tr, events: -1, end: endStall, want: Want{Stream: true}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, err := open(t, ctx, f, p, router.Timeouts{FirstToken: slack, Idle: slack})
	if err != nil {
		t.Fatalf("Chat: %v", err)
	}
	if _, err := s.Next(); err != nil {
		t.Fatalf("first Next: %v", err)
	}
	cancel()
	var ra reassembly
	wantKind(t, drain(t, s, &ra), router.KindCanceled)
	waitGone(t, p)
}

// waitGone fails unless the fake saw its request's context end.
func waitGone(t *testing.T, p *plan) {
	t.Helper()
	select {
	case <-p.gone:
	case <-time.After(5 * time.Second):
		t.Fatal("the fake upstream's r.Context() never ended: the adapter left the request open")
	}
}

func wantKind(t *testing.T, err error, kind router.Kind) *router.Error {
	t.Helper()
	var e *router.Error
	if !errors.As(err, &e) {
		t.Fatalf("err = %v (%T); want a *router.Error of kind %v", err, err, kind)
	}
	if e.Kind != kind {
		t.Fatalf("err kind = %v (%v); want %v", e.Kind, e, kind)
	}
	return e
}
