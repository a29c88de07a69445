package embed

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"time"

	"llmproxy/router"
	"llmproxy/telemetry"
)

// Batch defaults (embeddings.batch).
const (
	DefaultMaxInputs = 128
	DefaultMaxWait   = 5 * time.Millisecond
	// DefaultMaxTokens is OpenAI's limit on tokens per embeddings call.
	DefaultMaxTokens = 300_000
)

// BatchOptions bound the upstream calls the batcher makes.
type BatchOptions struct {
	// MaxInputs is the most inputs one call carries (at most 2048); a
	// batch that reaches it goes out at once. 1 turns coalescing off.
	MaxInputs int
	// MaxWait is how long a batch waits for company after its first
	// caller arrived; 0 sends every request at once.
	MaxWait time.Duration
	// MaxTokens bounds the tokens (as the guard counted them, else bytes)
	// of one call.
	MaxTokens int
}

func (o BatchOptions) withDefaults() BatchOptions {
	if o.MaxInputs <= 0 {
		o.MaxInputs = DefaultMaxInputs
	}
	o.MaxInputs = min(o.MaxInputs, maxInputs)
	if o.MaxTokens <= 0 {
		o.MaxTokens = DefaultMaxTokens
	}
	return o
}

// queueKey is what requests must share to ride in one upstream call.
type queueKey struct {
	team, alias string
	dims        int
	tokens      bool
	extras      string // the body's other fields (inputs.extras)
}

// call is one admitted request waiting for its share of a batch.
type call struct {
	ctx     context.Context
	req     *router.EmbedRequest
	in      inputs
	tokens  int
	arrived time.Time
	done    chan result // buffered: the batch never blocks on a caller
}

type result struct {
	vecs  [][]float32
	usage router.Usage
	// route is what the router reported for the merged call (alias,
	// target, attempts, fallbacks), copied to each caller's Result.
	route route
	err   error
}

// route is the part of a router.Result the router fills.
type route struct {
	alias, fallback     string
	target              router.Target
	attempts, fallbacks int
}

func routeOf(r *router.Result) route {
	return route{alias: r.Alias, fallback: r.FallbackAlias, target: r.Target, attempts: r.Attempts, fallbacks: r.Fallbacks}
}

// report copies the route into res (nil: the caller reads nothing).
func (rt route) report(res *router.Result) {
	if res != nil {
		res.Alias, res.FallbackAlias, res.Target, res.Attempts, res.Fallbacks = rt.alias, rt.fallback, rt.target, rt.attempts, rt.fallbacks
	}
}

// pending is a batch being filled.
type pending struct {
	key    queueKey
	calls  []*call
	inputs int
	tokens int
	stop   func() bool // the max_wait timer; nil until armed
	gone   bool        // detached from the queue (sent or sending)
}

// Backend is what the batcher sends its merged calls to: the router's
// embeddings (router.Router implements it).
type Backend interface {
	ServeEmbed(ctx context.Context, req *router.EmbedRequest) (*router.EmbedResponse, error)
}

var _ Backend = (*router.Router)(nil)

// batcher coalesces admitted requests into upstream calls.
type batcher struct {
	next      Backend
	opts      func(alias string) BatchOptions
	afterFunc func(time.Duration, func()) func() bool
	now       func() time.Time
	m         *metrics
	log       *slog.Logger

	mu     sync.Mutex
	queues map[queueKey]*pending
	closed bool // set by close: no new upstream calls
	wg     sync.WaitGroup
}

// close waits for the upstream calls in flight; batches sent later fail.
func (b *batcher) close() {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	b.wg.Wait()
}

