package budget

import (
	"context"
	"errors"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"llmproxy/router"
)

// TestHierarchyProperty reserves random requests against random
// team/key/model budgets and checks the invariants after each step: no
// bucket is ever charged past its limit, a refusal means some bucket
// really lacked the minimum, and a grant is the largest cap that fits.
func TestHierarchyProperty(t *testing.T) {
	for seed := uint64(1); seed <= 50; seed++ {
		rng := rand.New(rand.NewPCG(seed, 7))
		m := NewMemory(func() time.Time { return time.Unix(1_700_000_000, 0) })
		start, end := Day.Bounds(time.Unix(1_700_000_000, 0))
		lim := func() Amount {
			return Amount{Tokens: rng.Int64N(3) * rng.Int64N(5000), NanoUSD: rng.Int64N(3) * rng.Int64N(5_000_000)}
		}
		team := Bucket{Team: "t", ID: "team", Limit: lim(), Start: start, End: end}
		keys := []Bucket{{Team: "t", ID: "key:a", Limit: lim(), Start: start, End: end}, {Team: "t", ID: "key:b", Limit: lim(), Start: start, End: end}}
		models := []Bucket{{Team: "t", ID: "model:x", Limit: lim(), Start: start, End: end}, {Team: "t", ID: "model:y", Limit: lim(), Start: start, End: end}}
		all := append(append([]Bucket{team}, keys...), models...)
		for i := 0; i < 200; i++ {
			bs := []Bucket{team, keys[rng.IntN(2)], models[rng.IntN(2)]}
			before, _ := m.Spent(context.Background(), bs)
			r := Reservation{ID: strconv.Itoa(i), Buckets: bs, Prompt: Amount{Tokens: rng.Int64N(200), NanoUSD: rng.Int64N(20000)},
				NanoPerToken: float64(rng.IntN(2000)), MinCompletion: 16, MaxCompletion: 16 + rng.Int64N(2000)}
			g, err := m.Reserve(context.Background(), r)
			var le *LimitError
			fits := func(n int64) bool {
				c := r.charge(n)
				for j, b := range bs {
					if (b.Limit.Tokens > 0 && before[j].Tokens+c.Tokens > b.Limit.Tokens) || (b.Limit.NanoUSD > 0 && before[j].NanoUSD+c.NanoUSD > b.Limit.NanoUSD) {
						return false
					}
				}
				return true
			}
			switch {
			case errors.As(err, &le):
				if fits(r.MinCompletion) {
					t.Fatalf("seed %d step %d: refused %s but the minimum fits", seed, i, le.ID)
				}
			case err != nil:
				t.Fatal(err)
			default:
				if !fits(g.Completion) || (g.Completion < r.MaxCompletion && fits(g.Completion+1)) {
					t.Fatalf("seed %d step %d: granted %d; want the largest cap that fits (max %d)", seed, i, g.Completion, r.MaxCompletion)
				}
				// Settle to a random share of the grant, sometimes twice.
				used := r.charge(rng.Int64N(g.Completion + 1))
				m.Settle(context.Background(), r, used)
				if rng.IntN(4) == 0 {
					m.Settle(context.Background(), r, used)
				}
			}
			spent, _ := m.Spent(context.Background(), all)
			for j, b := range all {
				if (b.Limit.Tokens > 0 && spent[j].Tokens > b.Limit.Tokens) || (b.Limit.NanoUSD > 0 && spent[j].NanoUSD > b.Limit.NanoUSD) {
					t.Fatalf("seed %d step %d: %s spent %+v over limit %+v", seed, i, b.ID, spent[j], b.Limit)
				}
			}
		}
	}
}

