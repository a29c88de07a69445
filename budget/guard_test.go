package budget

import (
	"context"
	"errors"
	"io"
	"math"
	"strings"
	"testing"

	"llmproxy/router"
)

const body1 = `{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}`

// outputOnly prices output at $1 per million tokens and input at zero, so
// a budget of $0.0001 is exactly 100 completion tokens.
var outputOnly = ModelPolicy{Price: Price{OutputPerMTok: 1}, Priced: true}

func TestStreamCutAtBudget(t *testing.T) {
	if n := NewCounter().Text("m", " hi"); n != 1 {
		t.Fatalf(`Text(" hi") = %d; the test needs a one-token chunk`, n)
	}
	up := &fakeUpstream{make: func(*router.ChatRequest) router.Stream { return &fakeStream{n: 1000, text: " hi"} }}
	g := mustGuard(t, GuardOptions{
		Teams:  map[string]TeamPolicy{"t": {Budget: &BudgetSpec{USD: 100e-6, Period: Day}}},
		Models: map[string]ModelPolicy{"m": outputOnly},
	})
	req := chatReq(t, body1)
	st, err := g.Middleware()(up).Serve(teamCtx("t", "k"), req)
	if err != nil {
		t.Fatal(err)
	}
	content, chunks, err := drain(st)
	var re *router.Error
	if !errors.As(err, &re) || re.Kind != router.KindBudgetExceeded || !strings.Contains(re.Message, "budget exhausted") {
		t.Fatalf("end = %v; want a budget exhausted error", err)
	}
	if content > 100 {
		t.Errorf("client got %d content chunks; want ≤ 100", content)
	}
	fin := chunks[len(chunks)-2]
	if !strings.Contains(string(fin.Data), `"finish_reason":"length"`) || !strings.Contains(string(fin.Data), `"id":"chatcmpl-1"`) {
		t.Errorf("finish chunk = %s; want finish_reason length with the stream's id", fin.Data)
	}
	if last := chunks[len(chunks)-1]; !last.UsageOnly || !last.Usage.Estimated {
		t.Errorf("last chunk = %+v; want the estimated usage", last)
	}
	if !up.streams[0].(*fakeStream).closed.Load() {
		t.Error("upstream not closed after the cut")
	}
	// The client sent no cap: the body stays as sent and the adapter
	// writes the clamp (CompletionCap) in its upstream's spelling.
	if req.Result.MaxTokensClamped != 100 || req.CompletionCap != 100 || string(up.bodies[0]) != body1 {
		t.Errorf("clamp = %d, cap %d, body %s; want 100, 100 and the client's body", req.Result.MaxTokensClamped, req.CompletionCap, up.bodies[0])
	}
	st.Close()
	st.Close() // twice is safe and settles once
	if !req.Result.Settled || !req.Result.Estimated || req.Result.Usage.CompletionTokens != content {
		t.Errorf("meta = %+v; want settled, estimated, %d completion tokens", req.Result, content)
	}
	s, _ := g.Status(context.Background(), "t")
	if s.SpentUSD > 100e-6+1e-12 || s.SpentUSD < 99e-6 {
		t.Errorf("spent = %v; want ≈ $0.0001", s.SpentUSD)
	}
	// The budget is gone: the next request is refused, not clamped to 0.
	_, err = g.Middleware()(up).Serve(teamCtx("t", "k"), chatReq(t, body1))
	if !errors.As(err, &re) || re.Kind != router.KindBudgetExceeded {
		t.Fatalf("after exhaustion: %v; want KindBudgetExceeded", err)
	}
}

