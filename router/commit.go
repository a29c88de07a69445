package router

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
)

// maxHeld bounds the chunks held before the commit point; a stream that
// sends this many without content commits anyway.
const maxHeld = 64

// shareTimeout bounds writing a cooldown to a shared store.
const shareTimeout = time.Second

// errNoFirstToken is the attempt's cancel cause when no content arrived
// within the first-token timeout.
var errNoFirstToken = errors.New("router: no content within the first-token timeout")

// errLeftEarly is what the breaker hears when the stream is closed before
// its end: the client left, which says nothing about the upstream.
var errLeftEarly = &Error{Kind: KindCanceled, Message: "stream closed before its end"}

// attempt calls one deployment and holds its chunks until the commit
// point: the first content, refusal, reasoning or tool-call delta, a
// finish reason, a whole reply or the end of the stream. A failure before
// it is returned, so the caller can move on and the client sees nothing;
// after it the returned Stream replays the held chunks and then passes
// the upstream's chunks and errors through.
func (r *Router) attempt(ctx context.Context, c *Candidate, st *depState, a admission, req *ChatRequest) (Stream, *Error) {
	d := c.Deployment
	base, stopTotal := ctx, context.CancelFunc(func() {})
	if req.Timeouts.Total > 0 {
		base, stopTotal = context.WithTimeout(ctx, req.Timeouts.Total)
	}
	base, span := r.startAttempt(base, Attempt{Operation: "chat", Alias: c.Alias, Target: req.Target, Stream: req.Stream,
		MaxTokens: req.MaxTokens, Body: req.Body})
	actx, cancel := context.WithCancelCause(base)
	st.inflight.Add(1)
	t := &tracked{r: r, st: st, done: a.done, tpm: a.tpm, parent: ctx, provider: d.Provider, span: span,
		release: func() { cancel(nil); stopTotal() }}
	var timer *time.Timer
	if req.Stream && req.Timeouts.FirstToken > 0 {
		// Adapters time the first event; a role chunk is an event, so the
		// wait for content is timed here.
		timer = time.AfterFunc(req.Timeouts.FirstToken, func() { cancel(errNoFirstToken) })
	}
	start := r.now()
	s, err := d.Client.Chat(actx, req)
	if err == nil && span != nil {
		s = tracedStream{Stream: s, span: span}
	}
	if err == nil {
		t.s = s
		t.held, err = hold(s)
	}
	if timer != nil && !timer.Stop() && (err == nil || err == io.EOF) {
		err = errNoFirstToken // fired as the commit chunk arrived: the stream is cut
	}
	if err != nil && err != io.EOF {
		if s != nil {
			s.Close()
		}
		e := r.attemptError(ctx, actx, err, d)
		r.capRetryAfter(e)
		r.observe(d, e, r.now().Sub(start))
		t.finish(e)
		if e.Kind == KindUpstreamRateLimited {
			r.coolDown(ctx, st, e.RetryAfter)
		}
		return nil, e
	}
	if err == io.EOF {
		t.tail = io.EOF
	}
	ttft := r.now().Sub(start)
	st.observeTTFT(ttft)
	r.observe(d, nil, ttft)
	return t, nil
}

// attemptError classifies a failure before the commit point.
func (r *Router) attemptError(ctx, actx context.Context, err error, d *Deployment) *Error {
	if ctx.Err() == nil && (errors.Is(err, errNoFirstToken) || errors.Is(context.Cause(actx), errNoFirstToken)) {
		return &Error{Kind: KindUpstreamTimeout, Provider: d.Provider, Err: errNoFirstToken,
			Message: fmt.Sprintf("provider %q sent no content within the first-token timeout", d.Provider)}
	}
	return attributed(err, d.Provider)
}

// hold reads s up to and including its commit chunk. It returns io.EOF
// with the chunks read when the stream ended first.
func hold(s Stream) ([]*Chunk, error) {
	var held []*Chunk
	for {
		c, err := s.Next()
		if err != nil {
			return held, err
		}
		if c == nil {
			continue
		}
		held = append(held, c)
		if commits(c) || len(held) >= maxHeld {
			return held, nil
		}
	}
}

// deltaProbe is the part of a chunk the commit point looks at.
type deltaProbe struct {
	Choices []struct {
		Delta struct {
			Content          *string         `json:"content"`
			Refusal          *string         `json:"refusal"`
			Reasoning        *string         `json:"reasoning"`
			ReasoningContent *string         `json:"reasoning_content"`
			ToolCalls        json.RawMessage `json:"tool_calls"`
			FunctionCall     json.RawMessage `json:"function_call"`
		} `json:"delta"`
		FinishReason *string `json:"finish_reason"`
	} `json:"choices"`
}

