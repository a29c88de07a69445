package budget

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"testing"

	"llmproxy/router"
)

// Regression tests for issue 17 items 1–5 (money).

func serveOnce(t *testing.T, g *Guard, up router.Handler, team, body string) (*router.ChatRequest, router.Stream, error) {
	t.Helper()
	req := chatReq(t, body)
	st, err := g.Middleware()(up).Serve(teamCtx(team, "k"), req)
	return req, st, err
}

func wholeReply(u router.Usage) func(*router.ChatRequest) router.Stream {
	return func(*router.ChatRequest) router.Stream {
		return &oneChunk{c: &router.Chunk{Data: []byte(`{"choices":[]}`), Whole: true, Usage: &u}}
	}
}

// TestNoCapWrittenWithRoom (item 1): a budgeted request with room goes
// upstream as the client sent it: no max_tokens injected, no cap for the
// adapter to write.
func TestNoCapWrittenWithRoom(t *testing.T) {
	up := &fakeUpstream{make: func(*router.ChatRequest) router.Stream { return &fakeStream{n: 3, text: " hi"} }}
	g := mustGuard(t, GuardOptions{
		Teams:  map[string]TeamPolicy{"t": {Budget: &BudgetSpec{USD: 10, Period: Day}}},
		Models: map[string]ModelPolicy{"m": outputOnly},
	})
	req, st, err := serveOnce(t, g, up, "t", body1)
	if err != nil {
		t.Fatal(err)
	}
	drain(st)
	st.Close()
	if string(up.bodies[0]) != body1 || req.CompletionCap != 0 || req.MaxTokens != 0 || req.Result.MaxTokensClamped != 0 {
		t.Errorf("body %s, cap %d, max_tokens %d, clamped %d; want the client's body and no cap",
			up.bodies[0], req.CompletionCap, req.MaxTokens, req.Result.MaxTokensClamped)
	}
}

