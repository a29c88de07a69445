package budget

import (
	"context"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"llmproxy/router"
)

// fakeStream streams n content chunks of text, a finish chunk and, when
// usage is set, the usage chunk. It ignores max_tokens, like an upstream
// that misbehaves, so the guard's cut is what stops it.
type fakeStream struct {
	n, i   int
	text   string
	usage  *router.Usage
	stage  int
	closed atomic.Bool
	failAt int // return an upstream error at this chunk (0: never)
}

func (f *fakeStream) Next() (*router.Chunk, error) {
	if f.closed.Load() {
		return nil, context.Canceled
	}
	if f.i < f.n {
		f.i++
		if f.failAt > 0 && f.i == f.failAt {
			return nil, &router.Error{Kind: router.KindUpstream, Message: "upstream broke"}
		}
		return &router.Chunk{Data: fmt.Appendf(nil, `{"id":"chatcmpl-1","object":"chat.completion.chunk","created":7,"model":"up","choices":[{"index":0,"delta":{"content":%q},"finish_reason":null}]}`, f.text)}, nil
	}
	f.stage++
	switch {
	case f.stage == 1:
		return &router.Chunk{Data: []byte(`{"id":"chatcmpl-1","object":"chat.completion.chunk","created":7,"model":"up","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}`)}, nil
	case f.stage == 2 && f.usage != nil:
		return &router.Chunk{Data: []byte(`{"id":"chatcmpl-1","choices":[],"usage":{}}`), Usage: f.usage, UsageOnly: true}, nil
	}
	return nil, io.EOF
}

func (f *fakeStream) Close() error { f.closed.Store(true); return nil }

// fakeUpstream is the handler behind the guard.
type fakeUpstream struct {
	mu      sync.Mutex
	make    func(req *router.ChatRequest) router.Stream
	err     error
	bodies  [][]byte
	streams []router.Stream
}

func (u *fakeUpstream) Serve(_ context.Context, req *router.ChatRequest) (router.Stream, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.bodies = append(u.bodies, req.Body)
	req.Target = router.Target{Provider: "p", Model: "up-model"}
	if req.Result != nil {
		req.Result.Target = req.Target
	}
	if u.err != nil {
		return nil, u.err
	}
	s := u.make(req)
	u.streams = append(u.streams, s)
	return s, nil
}

// fakeLedger is a Ledger whose methods a test sets.
type fakeLedger struct {
	reserve func(context.Context, Reservation) (Grant, error)
	settle  func(context.Context, Reservation, Amount) error
	spent   func(context.Context, []Bucket) ([]Amount, error)
}

func (f *fakeLedger) Reserve(ctx context.Context, r Reservation) (Grant, error) {
	return f.reserve(ctx, r)
}
func (f *fakeLedger) Settle(ctx context.Context, r Reservation, a Amount) error {
	return f.settle(ctx, r, a)
}
func (f *fakeLedger) Spent(ctx context.Context, b []Bucket) ([]Amount, error) { return f.spent(ctx, b) }

type countingObserver struct {
	mu         sync.Mutex
	downgrades []string
	errors     map[string]int
}

func (o *countingObserver) Downgrade(from, to, reason string) {
	o.mu.Lock()
	o.downgrades = append(o.downgrades, from+">"+to+":"+reason)
	o.mu.Unlock()
}

func (o *countingObserver) LedgerError(op string) {
	o.mu.Lock()
	if o.errors == nil {
		o.errors = map[string]int{}
	}
	o.errors[op]++
	o.mu.Unlock()
}

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func mustGuard(tb testing.TB, o GuardOptions) *Guard {
	tb.Helper()
	g, err := NewGuard(o)
	if err != nil {
		tb.Fatal(err)
	}
	return g
}

func teamCtx(team, key string) context.Context {
	return router.WithIdentity(context.Background(), router.Identity{Team: team, KeyID: key})
}

func chatReq(tb testing.TB, body string) *router.ChatRequest {
	tb.Helper()
	r, err := router.ParseChatRequest([]byte(body))
	if err != nil {
		tb.Fatal(err)
	}
	r.Result = &router.Result{}
	return r
}

// drain reads s to the end and returns the content chunks, all chunks and
// the final error.
func drain(s router.Stream) (content int, chunks []*router.Chunk, err error) {
	for {
		c, err := s.Next()
		if err != nil {
			return content, chunks, err
		}
		chunks = append(chunks, c)
		if !c.UsageOnly && len(c.Data) > 0 && !isFinish(c.Data) {
			content++
		}
	}
}

func isFinish(b []byte) bool {
	return len(b) > 0 && (contains(b, `"finish_reason":"stop"`) || contains(b, `"finish_reason":"length"`))
}

func contains(b []byte, s string) bool {
	for i := 0; i+len(s) <= len(b); i++ {
		if string(b[i:i+len(s)]) == s {
			return true
		}
	}
	return false
}
