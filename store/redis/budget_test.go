//go:build integration

package redis

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"llmproxy/budget"
	"llmproxy/router"
)

// endless streams one-token chunks until closed: an upstream that ignores
// max_tokens, so only the guard's cut stops it.
type endless struct{ closed atomic.Bool }

func (e *endless) Next() (*router.Chunk, error) {
	if e.closed.Load() {
		return nil, context.Canceled
	}
	return &router.Chunk{Data: []byte(`{"id":"c","object":"chat.completion.chunk","created":1,"model":"up","choices":[{"index":0,"delta":{"content":" hi"},"finish_reason":null}]}`)}, nil
}
func (e *endless) Close() error { e.closed.Store(true); return nil }

var upstream = router.HandlerFunc(func(_ context.Context, req *router.ChatRequest) (router.Stream, error) {
	req.Target = router.Target{Provider: "p", Model: "up"}
	return &endless{}, nil
})

func newGuard(tb testing.TB, l budget.Ledger, tp budget.TeamPolicy, mp budget.ModelPolicy, failOpen bool) *budget.Guard {
	tb.Helper()
	// A generous op timeout: 300 streams under -race on two cores starve
	// the pool, and this test is about accounting, not latency.
	g, err := budget.NewGuard(budget.GuardOptions{Ledger: l, FailOpen: failOpen, OpTimeout: 10 * time.Second,
		Teams: map[string]budget.TeamPolicy{"t": tp}, Models: map[string]budget.ModelPolicy{"m": mp}})
	if err != nil {
		tb.Fatal(err)
	}
	return g
}

func ctxFor(key string) context.Context {
	return router.WithIdentity(context.Background(), router.Identity{Team: "t", KeyID: key})
}

const streamBody = `{"model":"m","stream":true,"max_tokens":200,"messages":[{"role":"user","content":"hi"}]}`

func newReq() *router.ChatRequest {
	r, _ := router.ParseChatRequest([]byte(streamBody))
	return r
}

// TestReplicasShareBudget: three guards ("replicas") share one Redis and a
// $1.00 budget; 300 concurrent streams ask for up to 200 tokens each.
func TestReplicasShareBudget(t *testing.T) {
	prefix := budgetPrefix()
	mp := budget.ModelPolicy{Price: budget.Price{InputPerMTok: 1, OutputPerMTok: 20}, Priced: true}
	tp := budget.TeamPolicy{Budget: &budget.BudgetSpec{USD: 1.00, Period: budget.Day}}
	var guards []router.Handler
	var first *budget.Guard
	for i := 0; i < 3; i++ {
		g := newGuard(t, mustBudgetRedisURL(t, budgetRedisURL(), prefix).Budgets(), tp, mp, false)
		if first == nil {
			first = g
		}
		guards = append(guards, g.Middleware()(upstream))
	}
	var wg sync.WaitGroup
	var admitted, refused, other atomic.Int64
	for i := 0; i < 300; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			st, err := guards[i%3].Serve(ctxFor("k"+strconv.Itoa(i%5)), newReq())
			var re *router.Error
			switch {
			case errors.As(err, &re) && re.Kind == router.KindBudgetExceeded:
				refused.Add(1)
				return
			case err != nil:
				other.Add(1)
				t.Error(err)
				return
			}
			admitted.Add(1)
			for {
				if _, err := st.Next(); err != nil {
					break
				}
			}
			st.Close()
		}(i)
	}
	wg.Wait()
	s, err := first.Status(context.Background(), "t")
	if err != nil {
		t.Fatal(err)
	}
	chunk := 20.0 / 1e6 // one one-token chunk
	minimal := 16*20.0/1e6 + 8.0/1e6
	t.Logf("admitted %d, refused %d, spent $%.6f", admitted.Load(), refused.Load(), s.SpentUSD)
	if s.SpentUSD > 1.00+chunk+1e-9 {
		t.Errorf("spent $%.6f; want ≤ $1.00 + one chunk ($%.6f)", s.SpentUSD, chunk)
	}
	if refused.Load() > 0 && s.SpentUSD < 1.00-minimal {
		t.Errorf("spent $%.6f with %d refusals; a minimal request ($%.6f) still fitted", s.SpentUSD, refused.Load(), minimal)
	}
	for i, h := range guards { // exhausted: nobody is admitted any more
		if _, err := h.Serve(ctxFor("k"), newReq()); err == nil {
			t.Errorf("replica %d admitted a request after exhaustion", i)
		}
	}
}

