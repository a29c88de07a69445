package budget

import (
	"context"
	"errors"
	"math"
	"sync/atomic"
	"testing"
	"time"

	"llmproxy/router"
)

// fakeEmbedder is the chain inside the guard: chat from fakeUpstream,
// embeddings answered by reply.
type fakeEmbedder struct {
	fakeUpstream
	calls atomic.Int64
	reply func(req *router.EmbedRequest) (*router.EmbedResponse, error)
}

func (f *fakeEmbedder) ServeEmbed(_ context.Context, req *router.EmbedRequest) (*router.EmbedResponse, error) {
	f.calls.Add(1)
	req.Target = router.Target{Provider: "p", Model: "up-embed"}
	if req.Result != nil {
		req.Result.Target = req.Target
	}
	return f.reply(req)
}

// usageReply answers with prompt_tokens = n.
func usageReply(n int) func(*router.EmbedRequest) (*router.EmbedResponse, error) {
	return func(*router.EmbedRequest) (*router.EmbedResponse, error) {
		return &router.EmbedResponse{Data: []byte(`{"object":"list"}`), Usage: router.Usage{PromptTokens: n, TotalTokens: n}}, nil
	}
}

// inputOnly prices input at $1 per million tokens: a budget of $0.0001
// is exactly 100 input tokens.
var inputOnly = ModelPolicy{Price: Price{InputPerMTok: 1}, Priced: true}

func embedHandler(t *testing.T, g *Guard, up *fakeEmbedder) router.EmbedHandler {
	t.Helper()
	h, ok := g.Middleware()(up).(router.EmbedHandler)
	if !ok {
		t.Fatal("the guard around an EmbedHandler does not serve embeddings")
	}
	return h
}

// TestEmbedAdmissionCountsInputs: every input is counted before the call,
// strings with the tokenizer and token arrays by their length; a request
// that does not fit the budget is refused whole, with insufficient_quota,
// and never reaches the upstream.
func TestEmbedAdmissionCountsInputs(t *testing.T) {
	if n := NewCounter().Text("e", "one two three"); n != 3 {
		t.Fatalf(`Text("one two three") = %d; the test needs 3`, n)
	}
	tests := []struct {
		name    string
		req     router.EmbedRequest
		want    int // tokens counted
		refused bool
	}{
		{"strings", router.EmbedRequest{Input: []string{"one two three", "one two three"}}, 6, false},
		{"token arrays", router.EmbedRequest{InputTokens: 40}, 40, false},
		{"token arrays over the budget", router.EmbedRequest{InputTokens: 101}, 0, true},
		{"strings over the budget", router.EmbedRequest{Input: repeat("one two three", 34)}, 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			up := &fakeEmbedder{reply: func(req *router.EmbedRequest) (*router.EmbedResponse, error) {
				return usageReply(req.PromptTokens)(req)
			}}
			g := mustGuard(t, GuardOptions{
				Teams:  map[string]TeamPolicy{"t": {Budget: &BudgetSpec{Tokens: 100, Period: Day}}},
				Models: map[string]ModelPolicy{"e": {Priced: true}},
			})
			req := tc.req
			req.Model, req.Result = "e", &router.Result{}
			_, err := embedHandler(t, g, up).ServeEmbed(teamCtx("t", "k"), &req)
			if tc.refused {
				var re *router.Error
				if !errors.As(err, &re) || re.Kind != router.KindBudgetExceeded || re.Code != "insufficient_quota" || up.calls.Load() != 0 {
					t.Fatalf("ServeEmbed = %v after %d upstream calls; want insufficient_quota before any", err, up.calls.Load())
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if req.PromptTokens != tc.want {
				t.Errorf("counted %d tokens; want %d", req.PromptTokens, tc.want)
			}
			if s, _ := g.Status(context.Background(), "t"); s.SpentTokens != int64(tc.want) {
				t.Errorf("spent %d tokens; want %d", s.SpentTokens, tc.want)
			}
		})
	}
}

func repeat(s string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = s
	}
	return out
}

