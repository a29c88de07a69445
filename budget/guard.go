package budget

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"llmproxy/router"
	"llmproxy/telemetry"
)

// Admission defaults.
const (
	// DefaultMaxCompletion is the worst-case completion reserved when
	// neither the request (max_tokens, max_completion_tokens) nor the
	// alias (max_output_tokens) sets one.
	DefaultMaxCompletion = 4096
	// DefaultMinCompletion is the smallest completion cap worth serving:
	// when the worst case does not fit but this does, the request is
	// clamped instead of refused.
	DefaultMinCompletion = 16
)

// Observer receives the guard's metric events (cmd/proxy turns them into
// llmproxy_downgrades_total and llmproxy_redis_errors_total).
type Observer interface {
	Downgrade(from, to, reason string)
	LedgerError(op string)
}

// GuardOptions configure a Guard.
type GuardOptions struct {
	// Teams and Models are the limits by team name and by alias.
	Teams  map[string]TeamPolicy
	Models map[string]ModelPolicy
	// Prices prices settled usage by the deployment that served; nil is
	// ModelPolicy.Price for every deployment.
	Prices *Prices
	// DenyUnpriced refuses requests to an alias without a price.
	DenyUnpriced bool
	// Ledger holds the budgets; nil is an in-process Memory.
	Ledger Ledger
	// Spend is the usage ledger's period-to-date spend: a counter the
	// ledger lost (or a new process's) is rebuilt from it before admitting
	// (seed.go). Nil counts from zero.
	Spend SpendSource
	// FailOpen admits requests against in-process limits while Ledger
	// fails; otherwise they get 503.
	FailOpen bool
	// Counter counts tokens; nil builds one.
	Counter  *Counter
	Observer Observer
	Log      *slog.Logger
	// DefaultMaxCompletion and MinCompletion override the defaults above.
	DefaultMaxCompletion, MinCompletion int
	// OpTimeout bounds one ledger call (default 1s); settling runs under
	// context.WithoutCancel with this timeout.
	OpTimeout time.Duration
	// Now is the clock (nil: time.Now).
	Now func() time.Time
}

// Guard is the budget and rate-limit middleware. See Middleware.
type Guard struct {
	teams        map[string]*TeamPolicy
	models       map[string]ModelPolicy
	prices       *Prices
	denyUnpriced bool
	reservePr    map[string]Price // alias → reservePrice
	ledger       Ledger
	fallback     Ledger
	failOpen     bool
	counter      *Counter
	obs          Observer
	log          *slog.Logger
	defaultMax   int
	minComp      int
	opTimeout    time.Duration
	now          func() time.Time
	used         sync.Map // team → float64 share of budget used, last seen
	lastWarn     atomic.Int64
	bufs         sync.Pool // *[]byte: streams' output text

	// spend rebuilds lost counters (seed.go); inProcess: ledger is the
	// guard's own Memory, which counts from started.
	spend     SpendSource
	inProcess bool
	started   time.Time
	seedMu    sync.Mutex
	seeding   map[string]*seedCall
}