// serve queues req and waits for its part of the batch's reply.
func (b *batcher) serve(ctx context.Context, req *router.EmbedRequest) (*router.EmbedResponse, error) {
	in, err := parseInputs(req)
	if err != nil {
		return nil, err
	}
	id, _ := router.IdentityFrom(ctx)
	tokens := req.PromptTokens
	if tokens <= 0 {
		for i := range in.len() {
			tokens += in.weight(i)
		}
	}
	// The wait span covers queueing and the batch's call; the batch's
	// own span is a child of its first caller's and links the others.
	ctx, sp := telemetry.Start(ctx, "embed.batch.wait")
	sp.SetInt("llmproxy.embed.inputs", in.len())
	c := &call{ctx: ctx, req: req, in: in, tokens: tokens, arrived: b.now(), done: make(chan result, 1)}
	b.submit(queueKey{team: id.Team, alias: req.Model, dims: req.Dimensions, tokens: in.tokens(), extras: in.extras}, c)
	select {
	case r := <-c.done:
		r.route.report(req.Result)
		sp.End(r.err)
		if r.err != nil {
			return nil, r.err
		}
		return &router.EmbedResponse{Vectors: r.vecs, Usage: r.usage}, nil
	case <-ctx.Done():
		err := router.AsError(ctx.Err())
		sp.End(err)
		return nil, err
	}
}

// submit adds c to its queue and sends whatever is ready: the pending
// batch when c would overflow it, and c's batch once it is full (or at
// once when max_wait is 0). Otherwise the first caller arms the timer.
func (b *batcher) submit(k queueKey, c *call) {
	o := b.opts(k.alias)
	n := c.in.len()
	var ready []*pending
	b.mu.Lock()
	p := b.queues[k]
	if p != nil && (p.inputs+n > o.MaxInputs || p.tokens+c.tokens > o.MaxTokens) {
		ready = append(ready, b.detach(p))
		p = nil
	}
	if p == nil {
		p = &pending{key: k}
		b.queues[k] = p
	}
	p.calls = append(p.calls, c)
	p.inputs += n
	p.tokens += c.tokens
	if p.inputs >= o.MaxInputs || o.MaxWait <= 0 {
		ready = append(ready, b.detach(p))
	} else if p.stop == nil {
		p.stop = b.afterFunc(o.MaxWait, func() { b.expire(p) })
	}
	b.mu.Unlock()
	for _, r := range ready {
		b.launch(r)
	}
}

// detach takes p off its queue; b.mu is held.
func (b *batcher) detach(p *pending) *pending {
	p.gone = true
	if b.queues[p.key] == p {
		delete(b.queues, p.key)
	}
	if p.stop != nil {
		p.stop()
	}
	return p
}

// expire sends p when its max_wait ran out, unless it already went.
func (b *batcher) expire(p *pending) {
	b.mu.Lock()
	if p.gone {
		b.mu.Unlock()
		return
	}
	b.detach(p)
	b.mu.Unlock()
	b.launch(p)
}