// TestRateLimitAccuracy drains the bucket, then offers far more traffic
// than allowed for 10 simulated seconds: admissions must be within 5% of
// rpm/6 (and tpm/6 in tokens).
func TestRateLimitAccuracy(t *testing.T) {
	tests := []struct {
		name     string
		limit    Limit
		tokens   int64
		wantPerS float64
	}{
		{"rpm", Limit{Team: "t", ID: "team", RPM: 6000}, 10, 100},
		{"tpm", Limit{Team: "t", ID: "team", TPM: 60000}, 50, 1000.0 / 50},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clk := &fakeClock{t: time.Unix(1_700_000_000, 0)}
			m := NewMemory(clk.Now)
			try := func(i int) bool {
				r := Reservation{ID: strconv.Itoa(i), Limits: []Limit{tc.limit}, Prompt: Amount{Tokens: tc.tokens}, MaxCompletion: 0}
				_, err := m.Reserve(context.Background(), r)
				m.Settle(context.Background(), r, r.Prompt)
				return err == nil
			}
			for i := 0; try(i); i++ { // drain the minute's burst
			}
			admitted := 0
			for step := 0; step < 10_000; step++ { // 10 s in 1 ms steps
				clk.Add(time.Millisecond)
				for k := 0; k < 3; k++ {
					if try(step*3 + k) {
						admitted++
					}
				}
			}
			want := tc.wantPerS * 10
			if d := float64(admitted) - want; d > 0.05*want || d < -0.05*want {
				t.Errorf("admitted %d in 10 s; want %v ± 5%%", admitted, want)
			}
		})
	}
}

func TestRateLimitRefusal(t *testing.T) {
	up := &fakeUpstream{make: func(*router.ChatRequest) router.Stream { return &fakeStream{n: 1, text: " hi"} }}
	g := mustGuard(t, GuardOptions{
		Teams:  map[string]TeamPolicy{"t": {RateLimit: &RateSpec{RPM: 2, TPM: 100000}}},
		Models: map[string]ModelPolicy{"m": {}},
	})
	var last *router.ChatRequest
	for i := 0; i < 2; i++ {
		last = chatReq(t, body1)
		st, err := g.Middleware()(up).Serve(teamCtx("t", "k"), last)
		if err != nil {
			t.Fatal(err)
		}
		st.Close()
	}
	if rl := last.Result.RateLimit; rl.LimitRequests != 2 || rl.RemainingRequests != 0 || rl.LimitTokens != 100000 {
		t.Errorf("rate state = %+v; want limit 2, 0 left, tpm 100000", rl)
	}
	req := chatReq(t, body1)
	_, err := g.Middleware()(up).Serve(teamCtx("t", "k"), req)
	var re *router.Error
	if !errors.As(err, &re) || re.Kind != router.KindRateLimited || re.RetryAfter <= 0 || re.RetryAfter > 31*time.Second {
		t.Fatalf("third request: %v; want KindRateLimited with Retry-After ≤ 30s", err)
	}
	if rl := req.Result.RateLimit; rl.LimitRequests != 2 || rl.RemainingRequests != 0 {
		t.Errorf("refusal's rate state = %+v; want limit 2, 0 left (the x-ratelimit-* headers of the 429)", rl)
	}
}

func TestDowngrade(t *testing.T) {
	models := map[string]ModelPolicy{
		"big":   {Price: Price{OutputPerMTok: 10}, Priced: true, Tools: true},
		"small": {Price: Price{OutputPerMTok: 1}, Priced: true, ContextWindow: 1000},
		"tiny":  {Priced: true, Tools: true},
	}
	tools := `,"tools":[{"type":"function","function":{"name":"f","parameters":{}}}]`
	tests := []struct {
		name, body, want string
		rules            []DowngradeRule
		deny, wantErr    bool
	}{
		{"small prompt", ``, "small", []DowngradeRule{{MaxPromptTokens: 200, NoTools: true, To: "small"}}, false, false},
		{"tools keep", tools, "big", []DowngradeRule{{MaxPromptTokens: 200, To: "small"}}, false, false},
		{"tools deny", tools, "", []DowngradeRule{{MaxPromptTokens: 200, To: "small"}}, true, true},
		{"no_tools skip", tools, "big", []DowngradeRule{{NoTools: true, To: "small"}}, true, false},
		{"ladder", ``, "tiny", []DowngradeRule{{From: "big", MaxPromptTokens: 100, To: "small"}, {From: "small", MaxPromptTokens: 100, To: "tiny"}}, false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			obs := &countingObserver{}
			up := &fakeUpstream{make: func(*router.ChatRequest) router.Stream { return &fakeStream{n: 1, text: " hi"} }}
			g := mustGuard(t, GuardOptions{Models: models, Observer: obs,
				Teams: map[string]TeamPolicy{"t": {Downgrade: tc.rules, DenyDowngrade: tc.deny}}})
			req := chatReq(t, `{"model":"big","max_tokens":10,"messages":[{"role":"user","content":"hi"}]`+tc.body+`}`)
			st, err := g.Middleware()(up).Serve(teamCtx("t", "k"), req)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v; want error %v", err, tc.wantErr)
			}
			if err != nil {
				return
			}
			st.Close()
			if req.Model != tc.want {
				t.Errorf("model = %s; want %s", req.Model, tc.want)
			}
			if tc.want != "big" && (req.Result.DowngradedFrom != "big" || len(obs.downgrades) == 0) {
				t.Errorf("downgraded from %q, metrics %v; want big and a count", req.Result.DowngradedFrom, obs.downgrades)
			}
		})
	}
}