// TestNChoicesReserveEveryChoice (item 2): the worst case is n × the cap;
// a clamp divides the grant by n; n choices that cannot each get the
// minimum are refused.
func TestNChoicesReserveEveryChoice(t *testing.T) {
	// $10 per million output tokens: $1 is 100,000 completion tokens.
	price := ModelPolicy{Price: Price{OutputPerMTok: 10}, Priced: true}
	tests := []struct {
		name      string
		usd       float64
		body      string
		clamped   int
		refused   bool
		wantField string
	}{
		{"n=128 no cap on $1", 1, `{"model":"m","n":128,"messages":[{"role":"user","content":"hi"}]}`, 781, false, ""},
		{"n=8 fits", 1, `{"model":"m","n":8,"max_tokens":1000,"messages":[{"role":"user","content":"hi"}]}`, 0, false, `"max_tokens":1000`},
		{"n=128 clamps client field", 1, `{"model":"m","n":128,"max_tokens":1000,"messages":[{"role":"user","content":"hi"}]}`, 781, false, `"max_tokens":781`},
		{"n=128 refused on $0.01", 0.01, `{"model":"m","n":128,"messages":[{"role":"user","content":"hi"}]}`, 0, true, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := mustGuard(t, GuardOptions{
				Teams:  map[string]TeamPolicy{"t": {Budget: &BudgetSpec{USD: tc.usd, Period: Day}}},
				Models: map[string]ModelPolicy{"m": price},
			})
			// The upstream bills every choice the cap allows.
			up := &fakeUpstream{make: func(r *router.ChatRequest) router.Stream {
				limit := r.MaxTokens
				if limit == 0 {
					limit = 4096 // the upstream's own default
				}
				return wholeReply(router.Usage{CompletionTokens: r.N * limit})(r)
			}}
			req, st, err := serveOnce(t, g, up, "t", tc.body)
			var re *router.Error
			if tc.refused {
				if !errors.As(err, &re) || re.Kind != router.KindBudgetExceeded {
					t.Fatalf("err = %v; want KindBudgetExceeded", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			drain(st)
			st.Close()
			if req.Result.MaxTokensClamped != tc.clamped {
				t.Errorf("clamped = %d; want %d", req.Result.MaxTokensClamped, tc.clamped)
			}
			if tc.wantField == "" && tc.clamped > 0 && req.CompletionCap != tc.clamped {
				t.Errorf("CompletionCap = %d; want %d", req.CompletionCap, tc.clamped)
			}
			if tc.wantField != "" && !strings.Contains(string(up.bodies[0]), tc.wantField) {
				t.Errorf("body %s; want %s", up.bodies[0], tc.wantField)
			}
			if s, _ := g.Status(context.Background(), "t"); s.SpentUSD > tc.usd {
				t.Errorf("spent $%v of a $%v budget", s.SpentUSD, tc.usd)
			}
		})
	}
}

// twoChoices streams chunks that each carry " hi" for choices 0 and 1.
type twoChoices struct{ i int }

func (s *twoChoices) Next() (*router.Chunk, error) {
	if s.i++; s.i > 1000 {
		return nil, io.EOF
	}
	return &router.Chunk{Data: []byte(`{"id":"c","object":"chat.completion.chunk","created":1,"model":"up","choices":[` +
		`{"index":0,"delta":{"content":" hi"},"finish_reason":null},{"index":1,"delta":{"content":" hi"},"finish_reason":null}]}`)}, nil
}
func (s *twoChoices) Close() error { return nil }

// TestNChoicesStreamCut (item 2): the stream counts every choice's
// deltas against the grant and ends every choice when it cuts.
func TestNChoicesStreamCut(t *testing.T) {
	up := &fakeUpstream{make: func(*router.ChatRequest) router.Stream { return &twoChoices{} }}
	g := mustGuard(t, GuardOptions{
		Teams:  map[string]TeamPolicy{"t": {Budget: &BudgetSpec{USD: 100e-6, Period: Day}}},
		Models: map[string]ModelPolicy{"m": outputOnly},
	})
	req, st, err := serveOnce(t, g, up, "t", `{"model":"m","stream":true,"n":2,"messages":[{"role":"user","content":"hi"}]}`)
	if err != nil {
		t.Fatal(err)
	}
	content, chunks, _ := drain(st)
	st.Close()
	if req.Result.MaxTokensClamped != 50 || content > 50 {
		t.Errorf("clamped %d, %d two-token chunks; want 50 per choice and at most 50 chunks", req.Result.MaxTokensClamped, content)
	}
	fin := string(chunks[len(chunks)-2].Data)
	if !strings.Contains(fin, `{"index":0,"delta":{},"logprobs":null,"finish_reason":"length"}`) ||
		!strings.Contains(fin, `{"index":1,"delta":{},"logprobs":null,"finish_reason":"length"}`) {
		t.Errorf("finish chunk %s; want both choices ended with length", fin)
	}
	if u := req.Result.Usage.CompletionTokens; u > 100 {
		t.Errorf("settled %d completion tokens; want ≤ 100", u)
	}
}

// TestFileAndAudioPartsBySize (item 3): inline file and audio parts are
// reserved at their decoded size, so a 400 KB file part no longer passes
// a $1 budget as 765 tokens.
func TestFileAndAudioPartsBySize(t *testing.T) {
	b64 := strings.Repeat("QUFB", 100_000) // 400,000 base64 characters, 300,000 bytes
	file := `{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"summarize"},` +
		`{"type":"file","file":{"filename":"r.pdf","file_data":"data:application/pdf;base64,` + b64 + `"}}]}]}`
	audio := `{"model":"m","messages":[{"role":"user","content":[{"type":"input_audio","input_audio":{"format":"wav","data":"` + b64 + `"}}]}]}`
	c := NewCounter()
	for name, body := range map[string]string{"file": file, "audio": audio} {
		exact, bound := c.Prompt("gpt-4o", []byte(body)), PromptBound([]byte(body))
		if exact < 300_000 || bound < exact {
			t.Errorf("%s: Prompt = %d, bound %d; want ≥ 300,000 and bound ≥ Prompt", name, exact, bound)
		}
	}
	// $10 per million input tokens: the file alone is $3.
	g := mustGuard(t, GuardOptions{
		Teams:  map[string]TeamPolicy{"t": {Budget: &BudgetSpec{USD: 1, Period: Day}}},
		Models: map[string]ModelPolicy{"m": {Price: Price{InputPerMTok: 10, OutputPerMTok: 10}, Priced: true}},
	})
	up := &fakeUpstream{make: wholeReply(router.Usage{PromptTokens: 100_054, CompletionTokens: 10})}
	_, _, err := serveOnce(t, g, up, "t", file)
	var re *router.Error
	if !errors.As(err, &re) || re.Kind != router.KindBudgetExceeded || len(up.bodies) != 0 {
		t.Errorf("err = %v, upstream calls %d; want KindBudgetExceeded before the upstream", err, len(up.bodies))
	}
}

// TestSettleAtServedAliasPrice (item 4): a fallback is billed at the price
// of the alias that answered, and the reservation covers the dearest alias
// the request may fall back to.
func TestSettleAtServedAliasPrice(t *testing.T) {
	models := map[string]ModelPolicy{
		"dear":  {Price: Price{OutputPerMTok: 16}, Priced: true, Fallbacks: []string{"cheap"}},
		"cheap": {Price: Price{OutputPerMTok: 1}, Priced: true, Fallbacks: []string{"dear2", "cheap"}},
		"dear2": {Price: Price{OutputPerMTok: 20}, Priced: true},
	}
	prices := NewPrices()
	for a, mp := range models {
		prices.SetAlias(a, mp.Price)
	}
	var perToken []float64
	mem := NewMemory(nil)
	led := &fakeLedger{
		reserve: func(ctx context.Context, r Reservation) (Grant, error) {
			perToken = append(perToken, r.NanoPerToken)
			return mem.Reserve(ctx, r)
		},
		settle: mem.Settle, spent: mem.Spent,
	}
	g := mustGuard(t, GuardOptions{Models: models, Prices: prices, Ledger: led,
		Teams: map[string]TeamPolicy{"t": {Budget: &BudgetSpec{USD: 100, Period: Day}}}})
	up := &fakeUpstream{make: func(r *router.ChatRequest) router.Stream {
		r.Result.FallbackAlias = "cheap"
		return wholeReply(router.Usage{CompletionTokens: 1000})(r)
	}}
	req, st, err := serveOnce(t, g, up, "t", `{"model":"dear","messages":[{"role":"user","content":"hi"}]}`)
	if err != nil {
		t.Fatal(err)
	}
	drain(st)
	st.Close()
	if math.Abs(req.Result.CostUSD-0.001) > 1e-12 {
		t.Errorf("cost = %v; want $0.001 (1,000 tokens at cheap's $1/M, not dear's $16/M)", req.Result.CostUSD)
	}
	// dear → cheap → dear2: the reservation is priced at dear2's $20/M.
	if len(perToken) != 1 || perToken[0] != 20e3 {
		t.Errorf("reserved at %v nano-USD per token; want 20000 (the dearest along the fallbacks)", perToken)
	}
}

// TestDowngradeOnSettledSpend (item 5): at_budget_used and the remaining
// header read settled spend. A request in flight holds $0.041 of a $0.05
// budget; the next request must not be downgraded by a 0.5 rule, and the
// header reports what was settled.
func TestDowngradeOnSettledSpend(t *testing.T) {
	models := map[string]ModelPolicy{"big": {Price: Price{OutputPerMTok: 10}, Priced: true}, "small": {Priced: true}}
	up := &fakeUpstream{make: func(*router.ChatRequest) router.Stream { return &fakeStream{n: 25, text: " hi"} }}
	g := mustGuard(t, GuardOptions{Models: models, Teams: map[string]TeamPolicy{"t": {
		Budget:    &BudgetSpec{USD: 0.05, Period: Day},
		Downgrade: []DowngradeRule{{AtBudgetUsed: 0.5, From: "big", To: "small"}}}}})
	const big = `{"model":"big","stream":true,"messages":[{"role":"user","content":"hi"}]}`
	req1, st1, err := serveOnce(t, g, up, "t", big) // reserves 4096 tokens: $0.04096
	if err != nil {
		t.Fatal(err)
	}
	req2, st2, err := serveOnce(t, g, up, "t", big)
	if err != nil {
		t.Fatal(err)
	}
	if req2.Model != "big" || req2.Result.BudgetRemainingUSD != 0.05 {
		t.Errorf("with one request in flight: model %s, remaining $%v; want big, $0.05", req2.Model, req2.Result.BudgetRemainingUSD)
	}
	for _, st := range []router.Stream{st1, st2} {
		drain(st)
		st.Close()
	}
	if c := req1.Result.CostUSD; math.Abs(c-0.00025) > 1e-9 {
		t.Fatalf("first request cost $%v; want $0.00025 (25 tokens)", c)
	}
	req3, st3, err := serveOnce(t, g, up, "t", big)
	if err != nil {
		t.Fatal(err)
	}
	drain(st3)
	st3.Close()
	if got := fmt.Sprintf("%.6f", req3.Result.BudgetRemainingUSD); req3.Model != "big" || got != "0.049500" {
		t.Errorf("after $0.0005 settled: model %s, remaining $%s; want big, $0.049500", req3.Model, got)
	}
}

// TestMemorySettledExcludesInFlight (item 5): Grant.Settled and Settled
// leave out reservations in flight, Spent keeps them; Settle moves a
// charge from the one to the other.
func TestMemorySettledExcludesInFlight(t *testing.T) {
	m := NewMemory(nil)
	ctx := context.Background()
	start, end := Day.Bounds(m.now())
	b := []Bucket{{Team: "t", ID: "team", Limit: Amount{Tokens: 10_000}, Start: start, End: end}}
	r1 := Reservation{ID: "1", Buckets: b, Prompt: Amount{Tokens: 10}, MinCompletion: 1, MaxCompletion: 990}
	r2 := r1
	r2.ID = "2"
	if _, err := m.Reserve(ctx, r1); err != nil {
		t.Fatal(err)
	}
	g2, err := m.Reserve(ctx, r2)
	if err != nil {
		t.Fatal(err)
	}
	if g2.Spent[0].Tokens != 2000 || g2.Settled[0].Tokens != 0 {
		t.Errorf("grant spent %d settled %d; want 2000 and 0", g2.Spent[0].Tokens, g2.Settled[0].Tokens)
	}
	m.Settle(ctx, r1, Amount{Tokens: 42})
	m.Settle(ctx, r1, Amount{Tokens: 42}) // idempotent
	if sp, _ := m.Settled(ctx, b); sp[0].Tokens != 42 {
		t.Errorf("Settled = %d; want 42 (r2 in flight is not settled)", sp[0].Tokens)
	}
	if sp, _ := m.Spent(ctx, b); sp[0].Tokens != 1042 {
		t.Errorf("Spent = %d; want 1042 (r2 in flight holds 1000)", sp[0].Tokens)
	}
}

// TestDryRunReservesNothing (issue 9 item 4): a dry run reads the spend,
// reports the clamp it would apply and calls the handler, but never
// reserves or settles, so neither budget nor rpm is consumed.
func TestDryRunReservesNothing(t *testing.T) {
	mem := NewMemory(nil)
	var reserves, settles int
	led := &fakeLedger{
		reserve: func(ctx context.Context, r Reservation) (Grant, error) { reserves++; return mem.Reserve(ctx, r) },
		settle:  func(ctx context.Context, r Reservation, a Amount) error { settles++; return mem.Settle(ctx, r, a) },
		spent:   mem.Spent,
	}
	g := mustGuard(t, GuardOptions{Ledger: led,
		Models: map[string]ModelPolicy{"m": {Price: Price{OutputPerMTok: 1}, Priced: true}},
		Teams:  map[string]TeamPolicy{"t": {Budget: &BudgetSpec{USD: 0.0001, Period: Day}, RateLimit: &RateSpec{RPM: 1}}}})
	up := &fakeUpstream{make: wholeReply(router.Usage{CompletionTokens: 1})}
	req := chatReq(t, `{"model":"m","messages":[{"role":"user","content":"hi"}]}`)
	req.DryRun = true
	for range 3 { // rpm 1: a counted dry run would be refused the second time
		st, err := g.Middleware()(up).Serve(teamCtx("t", "k"), req)
		if err != nil {
			t.Fatal(err)
		}
		st.Close()
	}
	d := req.Result.Budget
	if reserves != 0 || settles != 0 || d == nil || !d.Admit || d.MaxTokensClamped != 100 || len(up.bodies) != 3 {
		t.Errorf("%d reserves, %d settles, decision %+v, %d handler calls; want none, none, admitted with a clamp to 100, 3",
			reserves, settles, d, len(up.bodies))
	}
	if s, _ := g.Status(context.Background(), "t"); s.SpentUSD != 0 {
		t.Errorf("spent after dry runs = %v; want 0", s.SpentUSD)
	}
}
