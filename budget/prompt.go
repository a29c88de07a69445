package budget

import "sync"

// promptCount is one request's prompt tokens as admission knows them: the
// bound from Inspect until a decision depends on the exact count, which is
// then counted once. The decisions that can: a reservation the ledger
// refuses or clamps with the bound, a downgrade rule's max_prompt_tokens
// below the bound, and a context window (the alias's, a downgrade
// target's, or in the router a deployment's) that the bound overflows.
type promptCount struct {
	counter *Counter
	model   string
	body    []byte
	once    sync.Once
	PromptInfo
}

func newPromptCount(c *Counter, model string, body []byte) *promptCount {
	return &promptCount{counter: c, model: model, body: body, PromptInfo: c.Inspect(model, body)}
}

// exact returns the tokenizer's count, counting on the first call. It is
// safe to call from the goroutine that settles the stream.
func (p *promptCount) exact() int {
	p.once.Do(p.count)
	return p.Tokens
}

func (p *promptCount) count() {
	if !p.Exact {
		p.Tokens, p.Exact = p.counter.exactPrompt(p.model, p.body), true
	}
}

// atMost reports whether the prompt has at most n tokens, counting
// exactly only when the bound is above n.
func (p *promptCount) atMost(n int) bool {
	return p.Tokens <= n || p.exact() <= n
}