// launch sends p from a goroutine the batcher owns (close waits for it).
func (b *batcher) launch(p *pending) {
	now := b.now()
	b.m.batchInputs.Observe(float64(p.inputs))
	for _, c := range p.calls {
		b.m.wait.Observe(now.Sub(c.arrived).Seconds())
	}
	b.mu.Lock()
	closed := b.closed
	if !closed {
		b.wg.Add(1) // under mu, so never after close's Wait began
	}
	b.mu.Unlock()
	if closed {
		b.deliverErr(p, result{err: &router.Error{Kind: router.KindNoProvider, Message: "The proxy is shutting down."}})
		return
	}
	go func() {
		defer b.wg.Done()
		defer func() {
			if v := recover(); v != nil {
				b.log.Error("embeddings batch panicked", "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
				for _, c := range p.calls {
					c.done <- result{err: &router.Error{Kind: router.KindInternal, Message: "internal error"}}
				}
			}
		}()
		b.run(p)
	}()
}

// run makes p's upstream call and hands each caller its part. The batch's
// span ends before any caller hears back: a caller's wait span, and the
// request around it, may end as soon as its result arrives, and a trace
// whose batch span ended after them reads as if the batch outlived the
// callers (and a test reading the finished spans raced it).
func (b *batcher) run(p *pending) {
	ctx, release := mergedContext(p.calls)
	defer release()
	ctx, sp := telemetry.Start(ctx, "embed.batch")
	if sp.Recording() {
		sp.SetInt("llmproxy.embed.batch_inputs", p.inputs)
		sp.SetInt("llmproxy.embed.batch_calls", len(p.calls))
		for _, c := range p.calls[1:] {
			sp.Link(c.ctx)
		}
	}
	merged, err := mergedRequest(p)
	if err != nil {
		sp.End(err)
		b.deliverErr(p, result{err: err})
		return
	}
	merged.Result = &router.Result{}
	resp, err := b.next.ServeEmbed(ctx, merged)
	sp.End(err)
	base := result{route: routeOf(merged.Result)}
	if err != nil {
		var re *router.Error
		if len(p.calls) > 1 && errors.As(err, &re) && re.Kind == router.KindInvalidRequest {
			b.alone(p) // find the caller whose input the upstream refused
			return
		}
		base.err = err
		b.deliverErr(p, base)
		return
	}
	vecs := resp.Vectors
	if vecs == nil {
		vecs, err = parseVectors(resp.Data, p.inputs)
	}
	if err != nil || len(vecs) != p.inputs {
		base.err = &router.Error{Kind: router.KindUpstream, Provider: merged.Result.Target.Provider,
			Message: "The upstream sent an embeddings reply that could not be read.", Err: err}
		b.deliverErr(p, base)
		return
	}
	weights := make([]int, 0, p.inputs)
	for _, c := range p.calls {
		for i := range c.in.len() {
			weights = append(weights, c.in.weight(i))
		}
	}
	shares := split(resp.Usage.PromptTokens, weights)
	at := 0
	for _, c := range p.calls {
		n := c.in.len()
		r := base
		r.vecs = vecs[at : at+n : at+n]
		for _, s := range shares[at : at+n] {
			r.usage.PromptTokens += s
		}
		r.usage.TotalTokens, r.usage.Estimated = r.usage.PromptTokens, resp.Usage.Estimated
		at += n
		c.done <- r
	}
}

// alone sends each of p's callers on its own, concurrently.
func (b *batcher) alone(p *pending) {
	var wg sync.WaitGroup
	for _, c := range p.calls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b.run(&pending{key: p.key, calls: []*call{c}, inputs: c.in.len(), tokens: c.tokens})
		}()
	}
	wg.Wait()
}

// deliverErr gives every caller its own copy of r.err.
func (b *batcher) deliverErr(p *pending, r result) {
	for _, c := range p.calls {
		cr := r
		var re *router.Error
		if errors.As(r.err, &re) {
			e := *re
			cr.err = &e
		}
		c.done <- cr
	}
}

// mergedContext outlives any one caller: it carries the first caller's
// identity and request ID, and is cancelled once every caller has gone.
func mergedContext(calls []*call) (context.Context, func()) {
	ctx, cancel := context.WithCancel(context.WithoutCancel(calls[0].ctx))
	var mu sync.Mutex
	left := len(calls)
	stops := make([]func() bool, len(calls))
	for i, c := range calls {
		stops[i] = context.AfterFunc(c.ctx, func() {
			mu.Lock()
			left--
			if left == 0 {
				cancel()
			}
			mu.Unlock()
		})
	}
	return ctx, func() {
		for _, s := range stops {
			s()
		}
		cancel()
	}
}

// mergedRequest is p's callers' inputs as one request, asking for base64
// (lossless float32) whatever each client wants.
func mergedRequest(p *pending) (*router.EmbedRequest, error) {
	first := p.calls[0].req
	req := &router.EmbedRequest{Model: first.Model, Dimensions: first.Dimensions, EncodingFormat: "base64"}
	body := map[string]any{"model": req.Model, "encoding_format": "base64"}
	if req.Dimensions > 0 {
		body["dimensions"] = req.Dimensions
	}
	counted := true
	for _, c := range p.calls {
		if c.in.tokens() {
			for _, t := range c.in.toks {
				req.InputTokens += len(t)
			}
		} else {
			req.Input = append(req.Input, c.in.texts...)
		}
		counted = counted && c.req.PromptTokens > 0
		req.PromptTokens += c.req.PromptTokens
	}
	if !counted {
		req.PromptTokens = 0 // the router estimates
	}
	if p.key.tokens {
		toks := make([][]int, 0, p.inputs)
		for _, c := range p.calls {
			toks = append(toks, c.in.toks...)
		}
		body["input"] = toks
	} else {
		body["input"] = req.Input
	}
	var err error
	req.Body, err = withExtras(body, p.key.extras)
	return req, err
}