// TestEmbedSettlesUpstreamUsage: the charge is the upstream's usage at the
// served deployment's price, the Meta the usage ledger reads carries the
// same cost, and the response headers' budget left follows.
func TestEmbedSettlesUpstreamUsage(t *testing.T) {
	prices := NewPrices()
	prices.SetAlias("e", Price{InputPerMTok: 1})
	prices.SetDeployment("p", "up-embed", Price{InputPerMTok: 2})
	up := &fakeEmbedder{reply: usageReply(7)} // the upstream counts 7; we count 3
	g := mustGuard(t, GuardOptions{
		Teams:  map[string]TeamPolicy{"t": {Budget: &BudgetSpec{USD: 1, Period: Day}}},
		Models: map[string]ModelPolicy{"e": {Price: Price{InputPerMTok: 2}, Priced: true}},
		Prices: prices,
	})
	req := &router.EmbedRequest{Model: "e", Input: []string{"one two three"}, Result: &router.Result{}}
	if _, err := embedHandler(t, g, up).ServeEmbed(teamCtx("t", "k"), req); err != nil {
		t.Fatal(err)
	}
	want := 7 * 2 / 1e6
	m := req.Result
	if m == nil || !m.Settled || m.Usage.PromptTokens != 7 || math.Abs(m.CostUSD-want) > 1e-15 || m.Estimated {
		t.Fatalf("meta = %+v; want settled at 7 tokens, $%g", m, want)
	}
	// The header reports settled spend (issue 17 item 5): nothing had
	// settled when this call was admitted, so the whole $1 is left.
	if !m.HasBudgetUSD || math.Abs(m.BudgetRemainingUSD-1) > 1e-9 {
		t.Errorf("budget left = %v (%v); want $1: in-flight reservations do not count", m.BudgetRemainingUSD, m.HasBudgetUSD)
	}
	if s, _ := g.Status(context.Background(), "t"); math.Abs(s.SpentUSD-m.CostUSD) > 1e-9 || s.SpentTokens != 7 {
		t.Errorf("budget spent $%v, %d tokens; want the settled $%v, 7 tokens", s.SpentUSD, s.SpentTokens, m.CostUSD)
	}
}

// TestEmbedWithoutUsage: an upstream that reports no usage is charged
// what admission counted, marked estimated.
func TestEmbedWithoutUsage(t *testing.T) {
	up := &fakeEmbedder{reply: usageReply(0)}
	g := mustGuard(t, GuardOptions{
		Teams:  map[string]TeamPolicy{"t": {Budget: &BudgetSpec{USD: 1, Period: Day}}},
		Models: map[string]ModelPolicy{"e": inputOnly},
	})
	req := &router.EmbedRequest{Model: "e", Input: []string{"one two three"}, InputTokens: 5, Result: &router.Result{}}
	if _, err := embedHandler(t, g, up).ServeEmbed(teamCtx("t", "k"), req); err != nil {
		t.Fatal(err)
	}
	if m := req.Result; !m.Settled || !m.Estimated || m.Usage.PromptTokens != 8 || math.Abs(m.CostUSD-8/1e6) > 1e-15 {
		t.Errorf("meta = %+v; want 8 estimated tokens at $1/M", m)
	}
}

// TestEmbedBudgetExhaustion: sequential calls spend the budget; the one
// that does not fit is refused and the spend never passes the budget.
func TestEmbedBudgetExhaustion(t *testing.T) {
	up := &fakeEmbedder{reply: usageReply(30)}
	g := mustGuard(t, GuardOptions{
		Teams:  map[string]TeamPolicy{"t": {Budget: &BudgetSpec{USD: 100e-6, Period: Day}}},
		Models: map[string]ModelPolicy{"e": inputOnly},
	})
	h := embedHandler(t, g, up)
	served, refused := 0, 0
	for range 5 {
		_, err := h.ServeEmbed(teamCtx("t", "k"), &router.EmbedRequest{Model: "e", InputTokens: 30})
		var re *router.Error
		switch {
		case err == nil:
			served++
		case errors.As(err, &re) && re.Kind == router.KindBudgetExceeded:
			refused++
		default:
			t.Fatalf("ServeEmbed: %v", err)
		}
	}
	s, _ := g.Status(context.Background(), "t")
	if served != 3 || refused != 2 || math.Abs(s.SpentUSD-90e-6) > 1e-12 {
		t.Errorf("served %d, refused %d, spent $%v; want 3 served, 2 refused, $0.00009 of $0.0001", served, refused, s.SpentUSD)
	}
}

// TestEmbedUpstreamErrorReleases: a failed call charges nothing.
func TestEmbedUpstreamErrorReleases(t *testing.T) {
	up := &fakeEmbedder{reply: func(*router.EmbedRequest) (*router.EmbedResponse, error) {
		return nil, &router.Error{Kind: router.KindUpstream, Message: "upstream broke"}
	}}
	g := mustGuard(t, GuardOptions{
		Teams:  map[string]TeamPolicy{"t": {Budget: &BudgetSpec{USD: 1, Period: Day}}},
		Models: map[string]ModelPolicy{"e": inputOnly},
	})
	if _, err := embedHandler(t, g, up).ServeEmbed(teamCtx("t", "k"), &router.EmbedRequest{Model: "e", InputTokens: 50}); err == nil {
		t.Fatal("ServeEmbed = nil; want the upstream's error")
	}
	if s, _ := g.Status(context.Background(), "t"); s.SpentUSD != 0 || s.SpentTokens != 0 {
		t.Errorf("spent $%v, %d tokens after a failed call; want nothing", s.SpentUSD, s.SpentTokens)
	}
}