// NewGuard checks opts and builds a Guard.
func NewGuard(opts GuardOptions) (*Guard, error) {
	g := &Guard{teams: make(map[string]*TeamPolicy, len(opts.Teams)), models: opts.Models, prices: opts.Prices,
		denyUnpriced: opts.DenyUnpriced, ledger: opts.Ledger, failOpen: opts.FailOpen, counter: opts.Counter,
		obs: opts.Observer, log: opts.Log, defaultMax: opts.DefaultMaxCompletion, minComp: opts.MinCompletion,
		opTimeout: opts.OpTimeout, now: opts.Now, spend: opts.Spend}
	if g.now == nil {
		g.now = time.Now
	}
	g.reservePr = reservePrices(g.models)
	g.started = g.now()
	if g.ledger == nil {
		m := NewMemory(g.now)
		if g.spend != nil {
			m.RebuildFromLedger()
		}
		g.ledger, g.inProcess = m, true
	} else if g.failOpen {
		g.fallback = NewMemory(g.now)
	}
	if g.counter == nil {
		g.counter = NewCounter()
	}
	if g.obs == nil {
		g.obs = nopObserver{}
	}
	if g.log == nil {
		g.log = slog.New(slog.DiscardHandler)
	}
	g.defaultMax = cmp0(g.defaultMax, DefaultMaxCompletion)
	g.minComp = cmp0(g.minComp, DefaultMinCompletion)
	g.opTimeout = cmp0(g.opTimeout, time.Second)
	var errs []error
	for name, tp := range opts.Teams {
		for _, b := range append([]*BudgetSpec{tp.Budget, tp.KeyBudget}, modelBudgets(tp)...) {
			if b != nil && (b.USD < 0 || b.Tokens < 0 || (b.Period != Day && b.Period != Week && b.Period != Month)) {
				errs = append(errs, fmt.Errorf("team %q: budget needs usd/tokens ≥ 0 and period day, week or month", name))
			}
		}
		for _, r := range tp.Downgrade {
			if _, ok := g.models[r.To]; !ok {
				errs = append(errs, fmt.Errorf("team %q: downgrade to unknown model %q", name, r.To))
			}
		}
		g.teams[name] = &tp
	}
	return g, errors.Join(errs...)
}

func modelBudgets(tp TeamPolicy) []*BudgetSpec {
	var out []*BudgetSpec
	for _, b := range tp.ModelBudgets {
		out = append(out, &b)
	}
	return out
}

func cmp0[T int | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}

type nopObserver struct{}

func (nopObserver) Downgrade(string, string, string) {}
func (nopObserver) LedgerError(string)               {}

// Middleware returns the guard as a router.Middleware: it admits, clamps,
// downgrades or refuses each request, and wraps the reply so the budget
// is settled to the real usage when the stream closes. Embeddings pass it
// too (embed.go) when the handler it wraps serves them.
func (g *Guard) Middleware() router.Middleware {
	return func(next router.Handler) router.Handler {
		return g.withEmbed(router.HandlerFunc(func(ctx context.Context, req *router.ChatRequest) (router.Stream, error) {
			return g.serve(ctx, req, next)
		}), next)
	}
}

