package router

import "math"

// MaxUsageTokens bounds one token count an upstream reports. No reply
// comes near it, and sums of a few such counts still fit an int on every
// platform, so a hostile or broken upstream cannot overflow the budget
// arithmetic.
const MaxUsageTokens = math.MaxInt32

// ClampCount limits one upstream token count to [0, MaxUsageTokens] and
// reports whether it was out of range.
func ClampCount(n int) (int, bool) {
	switch {
	case n < 0:
		return 0, true
	case n > MaxUsageTokens:
		return MaxUsageTokens, true
	}
	return n, false
}

// Clamp limits every count of u to [0, MaxUsageTokens]: an upstream's
// negative usage once drove a team's recorded spend to −$1.1M (issue 16).
// It sets u.Clamped when a count was out of range (the HTTP layer logs a
// warning for it) and reports whether it did. A total that is out of range
// or below prompt + completion becomes their sum.
func (u *Usage) Clamp() bool {
	var bad, b bool
	for _, p := range []*int{&u.PromptTokens, &u.CompletionTokens, &u.TotalTokens, &u.CachedTokens, &u.ReasoningTokens} {
		*p, b = ClampCount(*p)
		bad = bad || b
	}
	if sum := u.PromptTokens + u.CompletionTokens; bad && u.TotalTokens < sum {
		u.TotalTokens = min(sum, MaxUsageTokens)
	}
	u.Clamped = u.Clamped || bad
	return bad
}