// TestEmbedRateLimits: rpm and tpm apply to embeddings, with the
// x-ratelimit-* state in Meta, and the refusal is a rate_limit_error with
// a retry time.
func TestEmbedRateLimits(t *testing.T) {
	clk := &fakeClock{t: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)}
	up := &fakeEmbedder{reply: usageReply(3)}
	g := mustGuard(t, GuardOptions{
		Teams:  map[string]TeamPolicy{"t": {RateLimit: &RateSpec{RPM: 2, TPM: 1000}}},
		Models: map[string]ModelPolicy{"e": inputOnly},
		Now:    clk.Now,
		Ledger: NewMemory(clk.Now),
	})
	h := embedHandler(t, g, up)
	for i := range 2 {
		req := &router.EmbedRequest{Model: "e", Input: []string{"one two three"}, Result: &router.Result{}}
		if _, err := h.ServeEmbed(teamCtx("t", "k"), req); err != nil {
			t.Fatalf("call %d: %v", i+1, err)
		}
		rl := req.Result.RateLimit
		if rl.LimitRequests != 2 || rl.RemainingRequests != int64(1-i) || rl.LimitTokens != 1000 {
			t.Errorf("call %d: rate state %+v; want 2 rpm with %d left and 1000 tpm", i+1, rl, 1-i)
		}
	}
	req := &router.EmbedRequest{Model: "e", Input: []string{"one two three"}, Result: &router.Result{}}
	_, err := h.ServeEmbed(teamCtx("t", "k"), req)
	var re *router.Error
	if !errors.As(err, &re) || re.Kind != router.KindRateLimited || re.RetryAfter <= 0 || req.Result.RateLimit.RemainingRequests != 0 {
		t.Fatalf("third call: %v (meta %+v); want KindRateLimited with RetryAfter", err, req.Result)
	}
	// tpm: token arrays count; a call larger than what is left of the
	// minute is refused.
	clk.Add(time.Minute)
	up.reply = func(req *router.EmbedRequest) (*router.EmbedResponse, error) { return usageReply(req.InputTokens)(req) }
	if _, err := h.ServeEmbed(teamCtx("t", "k"), &router.EmbedRequest{Model: "e", InputTokens: 900}); err != nil {
		t.Fatalf("900 tokens of 1000: %v", err)
	}
	_, err = h.ServeEmbed(teamCtx("t", "k"), &router.EmbedRequest{Model: "e", InputTokens: 200})
	if !errors.As(err, &re) || re.Kind != router.KindRateLimited {
		t.Fatalf("200 more tokens: %v; want KindRateLimited", err)
	}
	if n := up.calls.Load(); n != 3 {
		t.Errorf("upstream got %d calls; want the 3 admitted", n)
	}
}

// TestEmbedNoDowngrade: the downgrade ladder never moves an embeddings
// call (another model is another vector space).
func TestEmbedNoDowngrade(t *testing.T) {
	up := &fakeEmbedder{reply: usageReply(3)}
	g := mustGuard(t, GuardOptions{
		Teams: map[string]TeamPolicy{"t": {Budget: &BudgetSpec{USD: 1, Period: Day},
			Downgrade: []DowngradeRule{{From: "e", To: "e-small"}}}},
		Models: map[string]ModelPolicy{"e": inputOnly, "e-small": inputOnly},
	})
	var asked string
	up.reply = func(req *router.EmbedRequest) (*router.EmbedResponse, error) {
		asked = req.Model
		return usageReply(3)(req)
	}
	req := &router.EmbedRequest{Model: "e", Input: []string{"one two three"}, Result: &router.Result{}}
	if _, err := embedHandler(t, g, up).ServeEmbed(teamCtx("t", "k"), req); err != nil {
		t.Fatal(err)
	}
	if asked != "e" || req.Result.DowngradedFrom != "" {
		t.Errorf("embeddings served by %q (downgraded from %q); want e, never downgraded", asked, req.Result.DowngradedFrom)
	}
}

// TestEmbedDenyUnpriced: budget.unpriced deny refuses unpriced embedding
// aliases as it does chat.
func TestEmbedDenyUnpriced(t *testing.T) {
	up := &fakeEmbedder{reply: usageReply(3)}
	g := mustGuard(t, GuardOptions{Models: map[string]ModelPolicy{"e": {}}, DenyUnpriced: true})
	_, err := embedHandler(t, g, up).ServeEmbed(teamCtx("t", "k"), &router.EmbedRequest{Model: "e", InputTokens: 1})
	var re *router.Error
	if !errors.As(err, &re) || re.Kind != router.KindBudgetExceeded || up.calls.Load() != 0 {
		t.Fatalf("ServeEmbed = %v; want KindBudgetExceeded before the upstream", err)
	}
}