func TestClampKeepsClientField(t *testing.T) {
	up := &fakeUpstream{make: func(*router.ChatRequest) router.Stream { return &fakeStream{n: 3, text: " hi"} }}
	g := mustGuard(t, GuardOptions{
		Teams:  map[string]TeamPolicy{"t": {Budget: &BudgetSpec{Tokens: 100, Period: Month}}},
		Models: map[string]ModelPolicy{"m": {Priced: true}},
	})
	tests := []struct {
		name, body, want string
		clamped          bool
	}{
		{"fits", `{"model":"m","max_completion_tokens":20,"messages":[{"role":"user","content":"hi"}]}`, `"max_completion_tokens":20`, false},
		{"clamp max_completion_tokens", `{"model":"m","max_completion_tokens":5000,"messages":[{"role":"user","content":"hi"}]}`, `"max_completion_tokens":`, true},
		{"clamp max_tokens", `{"model":"m","max_tokens":5000,"messages":[{"role":"user","content":"hi"}]}`, `"max_tokens":`, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := chatReq(t, tc.body)
			st, err := g.Middleware()(up).Serve(teamCtx("t", "k"), req)
			if err != nil {
				t.Fatal(err)
			}
			drain(st)
			st.Close()
			body := string(up.bodies[len(up.bodies)-1])
			if !strings.Contains(body, tc.want) || (req.Result.MaxTokensClamped > 0) != tc.clamped {
				t.Errorf("body %s clamp %d; want %s, clamped %v", body, req.Result.MaxTokensClamped, tc.want, tc.clamped)
			}
			if tc.clamped && (req.MaxTokens != req.Result.MaxTokensClamped || req.CompletionCap != 0) {
				t.Errorf("req.MaxTokens = %d, CompletionCap %d; want %d and 0 (the client's field holds the cap)", req.MaxTokens, req.CompletionCap, req.Result.MaxTokensClamped)
			}
		})
	}
}

// TestCostGolden settles the same usage through a streamed and a plain
// reply and checks both against hand-computed costs.
func TestCostGolden(t *testing.T) {
	tests := []struct {
		name  string
		price Price
		usage router.Usage
		want  float64
	}{
		{"gpt-4o", Price{InputPerMTok: 2.5, OutputPerMTok: 10}, router.Usage{PromptTokens: 1000, CompletionTokens: 500}, 0.0075},
		{"cached", Price{InputPerMTok: 2.5, OutputPerMTok: 10, CachedInputPerMTok: 1.25}, router.Usage{PromptTokens: 1000, CachedTokens: 400, CompletionTokens: 100}, 0.003},
		{"mini", Price{InputPerMTok: 0.15, OutputPerMTok: 0.6}, router.Usage{PromptTokens: 12, CompletionTokens: 3}, 0.0000036},
	}
	for _, tc := range tests {
		for _, stream := range []bool{true, false} {
			t.Run(tc.name, func(t *testing.T) {
				u := tc.usage
				up := &fakeUpstream{make: func(*router.ChatRequest) router.Stream {
					if stream {
						return &fakeStream{n: 2, text: " hi", usage: &u}
					}
					return &oneChunk{c: &router.Chunk{Whole: true, Usage: &u, Data: []byte(`{"choices":[{"message":{"content":"hi hi"}}]}`)}}
				}}
				g := mustGuard(t, GuardOptions{
					Teams:  map[string]TeamPolicy{"t": {Budget: &BudgetSpec{USD: 10, Period: Day}}},
					Models: map[string]ModelPolicy{"m": {Price: tc.price, Priced: true}},
				})
				body := strings.Replace(body1, `"stream":true`, `"stream":`+map[bool]string{true: "true", false: "false"}[stream], 1)
				req := chatReq(t, body)
				st, err := g.Middleware()(up).Serve(teamCtx("t", "k"), req)
				if err != nil {
					t.Fatal(err)
				}
				drain(st)
				st.Close()
				if math.Abs(req.Result.CostUSD-tc.want) > 1e-12 || req.Result.Estimated {
					t.Errorf("stream=%v cost = %v (estimated %v); want %v", stream, req.Result.CostUSD, req.Result.Estimated, tc.want)
				}
				s, _ := g.Status(context.Background(), "t")
				if math.Abs(s.SpentUSD-tc.want) > 1e-9 {
					t.Errorf("stream=%v spent = %v; want %v", stream, s.SpentUSD, tc.want)
				}
			})
		}
	}
}

type oneChunk struct {
	c    *router.Chunk
	done bool
}

func (o *oneChunk) Next() (*router.Chunk, error) {
	if o.done {
		return nil, io.EOF
	}
	o.done = true
	return o.c, nil
}
func (o *oneChunk) Close() error { return nil }