func TestDowngradeAtBudgetUsed(t *testing.T) {
	models := map[string]ModelPolicy{"big": {Price: Price{OutputPerMTok: 1000}, Priced: true}, "small": {Priced: true}}
	up := &fakeUpstream{make: func(*router.ChatRequest) router.Stream { return &fakeStream{n: 100, text: " hi"} }}
	g := mustGuard(t, GuardOptions{Models: models, Teams: map[string]TeamPolicy{"t": {
		Budget:    &BudgetSpec{USD: 0.125, Period: Month},
		Downgrade: []DowngradeRule{{AtBudgetUsed: 0.8, From: "big", To: "small"}}}}})
	var got []string
	for i := 0; i < 3; i++ {
		req := chatReq(t, `{"model":"big","max_tokens":100,"messages":[{"role":"user","content":"hi"}]}`)
		st, err := g.Middleware()(up).Serve(teamCtx("t", "k"), req)
		if err != nil {
			t.Fatal(err)
		}
		drain(st)
		st.Close()
		got = append(got, req.Model)
	}
	// Each big request costs $0.1: the second sees 80% used.
	if strings.Join(got, ",") != "big,small,small" {
		t.Errorf("models = %v; want big,small,small", got)
	}
}

func BenchmarkAdmissionMemory(b *testing.B) {
	up := &fakeUpstream{make: func(*router.ChatRequest) router.Stream {
		return &oneChunk{c: &router.Chunk{Whole: true, Usage: &router.Usage{PromptTokens: 10, CompletionTokens: 5}}}
	}}
	g := mustGuard(b, GuardOptions{
		Teams:  map[string]TeamPolicy{"t": {Budget: &BudgetSpec{USD: 1e6, Period: Month}, RateLimit: &RateSpec{RPM: 1 << 40, TPM: 1 << 50}}},
		Models: map[string]ModelPolicy{"m": {Price: Price{InputPerMTok: 2.5, OutputPerMTok: 10}, Priced: true}},
	})
	h := g.Middleware()(up)
	ctx := teamCtx("t", "k")
	body := []byte(`{"model":"m","max_tokens":100,"messages":[{"role":"system","content":"You are helpful."},{"role":"user","content":"What is the capital of France?"}]}`)
	b.ReportAllocs()
	for b.Loop() {
		up.bodies, up.streams = up.bodies[:0], up.streams[:0]
		st, err := h.Serve(ctx, &router.ChatRequest{Model: "m", Body: body, MaxTokens: 100})
		if err != nil {
			b.Fatal(err)
		}
		st.Next()
		st.Close()
	}
}

func BenchmarkNoLimits(b *testing.B) {
	up := &fakeUpstream{make: func(*router.ChatRequest) router.Stream { return &oneChunk{} }}
	g := mustGuard(b, GuardOptions{Teams: map[string]TeamPolicy{}, Models: map[string]ModelPolicy{"m": {}}})
	h := g.Middleware()(up)
	ctx := teamCtx("t", "k")
	for b.Loop() {
		up.bodies, up.streams = up.bodies[:0], up.streams[:0]
		h.Serve(ctx, &router.ChatRequest{Model: "m", Body: []byte(body1)})
	}
}