// TestMemoryRedisParity runs one random sequence through Memory and
// Redis: both must grant and refuse alike.
func TestMemoryRedisParity(t *testing.T) {
	c := mustBudgetRedis(t)
	rl, mem := c.Budgets(), budget.NewMemory(nil)
	rng := rand.New(rand.NewPCG(3, 4))
	start, end := budget.Month.Bounds(time.Now())
	buckets := []budget.Bucket{
		{Team: "t", ID: "team", Limit: budget.Amount{Tokens: 20000, NanoUSD: 30_000_000}, Start: start, End: end},
		{Team: "t", ID: "key:a", Limit: budget.Amount{NanoUSD: 12_000_000}, Start: start, End: end},
		{Team: "t", ID: "model:m", Limit: budget.Amount{Tokens: 9000}, Start: start, End: end},
	}
	ctx := context.Background()
	for i := 0; i < 150; i++ {
		r := budget.Reservation{ID: fmt.Sprint("p", i), Buckets: buckets[:1+rng.IntN(3)],
			Prompt: budget.Amount{Tokens: rng.Int64N(300), NanoUSD: rng.Int64N(50_000)}, NanoPerToken: float64(rng.IntN(3000)),
			MinCompletion: 16, MaxCompletion: 16 + rng.Int64N(1500)}
		gm, em := mem.Reserve(ctx, r)
		gr, er := rl.Reserve(ctx, r)
		if (em == nil) != (er == nil) || gm.Completion != gr.Completion {
			t.Fatalf("step %d: memory %d/%v, redis %d/%v", i, gm.Completion, em, gr.Completion, er)
		}
		if em == nil {
			used := budget.Amount{Tokens: gm.Charged.Tokens / 2, NanoUSD: gm.Charged.NanoUSD / 2}
			mem.Settle(ctx, r, used)
			if err := rl.Settle(ctx, r, used); err != nil {
				t.Fatal(err)
			}
			rl.Settle(ctx, r, used) // idempotent
		}
	}
	a, _ := mem.Spent(ctx, buckets)
	b, err := rl.Spent(ctx, buckets)
	if err != nil || fmt.Sprint(a) != fmt.Sprint(b) {
		t.Fatalf("spent memory %v, redis %v (%v)", a, b, err)
	}
}

// TestRedisRateLimitAccuracy drains a 6000 rpm limiter, then offers more
// than it allows for 10 s: admissions within 5% of 100/s.
func TestRedisRateLimitAccuracy(t *testing.T) {
	c := mustBudgetRedis(t)
	g := newGuard(t, c.Budgets(), budget.TeamPolicy{RateLimit: &budget.RateSpec{RPM: 6000}}, budget.ModelPolicy{}, false)
	h := g.Middleware()(router.HandlerFunc(func(context.Context, *router.ChatRequest) (router.Stream, error) { return &endless{}, nil }))
	try := func() bool {
		st, err := h.Serve(ctxFor("k"), newReq())
		if err != nil {
			return false
		}
		st.Close()
		return true
	}
	for try() { // drain the minute's burst
	}
	var admitted atomic.Int64
	start := time.Now()
	deadline := start.Add(10 * time.Second)
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				if try() {
					admitted.Add(1)
				}
				time.Sleep(time.Millisecond)
			}
		}()
	}
	wg.Wait()
	want := time.Since(start).Seconds() * 100
	if d := float64(admitted.Load()) - want; d > 0.05*want || d < -0.05*want {
		t.Errorf("admitted %d in %v; want %.0f ± 5%%", admitted.Load(), time.Since(start), want)
	}
}

// TestRedisOutage kills a private Redis while two guards serve a steady
// load: fail_closed refuses with 503 and nothing else, fail_open keeps
// serving on in-process limits, nothing panics, and both use Redis again
// once it is back.
func TestRedisOutage(t *testing.T) {
	tr := startTempRedis(t)
	tp := budget.TeamPolicy{Budget: &budget.BudgetSpec{Tokens: 1e9, Period: budget.Day}}
	mk := func(failOpen bool) *budget.Guard {
		g, err := budget.NewGuard(budget.GuardOptions{Ledger: mustBudgetRedisURL(t, tr.url(), budgetPrefix()).Budgets(), FailOpen: failOpen,
			OpTimeout: 500 * time.Millisecond, Teams: map[string]budget.TeamPolicy{"t": tp},
			Models: map[string]budget.ModelPolicy{"m": {Priced: true}}})
		if err != nil {
			t.Fatal(err)
		}
		return g
	}
	closed, open := mk(false), mk(true)
	run := func(g *budget.Guard) error {
		st, err := g.Middleware()(upstream).Serve(ctxFor("k"), newReq())
		if err != nil {
			return err
		}
		st.Next()
		st.Close()
		return nil
	}
	var stop, down atomic.Bool
	var openServedDown atomic.Int64
	var closedRefused, openFailed, closedOther atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				var re *router.Error
				switch err := run(closed); {
				case err == nil:
				case errors.As(err, &re) && re.StatusCode() == 503:
					closedRefused.Add(1)
				default:
					closedOther.Add(1)
				}
				isDown := down.Load()
				if run(open) != nil {
					openFailed.Add(1)
				} else if isDown {
					openServedDown.Add(1)
				}
			}
		}()
	}
	time.Sleep(200 * time.Millisecond)
	down.Store(true)
	tr.stop()
	for i := 0; i < 300 && (closedRefused.Load() == 0 || openServedDown.Load() == 0); i++ {
		time.Sleep(10 * time.Millisecond) // until the load has met the outage
	}
	down.Store(false)
	tr.start()
	recovered := false
	for i := 0; i < 100 && !recovered; i++ {
		recovered = run(closed) == nil
		time.Sleep(20 * time.Millisecond)
	}
	stop.Store(true)
	wg.Wait()
	if !recovered {
		t.Fatal("fail_closed guard did not recover after Redis came back")
	}
	if closedRefused.Load() == 0 || closedOther.Load() != 0 {
		t.Errorf("fail_closed: %d refused with 503, %d other errors; want some 503s and nothing else", closedRefused.Load(), closedOther.Load())
	}
	if openFailed.Load() != 0 || openServedDown.Load() == 0 {
		t.Errorf("fail_open: %d requests failed, %d served during the outage; want all served", openFailed.Load(), openServedDown.Load())
	}
	if err := run(open); err != nil {
		t.Fatalf("fail_open after recovery: %v", err)
	}
	s, err := open.Status(context.Background(), "t")
	if err != nil || s.SpentTokens == 0 {
		t.Errorf("after recovery Redis holds %d tokens (%v); want the new requests'", s.SpentTokens, err)
	}
}