func TestAborts(t *testing.T) {
	tests := []struct {
		name   string
		stream *fakeStream
		read   int // chunks the client reads before closing (-1: all)
		want   int // completion tokens charged
	}{
		{"client disconnect", &fakeStream{n: 50, text: " hi"}, 10, 10},
		{"upstream error", &fakeStream{n: 50, text: " hi", failAt: 8}, -1, 7},
		{"no usage", &fakeStream{n: 5, text: " hi"}, -1, 5},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			up := &fakeUpstream{make: func(*router.ChatRequest) router.Stream { return tc.stream }}
			g := mustGuard(t, GuardOptions{
				Teams:  map[string]TeamPolicy{"t": {Budget: &BudgetSpec{Tokens: 100000, Period: Day}}},
				Models: map[string]ModelPolicy{"m": {Priced: true}},
			})
			req := chatReq(t, body1)
			st, _ := g.Middleware()(up).Serve(teamCtx("t", "k"), req)
			for i := 0; tc.read < 0 || i < tc.read; i++ {
				if _, err := st.Next(); err != nil {
					break
				}
			}
			st.Close()
			if req.Result.Usage.CompletionTokens != tc.want || !req.Result.Estimated {
				t.Errorf("usage = %+v; want %d completion tokens, estimated", req.Result.Usage, tc.want)
			}
			s, _ := g.Status(context.Background(), "t")
			if s.SpentTokens != int64(req.Result.Usage.PromptTokens+tc.want) {
				t.Errorf("spent %d tokens; want prompt + %d", s.SpentTokens, tc.want)
			}
		})
	}
}

func TestUpstreamFailureReleases(t *testing.T) {
	up := &fakeUpstream{err: &router.Error{Kind: router.KindUpstream, Message: "down"}}
	g := mustGuard(t, GuardOptions{
		Teams:  map[string]TeamPolicy{"t": {Budget: &BudgetSpec{Tokens: 10000, Period: Day}}},
		Models: map[string]ModelPolicy{"m": {Priced: true}},
	})
	if _, err := g.Middleware()(up).Serve(teamCtx("t", "k"), chatReq(t, body1)); err == nil {
		t.Fatal("want the upstream error")
	}
	if s, _ := g.Status(context.Background(), "t"); s.SpentTokens != 0 {
		t.Errorf("spent %d after a failed upstream; want 0", s.SpentTokens)
	}
}

func TestLedgerFailure(t *testing.T) {
	broken := &fakeLedger{
		reserve: func(context.Context, Reservation) (Grant, error) { return Grant{}, errors.New("connection refused") },
		settle:  func(context.Context, Reservation, Amount) error { return errors.New("connection refused") },
		spent:   func(context.Context, []Bucket) ([]Amount, error) { return nil, errors.New("connection refused") },
	}
	for _, failOpen := range []bool{false, true} {
		obs := &countingObserver{}
		up := &fakeUpstream{make: func(*router.ChatRequest) router.Stream { return &fakeStream{n: 2, text: " hi"} }}
		g := mustGuard(t, GuardOptions{Ledger: broken, FailOpen: failOpen, Observer: obs,
			Teams:  map[string]TeamPolicy{"t": {Budget: &BudgetSpec{Tokens: 10000, Period: Day}, RateLimit: &RateSpec{RPM: 1}}},
			Models: map[string]ModelPolicy{"m": {Priced: true}},
		})
		st, err := g.Middleware()(up).Serve(teamCtx("t", "k"), chatReq(t, body1))
		var re *router.Error
		switch {
		case !failOpen && (!errors.As(err, &re) || re.StatusCode() != 503):
			t.Errorf("fail_closed: %v; want 503", err)
		case failOpen && err != nil:
			t.Errorf("fail_open: %v; want admitted", err)
		case failOpen:
			st.Close()
			// The fallback's in-process limits still apply: rpm 1.
			if _, err := g.Middleware()(up).Serve(teamCtx("t", "k"), chatReq(t, body1)); !errors.As(err, &re) || re.Kind != router.KindRateLimited {
				t.Errorf("fail_open second request: %v; want the in-process rate limit", err)
			}
		}
		if obs.errors["reserve"] == 0 {
			t.Errorf("failOpen=%v: no reserve error observed", failOpen)
		}
	}
}