func (g *Guard) serve(ctx context.Context, req *router.ChatRequest, next router.Handler) (router.Stream, error) {
	id, _ := router.IdentityFrom(ctx)
	tp := g.teams[id.Team]
	if tp == nil && g.models[req.Model].RateLimit == nil && !g.denyUnpriced {
		// Nothing to enforce: the near-free path. The bound still spares
		// the router its own tokenizer run.
		p := newPromptCount(g.counter, req.Model, req.Body)
		setPrompt(req, p)
		return next.Serve(ctx, req)
	}
	req, res := req.WithResult()
	p := newPromptCount(g.counter, req.Model, req.Body)
	var why string // the downgrade's reason, when the ladder moved it
	if tp != nil && len(tp.Downgrade) > 0 {
		var err error
		if why, err = g.downgrade(ctx, req, tp, id.Team, p, res); err != nil {
			return g.refuse(ctx, req, res, id.Team, err, next)
		}
	}
	mp, known := g.models[req.Model]
	if g.denyUnpriced && known && !mp.Priced {
		return g.refuse(ctx, req, res, id.Team, &router.Error{Kind: router.KindBudgetExceeded, Message: "The model " + req.Model + " has no price configured and budget.unpriced is deny."}, next)
	}
	price := g.reservePrice(req.Model)
	r, clientCap := g.reservation(req, tp, id, mp, price, p)
	// Under a budget the prompt is reserved exactly (see exactForBudgets);
	// rate limits alone keep the byte bound.
	if !p.Exact && len(r.Buckets) > 0 {
		p.exact()
		r.Prompt = promptAmount(p.Tokens, price)
	}
	if req.DryRun {
		return g.dryRun(ctx, req, res, &r, dryState{tp: tp, team: id.Team, p: p, why: why}, next)
	}
	actx, sp := startAdmit(ctx, id.Team, r)
	gr, led, err := g.admit(actx, &r, p, price)
	if err != nil {
		err = g.refusal(err, res)
		sp.End(err)
		return nil, err
	}
	endAdmit(sp, gr)
	res.RateLimit = router.RateLimitInfo(gr.Rate)
	budgeted := len(r.Buckets) > 0
	var teamLimit Amount // the team budget's limit, when it has one
	if budgeted && tp.Budget != nil {
		teamLimit = r.Buckets[0].Limit
		g.noteSettled(id.Team, teamLimit, gr, res)
	}
	// The body goes upstream as the client sent it unless the budget must
	// clamp: the reservation covers the worst case, and the stream cut
	// (guardedStream) stops a reply that runs past it. A clamp is per
	// choice: the grant covers all n of them.
	if budgeted && gr.Completion < r.MaxCompletion {
		perChoice := int(gr.Completion / int64(choices(req)))
		setCompletionCap(req, perChoice, clientCap > 0)
		res.MaxTokensClamped = perChoice
	}
	setPrompt(req, p) // the router plans on it instead of counting again
	st, err := next.Serve(ctx, req)
	if err != nil {
		g.settle(ctx, led, r, Amount{}) // nothing was billed: release it all
		return nil, err
	}
	return &guardedStream{g: g, ctx: ctx, inner: st, req: req, alias: req.Model, led: led, res: r,
		limit: gr.Completion, enforce: budgeted, budgetCut: gr.Completion < r.MaxCompletion,
		prompt: p, price: mp.Price, n: choices(req), team: id.Team, teamLimit: teamLimit, buf: g.buffer()}, nil
}

// setPrompt hands the router the best count known and, while that is the
// bound, the exact count on demand.
func setPrompt(req *router.ChatRequest, p *promptCount) {
	req.PromptTokens, req.PromptTokensExact = p.Tokens, nil
	if !p.Exact {
		req.PromptTokensExact = p.exact
	}
}

// reservation builds the request's reservation and returns the client's
// own completion cap (0: none). Its prompt is p's bound unless the
// context window needed the exact count. The worst case is the prompt
// plus n choices of the completion cap each: every choice is billed.
func (g *Guard) reservation(req *router.ChatRequest, tp *TeamPolicy, id router.Identity, mp ModelPolicy, price Price, p *promptCount) (Reservation, int) {
	clientCap := req.MaxTokens
	if clientCap == 0 {
		// max_output_tokens is the Responses-API spelling some clients
		// send to chat completions too.
		if v, err := strconv.Atoi(string(req.Field("max_output_tokens"))); err == nil && v > 0 {
			clientCap = v
		}
	}
	want := clientCap
	if want == 0 {
		want = cmp0(mp.MaxOutputTokens, g.defaultMax)
	}
	if mp.ContextWindow > 0 && !p.atMost(mp.ContextWindow-want) {
		want = max(mp.ContextWindow-p.Tokens, 1) // the router's context fallbacks judge the rest
	}
	now := g.now()
	n := int64(choices(req))
	return Reservation{
		ID:            newID(),
		Buckets:       g.buckets(tp, id, req.Model, now),
		Limits:        g.limits(tp, id, mp, req.Model),
		Prompt:        promptAmount(p.Tokens, price),
		NanoPerToken:  price.OutputPerMTok * NanoPerUSD / 1e6,
		MinCompletion: n * int64(min(g.minComp, want)),
		MaxCompletion: n * int64(want),
		TTL:           time.Hour,
	}, clientCap
}

func promptAmount(tokens int, p Price) Amount {
	return Amount{Tokens: int64(tokens), NanoUSD: ToNano(p.Cost(router.Usage{PromptTokens: tokens}))}
}

