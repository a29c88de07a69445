package upstream

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"llmproxy/providers/sse"
	"llmproxy/router"
)

// lines is a Decoder that turns each event into one chunk of its data; the
// data "end" is the end marker and "bad" a decode error.
type lines struct{}

func (lines) Decode(out []*router.Chunk, ev sse.Event) ([]*router.Chunk, bool, error) {
	switch string(ev.Data) {
	case "end":
		return out, true, nil
	case "bad":
		return out, false, &router.Error{Kind: router.KindUpstream, Message: "malformed"}
	}
	return append(out, &router.Chunk{Data: []byte(string(ev.Data))}), false, nil
}

// ending is a lines Decoder whose stream ends with its body.
type ending struct{ lines }

func (ending) End(out []*router.Chunk) ([]*router.Chunk, error) {
	return append(out, &router.Chunk{Data: []byte("usage"), UsageOnly: true}), nil
}

func testClient() *Client {
	return &Client{Name: "p", Key: "sk-secret", HTTP: http.DefaultClient,
		Status: func(r *http.Response) *router.Error {
			return &router.Error{Kind: router.KindUpstream, Message: http.StatusText(r.StatusCode)}
		}}
}

func collect(s *Stream) (got []string, err error) {
	defer s.Close()
	for {
		ch, err := s.Next()
		if err != nil {
			return got, err
		}
		got = append(got, string(ch.Data))
	}
}

func TestStream(t *testing.T) {
	for _, tc := range []struct {
		name string
		body string
		dec  Decoder
		want string
		kind router.Kind // of the final error; -1 means io.EOF
		msg  string
	}{
		{name: "end marker", body: "data: a\n\n: ping\n\ndata: b\n\ndata: end\n\n", dec: lines{}, want: "a,b", kind: -1},
		{name: "no end marker", body: "data: a\n\n", dec: lines{}, want: "a", kind: router.KindUpstream, msg: "closed the stream early"},
		{name: "cut mid event", body: "data: a\n\ndata: b", dec: ending{}, want: "a", kind: router.KindUpstream, msg: "closed the stream early"},
		{name: "ender at body end", body: "data: a\n\n", dec: ending{}, want: "a,usage", kind: -1},
		{name: "decode error stamped", body: "data: a\n\ndata: bad\n\n", dec: lines{}, want: "a", kind: router.KindUpstream, msg: "malformed"},
		{name: "oversized", body: "data: " + strings.Repeat("x", sse.MaxEventSize+1) + "\n\n", dec: lines{}, kind: router.KindUpstream, msg: "larger than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := testClient().Start(context.Background(), 0)
			var s Stream
			k.Open(&s, StreamConfig{Body: io.NopCloser(strings.NewReader(tc.body)), Decoder: tc.dec, Drain: true})
			got, err := collect(&s)
			if strings.Join(got, ",") != tc.want {
				t.Errorf("chunks = %q; want %q", got, tc.want)
			}
			if tc.kind < 0 {
				if err != io.EOF {
					t.Fatalf("err = %v; want io.EOF", err)
				}
				return
			}
			e := router.AsError(err)
			if e.Kind != tc.kind || e.Provider != "p" || !strings.Contains(e.Message, tc.msg) {
				t.Errorf("err = %+v; want kind %v, provider p, message containing %q", e, tc.kind, tc.msg)
			}
			if _, again := s.Next(); again != err {
				t.Errorf("second error = %v; want the same %v", again, err)
			}
		})
	}
}

func TestStreamIdle(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if got := r.Header.Get("X-Api-Key"); got != "sk-secret" {
			t.Errorf("X-Api-Key = %q; want the pinned key", got)
		}
		if got := r.Header.Get("Accept"); got != "text/event-stream" {
			t.Errorf("Accept = %q; want text/event-stream", got)
		}
		w.Write([]byte("data: a\n\n"))
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}))
	defer srv.Close()
	c := testClient()
	c.Headers = map[string]string{"Accept": "text/html", "x-api-key": "operator"}
	c.Pinned = map[string]string{"x-api-key": "sk-secret"}
	k := c.Start(context.Background(), time.Second)
	resp, err := k.Post(srv.URL, []byte("{}"), true)
	if err != nil {
		t.Fatal(err)
	}
	var s Stream
	k.Open(&s, StreamConfig{Body: resp.Body, Idle: 50 * time.Millisecond, Decoder: lines{}})
	got, err := collect(&s)
	if e := router.AsError(err); len(got) != 1 || e.Kind != router.KindUpstreamTimeout {
		t.Errorf("got %q, %v; want one chunk then KindUpstreamTimeout", got, err)
	}
}

func TestPostStatus(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusTeapot)
	}))
	defer srv.Close()
	_, err := testClient().Start(context.Background(), 0).Post(srv.URL, nil, false)
	if e := router.AsError(err); e.Message != "I'm a teapot" {
		t.Errorf("err = %v; want the Status mapper's error", err)
	}
}

