package embed

import (
	"context"
	"hash/fnv"
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"llmproxy/router"
)

// fakeBackend stands for the router: it records each call and answers
// through fn (default: upstreamReply).
type fakeBackend struct {
	mu    sync.Mutex
	calls []*router.EmbedRequest
	n     atomic.Int64
	fn    func(ctx context.Context, req *router.EmbedRequest) (*router.EmbedResponse, error)
	seen  chan *router.EmbedRequest // when set, each call is sent here first
}

func (f *fakeBackend) ServeEmbed(ctx context.Context, req *router.EmbedRequest) (*router.EmbedResponse, error) {
	f.mu.Lock()
	f.calls = append(f.calls, req)
	f.mu.Unlock()
	f.n.Add(1)
	if f.seen != nil {
		f.seen <- req
	}
	req, res := req.WithResult() // as the router reports
	res.Alias, res.Target, res.Attempts = req.Model, router.Target{Provider: "fake", Model: "fake-embed"}, 1
	if f.fn != nil {
		return f.fn(ctx, req)
	}
	return upstreamReply(req), nil
}

// fakeVector is the fake upstream's vector for text: 8 floats from its
// hash, some tiny so that float formatting is exercised.
func fakeVector(text string) []float32 {
	v := make([]float32, 8)
	for i := range v {
		h := fnv.New64a()
		h.Write([]byte(strconv.Itoa(i) + text))
		x := h.Sum64()
		v[i] = float32(int64(x%2000001)-1000000) / 1e6 * float32(math.Pow(10, -float64(i%4)*2))
	}
	return v
}

// upstreamReply answers like OpenAI: base64 vectors, one token per byte.
func upstreamReply(req *router.EmbedRequest) *router.EmbedResponse {
	vecs := make([]vector, len(req.Input))
	tokens := 0
	for i, t := range req.Input {
		vecs[i] = vector{tokens: len(t), vals: fakeVector(t)}
		tokens += len(t)
	}
	return &router.EmbedResponse{Data: render(vecs, req.Result.Target.Model, true),
		Usage: router.Usage{PromptTokens: tokens, TotalTokens: tokens}}
}

// fakeClock hands the batcher's timers to the test, which fires them.
type fakeClock struct {
	timers chan fakeTimer
}

type fakeTimer struct {
	d       time.Duration
	fire    func()
	stopped *atomic.Bool
}

func newFakeClock() *fakeClock { return &fakeClock{timers: make(chan fakeTimer, 64)} }

func (c *fakeClock) afterFunc(d time.Duration, f func()) func() bool {
	var stopped atomic.Bool
	c.timers <- fakeTimer{d: d, fire: f, stopped: &stopped}
	return func() bool { return !stopped.Swap(true) }
}

// newBatcher is a batcher over next with a fake clock.
func newBatcher(t *testing.T, next Backend, o BatchOptions) (*batcher, *fakeClock) {
	t.Helper()
	clk := newFakeClock()
	b := &batcher{next: next, opts: func(string) BatchOptions { return o.withDefaults() }, afterFunc: clk.afterFunc,
		now: time.Now, m: newMetrics(nil), log: discardLog(), queues: map[queueKey]*pending{}}
	t.Cleanup(b.wg.Wait)
	return b, clk
}

// queued is how many inputs wait in the batcher, over every queue.
func (b *batcher) queued() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, p := range b.queues {
		n += p.inputs
	}
	return n
}

// waitFor polls cond until it holds or the test's patience runs out.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Microsecond) // polling, not synchronisation
	}
}