// choices is the request's n (1 when unset).
func choices(req *router.ChatRequest) int { return max(req.N, 1) }

// setCompletionCap lowers the completion cap to n. A field the client sent
// is rewritten in place (its spelling is what the upstream accepted from
// this client); a body without one stays as it is and the adapter writes
// req.CompletionCap in the spelling its upstream model takes
// (max_completion_tokens for OpenAI reasoning models, max_tokens
// elsewhere; Anthropic and Gemini translate req.MaxTokens).
func setCompletionCap(req *router.ChatRequest, n int, clientField bool) {
	v := []byte(strconv.Itoa(n))
	wrote := false // a field every OpenAI-compatible upstream reads
	if clientField {
		for _, f := range []string{"max_completion_tokens", "max_tokens", "max_output_tokens"} {
			if old := req.Field(f); len(old) > 0 && string(old) != "null" {
				req.Body = router.SetField(req.Body, f, v)
				wrote = wrote || f != "max_output_tokens"
			}
		}
	}
	if !wrote {
		req.CompletionCap = n // max_output_tokens alone is the Responses API's spelling
	}
	req.MaxTokens = n
}

// noteSettled records the team's budget share for the downgrade ladder
// and the remaining-budget header, both from the spend settled so far:
// in-flight reservations hold a worst case that mostly comes back, so
// counting them would downgrade a team, or report it nearly spent, after
// a few dollars' worth of reservations and a few cents of real spend.
func (g *Guard) noteSettled(team string, limit Amount, gr Grant, res *router.Result) {
	settled := Amount{}
	if len(gr.Settled) > 0 {
		settled = gr.Settled[0]
	}
	g.used.Store(team, share(limit, settled))
	if limit.NanoUSD > 0 {
		res.BudgetRemainingUSD = float64(max(limit.NanoUSD-settled.NanoUSD, 0)) / NanoPerUSD
		res.HasBudgetUSD = true
	}
}

// addSettled adds a settled charge to the team's budget share, so this
// replica's next downgrade decision sees it without waiting for the next
// reservation to read the ledger.
func (g *Guard) addSettled(team string, limit, actual Amount) {
	if limit == (Amount{}) {
		return
	}
	for {
		old, ok := g.used.Load(team)
		if !ok {
			return // the next reservation reads the ledger
		}
		if g.used.CompareAndSwap(team, old, old.(float64)+share(limit, actual)) {
			return
		}
	}
}

// reservePrice is what a request for alias reserves at: the dearest price
// among the alias and every alias the router may fall back to from it
// (fallbacks and context-window fallbacks, transitively). The deployment
// that answers is chosen after admission, and settlement bills the one
// that served, so the reservation must cover the dearest; the cost is a
// larger hold while the request is in flight, never a larger bill.
func (g *Guard) reservePrice(alias string) Price {
	if p, ok := g.reservePr[alias]; ok {
		return p
	}
	return g.models[alias].Price
}

// reservePrices computes reservePrice for every alias.
func reservePrices(models map[string]ModelPolicy) map[string]Price {
	out := make(map[string]Price, len(models))
	for alias := range models {
		p := Price{}
		seen := map[string]bool{}
		var walk func(a string)
		walk = func(a string) {
			mp, ok := models[a]
			if !ok || seen[a] {
				return
			}
			seen[a] = true
			p.InputPerMTok = max(p.InputPerMTok, mp.Price.InputPerMTok)
			p.OutputPerMTok = max(p.OutputPerMTok, mp.Price.OutputPerMTok)
			for _, f := range mp.Fallbacks {
				walk(f)
			}
		}
		walk(alias)
		out[alias] = p
	}
	return out
}

// servedPrice is the price of the reply: the deployment's, else the price
// of the alias that answered (a fallback's own, a downgrade target's).
func (g *Guard) servedPrice(alias string, t router.Target, reserved Price) Price {
	if p, ok := g.prices.Served(alias, t); ok {
		return p
	}
	if mp, ok := g.models[alias]; ok {
		return mp.Price
	}
	return reserved
}