func BenchmarkAdmissionRedis(b *testing.B) {
	c := mustBudgetRedis(b)
	g := newGuard(b, c.Budgets(), budget.TeamPolicy{Budget: &budget.BudgetSpec{USD: 1e6, Period: budget.Month},
		RateLimit: &budget.RateSpec{RPM: 1 << 40, TPM: 1 << 50}}, budget.ModelPolicy{Price: budget.Price{InputPerMTok: 2.5, OutputPerMTok: 10}, Priced: true}, false)
	h := g.Middleware()(router.HandlerFunc(func(context.Context, *router.ChatRequest) (router.Stream, error) {
		return &oneShot{}, nil
	}))
	ctx := ctxFor("k")
	body := []byte(`{"model":"m","max_tokens":100,"messages":[{"role":"system","content":"You are helpful."},{"role":"user","content":"What is the capital of France?"}]}`)
	for b.Loop() {
		st, err := h.Serve(ctx, &router.ChatRequest{Model: "m", Body: body, MaxTokens: 100})
		if err != nil {
			b.Fatal(err)
		}
		st.Next()
		st.Close()
	}
}

type oneShot struct{ done bool }

func (o *oneShot) Next() (*router.Chunk, error) {
	if o.done {
		return nil, io.EOF
	}
	o.done = true
	return &router.Chunk{Whole: true, Usage: &router.Usage{PromptTokens: 10, CompletionTokens: 5}, Data: []byte(`{}`)}, nil
}
func (o *oneShot) Close() error { return nil }

// TestRedisSettledSpend (issue 17 item 5): Grant.Settled and Settled
// leave out reservations in flight, Spent keeps them, as in Memory; Settle
// moves a charge into the settled spend once.
func TestRedisSettledSpend(t *testing.T) {
	c := mustBudgetRedis(t)
	rl, mem := c.Budgets(), budget.NewMemory(nil)
	ctx := context.Background()
	start, end := budget.Day.Bounds(time.Now())
	b := []budget.Bucket{{Team: "t", ID: "team", Limit: budget.Amount{Tokens: 10_000, NanoUSD: 1e9}, Start: start, End: end}}
	r1 := budget.Reservation{ID: "s1", Buckets: b, Prompt: budget.Amount{Tokens: 10, NanoUSD: 100}, NanoPerToken: 1000, MinCompletion: 1, MaxCompletion: 990}
	r2 := r1
	r2.ID = "s2"
	for _, l := range []budget.SettledLedger{rl, mem} {
		if _, err := l.Reserve(ctx, r1); err != nil {
			t.Fatal(err)
		}
		g2, err := l.Reserve(ctx, r2)
		if err != nil {
			t.Fatal(err)
		}
		if len(g2.Settled) != 1 || g2.Settled[0] != (budget.Amount{}) || g2.Spent[0].Tokens != 2000 {
			t.Errorf("%T: grant spent %v settled %v; want 2000 tokens spent, nothing settled", l, g2.Spent, g2.Settled)
		}
		for range 2 { // the second is a no-op
			if err := l.Settle(ctx, r1, budget.Amount{Tokens: 42, NanoUSD: 4200}); err != nil {
				t.Fatal(err)
			}
		}
		sp, err := l.Settled(ctx, b)
		if err != nil || sp[0] != (budget.Amount{Tokens: 42, NanoUSD: 4200}) {
			t.Errorf("%T: Settled = %v (%v); want 42 tokens, 4200 nano-USD (s2 in flight is not settled)", l, sp, err)
		}
		if sp, _ := l.Spent(ctx, b); sp[0] != (budget.Amount{Tokens: 1042, NanoUSD: 994_300}) {
			t.Errorf("%T: Spent = %v; want s2's hold included", l, sp)
		}
		g3, err := l.Reserve(ctx, budget.Reservation{ID: "s3", Buckets: b, Prompt: r1.Prompt, NanoPerToken: 1000, MinCompletion: 1, MaxCompletion: 10})
		if err != nil || g3.Settled[0] != (budget.Amount{Tokens: 42, NanoUSD: 4200}) {
			t.Errorf("%T: third grant settled %v (%v); want the first settlement only", l, g3.Settled, err)
		}
	}
}