func TestReply(t *testing.T) {
	resp := func(body string) *http.Response {
		return &http.Response{StatusCode: 200, Header: http.Header{}, Body: io.NopCloser(strings.NewReader(body))}
	}
	decode := func(b []byte) (*router.Chunk, error) { return &router.Chunk{Data: b, Whole: true}, nil }
	c := testClient()
	s, err := c.Start(context.Background(), 0).Reply(resp("{}"), 10, false, decode)
	if err != nil {
		t.Fatal(err)
	}
	if ch, err := s.Next(); err != nil || string(ch.Data) != "{}" {
		t.Errorf("Next = %v, %v; want the reply", ch, err)
	}
	if _, err := s.Next(); err != io.EOF {
		t.Errorf("second Next = %v; want io.EOF", err)
	}
	if _, err := c.Start(context.Background(), 0).Reply(resp("{}"), 10, true, decode); !strings.Contains(router.AsError(err).Message, "without streaming") {
		t.Errorf("stream request answered whole: err = %v; want without streaming", err)
	}
	if _, err := c.Start(context.Background(), 0).Reply(resp(strings.Repeat("x", 11)), 10, false, decode); !strings.Contains(router.AsError(err).Message, "larger than 10") {
		t.Errorf("oversized reply: err = %v; want larger than 10 bytes", err)
	}
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "timeout awaiting response headers" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

func TestTransportError(t *testing.T) {
	bg := context.Background()
	canceled, cancel := context.WithCancel(bg)
	cancel()
	deadline, cancel2 := context.WithTimeout(bg, -time.Second)
	defer cancel2()
	withCause := func(cause error) context.Context {
		ctx, cancel := context.WithCancelCause(bg)
		cancel(cause)
		return ctx
	}
	for _, tc := range []struct {
		name       string
		cctx, pctx context.Context
		err        error
		kind       router.Kind
	}{
		{"idle timer", withCause(ErrIdle), bg, context.Canceled, router.KindUpstreamTimeout},
		{"first-token timer", withCause(ErrFirstToken), bg, ErrFirstToken, router.KindUpstreamTimeout},
		{"closed by us", withCause(ErrClosed), bg, errors.New("read on closed body"), router.KindCanceled},
		{"client left", canceled, canceled, context.Canceled, router.KindCanceled},
		{"caller deadline", deadline, deadline, context.DeadlineExceeded, router.KindUpstreamTimeout},
		{"header timeout", bg, bg, timeoutErr{}, router.KindUpstreamTimeout},
		{"refused", bg, bg, errors.New(`Post "https://x/?key=sk-secret": connection refused`), router.KindUpstream},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := testClient().TransportError(tc.cctx, tc.pctx, tc.err)
			if e.Kind != tc.kind || e.Provider != "p" {
				t.Errorf("TransportError = %v (kind %v); want kind %v", e, e.Kind, tc.kind)
			}
			if strings.Contains(e.Error(), "sk-secret") {
				t.Errorf("Error() = %q leaks the key", e.Error())
			}
		})
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		h    http.Header
		want time.Duration
	}{
		{http.Header{"Retry-After-Ms": {"1500"}, "Retry-After": {"9"}}, 1500 * time.Millisecond},
		{http.Header{"Retry-After": {"2"}}, 2 * time.Second},
		{http.Header{"Retry-After": {now.Add(30 * time.Second).Format(http.TimeFormat)}}, 30 * time.Second},
		{http.Header{"Retry-After": {"soon"}}, 0},
		{http.Header{}, 0},
		// Issue 16: absurd values are bounded, never overflowed.
		{http.Header{"Retry-After": {"99999999"}}, MaxRetryAfter},
		{http.Header{"Retry-After": {"1e300"}}, MaxRetryAfter},
		{http.Header{"Retry-After": {"+Inf"}}, MaxRetryAfter},
		{http.Header{"Retry-After": {"NaN"}}, 0},
		{http.Header{"Retry-After": {"-5"}}, 0},
		{http.Header{"Retry-After-Ms": {"1e20"}}, MaxRetryAfter},
		{http.Header{"Retry-After-Ms": {"Inf"}}, MaxRetryAfter},
		{http.Header{"Retry-After": {" 3 "}}, 3 * time.Second},
		// HTTP dates: far future bounded, past none, measured from the
		// reply's Date when it has one (a skewed upstream clock).
		{http.Header{"Retry-After": {"Fri, 01 Mar 2030 12:00:00 GMT"}}, MaxRetryAfter},
		{http.Header{"Retry-After": {now.Add(-time.Hour).Format(http.TimeFormat)}}, 0},
		{http.Header{"Retry-After": {now.Add(time.Hour + 20*time.Second).Format(http.TimeFormat)},
			"Date": {now.Add(time.Hour).Format(http.TimeFormat)}}, 20 * time.Second},
	} {
		if got := RetryAfter(tc.h, now); got != tc.want {
			t.Errorf("RetryAfter(%v) = %v; want %v", tc.h, got, tc.want)
		}
	}
}