// reserve asks the ledger, falling back to in-process limits when it
// fails and the policy is fail_open.
func (g *Guard) reserve(ctx context.Context, r Reservation) (Grant, Ledger, error) {
	gr, err := g.reserveSeeded(ctx, g.ledger, r)
	var le *LimitError
	if err == nil || errors.As(err, &le) {
		return gr, g.ledger, err
	}
	if ctx.Err() != nil {
		return Grant{}, nil, &router.Error{Kind: router.KindCanceled, Message: "request canceled", Err: ctx.Err()}
	}
	g.ledgerFailed(ctx, "reserve", err)
	if g.fallback != nil {
		gr, err = g.fallback.Reserve(ctx, r)
		return gr, g.fallback, err
	}
	return Grant{}, nil, &router.Error{Kind: router.KindNoProvider, Message: "The budget service is unavailable; try again shortly.",
		RetryAfter: time.Second, Err: err}
}

func (g *Guard) ledgerFailed(ctx context.Context, op string, err error) {
	g.obs.LedgerError(op)
	// One line per second at most: an outage must not flood the log.
	now := g.now().UnixNano()
	if last := g.lastWarn.Load(); now-last > int64(time.Second) && g.lastWarn.CompareAndSwap(last, now) {
		policy := "fail_closed"
		if g.fallback != nil {
			policy = "fail_open"
		}
		g.log.WarnContext(ctx, "budget ledger unavailable", slog.String("op", op), slog.String("on_error", policy), slog.Any("err", err))
	}
}

// refusal turns a Reserve error into the client's error.
func (g *Guard) refusal(err error, res *router.Result) error {
	var le *LimitError
	if !errors.As(err, &le) {
		return err
	}
	res.RateLimit = router.RateLimitInfo(le.State)
	if le.Rate {
		return &router.Error{Kind: router.KindRateLimited, RetryAfter: le.RetryAfter, Code: "rate_limit_exceeded",
			Message: fmt.Sprintf("Rate limit reached (%s). Please try again in %s.", le.ID, le.RetryAfter)}
	}
	return &router.Error{Kind: router.KindBudgetExceeded, Code: "insufficient_quota",
		Message: "You exceeded your current quota (" + le.ID + " budget for this period). Ask your administrator or wait for the period to reset."}
}

func (g *Guard) settle(ctx context.Context, led Ledger, r Reservation, actual Amount) {
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), g.opTimeout)
	defer cancel()
	sctx, sp := telemetry.Start(sctx, "budget.settle")
	sp.SetInt("llmproxy.budget.tokens", int(actual.Tokens))
	sp.SetFloat("llmproxy.budget.cost_usd", actual.USD())
	err := led.Settle(sctx, r, actual)
	if err != nil {
		// The reservation expires with its worst case charged: the
		// budget errs on the safe side.
		g.ledgerFailed(ctx, "settle", err)
	}
	sp.End(err)
}

// startAdmit starts the span of a reservation: its ledger round trips
// (Redis) are its children.
func startAdmit(ctx context.Context, team string, r Reservation) (context.Context, telemetry.Span) {
	ctx, sp := telemetry.Start(ctx, "budget.admit")
	if sp.Recording() {
		sp.SetString("llmproxy.team", team)
		sp.SetInt("llmproxy.budget.prompt_tokens", int(r.Prompt.Tokens))
		sp.SetInt("llmproxy.budget.max_completion_tokens", int(r.MaxCompletion))
		sp.SetInt("llmproxy.budget.buckets", len(r.Buckets))
	}
	return ctx, sp
}

// endAdmit ends an admission span with what was granted.
func endAdmit(sp telemetry.Span, gr Grant) {
	sp.SetInt("llmproxy.budget.granted_completion_tokens", int(gr.Completion))
	sp.End(nil)
}

func newID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