// commits reports whether c is something the client must see from this
// deployment, so that no other may answer after it. A role-only chunk
// does not commit; data that is not a chunk object (the adapter vouched
// for it) does.
func commits(c *Chunk) bool {
	if c.Whole {
		return true
	}
	if c.UsageOnly {
		return false
	}
	var p deltaProbe
	if json.Unmarshal(c.Data, &p) != nil {
		return true
	}
	nonEmpty := func(s *string) bool { return s != nil && *s != "" }
	present := func(raw json.RawMessage) bool { return len(raw) > 0 && string(raw) != "null" && string(raw) != "[]" }
	for _, ch := range p.Choices {
		dl := ch.Delta
		if nonEmpty(dl.Content) || nonEmpty(dl.Refusal) || nonEmpty(dl.Reasoning) || nonEmpty(dl.ReasoningContent) ||
			present(dl.ToolCalls) || present(dl.FunctionCall) || nonEmpty(ch.FinishReason) {
			return true
		}
	}
	return false
}

// tracked is a committed attempt: it replays the held chunks, then reads
// the upstream, and reports the outcome to the breaker once, when the
// stream ends or is closed.
type tracked struct {
	r        *Router
	st       *depState
	s        Stream
	held     []*Chunk
	tail     error // returned after held, instead of reading s (io.EOF)
	end      error // sticky terminal error
	done     func(error)
	release  func()
	parent   context.Context
	provider string
	span     AttemptSpan // nil when the attempt is not traced
	tpm      int         // tokens the TPM limiter took at admission
	usage    *Usage      // the upstream's usage report, once seen
	finished bool
	whole    bool // a complete (non-streamed) reply was handed out
}

// Next implements Stream.
func (t *tracked) Next() (*Chunk, error) {
	if len(t.held) > 0 {
		c := t.held[0]
		t.held = t.held[1:]
		t.whole = t.whole || c.Whole
		t.saw(c)
		return c, nil
	}
	if t.end != nil {
		return nil, t.end
	}
	var c *Chunk
	err := t.tail
	if err == nil {
		c, err = t.s.Next()
	}
	if err == nil {
		t.saw(c)
		return c, nil
	}
	if err == io.EOF {
		t.end = io.EOF
		t.finish(nil)
		return nil, io.EOF
	}
	e := attributed(err, t.provider)
	t.end = e
	t.finish(e)
	return nil, e
}

// Close implements Stream.
func (t *tracked) Close() error {
	if t.whole {
		t.finish(nil) // a whole reply was handed out: callers need not read on to io.EOF
	}
	t.finish(errLeftEarly)
	if t.s == nil {
		return nil
	}
	return t.s.Close()
}

// saw notes the usage report a chunk carries, for the TPM correction.
func (t *tracked) saw(c *Chunk) {
	if c != nil && c.Usage != nil {
		t.usage = c.Usage
	}
}

// finish reports the outcome once: to the breaker (a request whose own
// context ended is excluded), the in-flight count, the TPM limiter (the
// estimate taken at admission is corrected by the reported usage) and the
// shared state.
func (t *tracked) finish(err error) {
	if t.finished {
		return
	}
	t.finished = true
	if err != nil && t.parent.Err() != nil {
		err = errLeftEarly
	}
	t.done(err)
	if t.span != nil {
		t.span.End(t.usage, err)
	}
	t.st.inflight.Add(-1)
	t.st.settleTPM(t.r.now(), t.tpm, t.usage, false)
	t.release()
	t.r.shareOpen(t.parent, t.st)
}

// shareOpen publishes an open breaker as a breaker_open cooldown, once the
// call is over (sharing may block on a network): one that opened here, or
// a failed probe of one another replica opened (remote.go).
func (r *Router) shareOpen(ctx context.Context, st *depState) {
	local, probe := st.opened.Swap(false), st.reopen.Swap(false)
	if !local && !probe {
		return
	}
	c := Cooldown{Until: r.now().Add(r.opts.Breaker.OpenFor), Reason: CooldownBreakerOpen}
	if local {
		st.remote.settle(c.Until) // the local breaker runs its own half-open state
	}
	r.share(ctx, st, c)
}

// coolDown benches st after an upstream 429 for its Retry-After, at most
// MaxCooldown.
func (r *Router) coolDown(ctx context.Context, st *depState, retryAfter time.Duration) {
	if retryAfter <= 0 {
		retryAfter = r.opts.RateLimitCooldown
	}
	retryAfter = min(retryAfter, r.opts.MaxCooldown)
	r.share(ctx, st, Cooldown{Until: r.now().Add(retryAfter), Reason: CooldownRateLimited})
}

// capRetryAfter limits an upstream's Retry-After to MaxCooldown before it
// benches the deployment, delays a retry or reaches the client.
func (r *Router) capRetryAfter(e *Error) {
	if e != nil && e.RetryAfter > r.opts.MaxCooldown {
		e.RetryAfter = r.opts.MaxCooldown
	}
}

// share records a cooldown; a shared store's failure leaves the in-process
// view (the store keeps its own copy first) and is not the request's.
func (r *Router) share(ctx context.Context, st *depState, c Cooldown) {
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shareTimeout)
	defer cancel()
	_ = r.cooldowns.Set(sctx, st.id, c)
}

func (r *Router) observe(d *Deployment, err error, ttft time.Duration) {
	if r.obs == nil {
		return
	}
	outcome := "ok"
	if err != nil {
		outcome = AsError(err).Kind.String()
	}
	r.obs.Attempt(d.Provider, d.Model, outcome, ttft)
}
