package budget

import (
	"context"
	"errors"
)

// Admission with the prompt bound.
//
// The reservation's prompt is the bound (PromptBound) unless something
// already needed the exact count. Reserving with the bound is safe: the
// bound is never below the exact count, so the ledger holds at least the
// request's worst case, and Settle replaces the charge by the real usage
// when the reply ends. The price is over-reservation of prompt tokens (and
// their dollars, and TPM) while the request is in flight, never
// under-reservation; the budget share the downgrade ladder reads and the
// remaining-budget and rate-limit headers include it, as they already
// include the worst-case completion.
//
// The exact count runs only when the bound changes the answer:
//   - the ledger refuses (a budget, or TPM: a refusal charges nothing): the
//     reservation is retried once with the exact count;
//   - the ledger clamps the completion: the charge it holds is re-split
//     locally between the exact prompt and a larger completion (resplit),
//     with no second round trip;
//   - the team budget, as this replica last saw it, is close to spent
//     (tight): the count runs before the round trip, so requests near
//     exhaustion are clamped from the exact count.
//
// So the common case — a budget with room — is one Reserve round trip and
// no tokenizer run.

// admit reserves r and, when the bound made the ledger refuse or clamp,
// decides again with the exact prompt count.
func (g *Guard) admit(ctx context.Context, r *Reservation, p *promptCount, price Price) (Grant, Ledger, error) {
	gr, led, err := g.reserve(ctx, *r)
	if p.Exact {
		return gr, led, err
	}
	var le *LimitError
	switch {
	case err == nil && gr.Completion >= r.MaxCompletion:
		return gr, led, nil // the common case
	case err != nil && (!errors.As(err, &le) || rpmRefusal(le)):
		return gr, led, err // the ledger failed, or no prompt fits the rpm
	}
	bound := r.Prompt.Tokens
	if int64(p.exact()) >= bound {
		return gr, led, err
	}
	r.Prompt = promptAmount(p.Tokens, price)
	if err != nil {
		return g.reserve(ctx, *r)
	}
	gr.Completion = resplit(r, gr)
	return gr, led, nil
}

// rpmRefusal reports a refusal by a requests-per-minute limit, which no
// prompt size changes: RemainingRequests is 0 only there.
func rpmRefusal(le *LimitError) bool {
	return le.Rate && le.State.LimitRequests > 0 && le.State.RemainingRequests == 0
}

// resplit is the completion cap a clamped grant allows once r.Prompt is
// the exact count: the most completion tokens whose charge, with the
// exact prompt, stays within what the ledger holds (gr.Charged), in each
// dimension some bucket limits. The ledger's hold does not change, so
// nothing can overspend; since every bucket was charged the same amount,
// the cap equals what an exact reservation would have got when one
// dimension limits the buckets (up to a token of dollar rounding). When
// both do and the token limit was the binding one, the dollars held bound
// it below that: still safe, and tight only near exhaustion, where tight
// makes the next requests count exactly up front.
func resplit(r *Reservation, gr Grant) int64 {
	var tokens, usd bool
	for _, b := range r.Buckets {
		tokens = tokens || b.Limit.Tokens > 0
		usd = usd || b.Limit.NanoUSD > 0
	}
	n := r.MaxCompletion
	if tokens {
		n = min(n, gr.Charged.Tokens-r.Prompt.Tokens)
	}
	if usd && r.NanoPerToken > 0 {
		n = min(n, int64(float64(gr.Charged.NanoUSD-r.Prompt.NanoUSD)/r.NanoPerToken))
		for n > gr.Completion && r.charge(n).NanoUSD > gr.Charged.NanoUSD {
			n--
		}
	}
	return max(n, gr.Completion)
}

// exactForBudgets: whenever a budget applies, the prompt is counted
// exactly before the round trip. A bound reservation over-reserves the
// prompt while the request is in flight, and near exhaustion the sum of
// those over-reservations across concurrent requests (and replicas) would
// refuse a request that fits once they settle, which the budget promise
// forbids. Rate limits alone keep the bound: their over-charge is refunded
// when the call ends.

// buffer returns a stream's output-text buffer from the pool; release
// gives it back.
func (g *Guard) buffer() *[]byte {
	if b, ok := g.bufs.Get().(*[]byte); ok {
		*b = (*b)[:0]
		return b
	}
	b := make([]byte, 0, 512)
	return &b
}

func (g *Guard) release(b *[]byte) {
	if b == nil || cap(*b) > 64<<10 { // don't keep a long reply's buffer
		return
	}
	g.bufs.Put(b)
}
