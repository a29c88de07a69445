// Package budget holds the price table and, as a router.Middleware, the
// guard that admits, clamps or refuses a request against its team's token
// and dollar budgets and rate limits. It runs after memory and RAG so it
// counts the tokens they add, and settles in the Stream's Close.
//
// Admission (Guard.Middleware): under a budget (team, key or model) the
// prompt is counted exactly with the tokenizer (Counter) before the
// reservation, because in-flight over-reservations would otherwise refuse
// requests that fit near exhaustion. Without a budget (rate limits only,
// or nothing to enforce) it is sized by an upper bound that needs no
// tokenizer (PromptBound: text bytes, since a token is at least one byte,
// plus the tokenizer's fixed costs) and counted exactly only when a
// decision depends on it: the ledger refuses the bound's reservation, a
// downgrade rule's max_prompt_tokens or a context window lies below the
// bound, or the router's plan could differ
// (router.ChatRequest.PromptTokensExact); the TPM over-charge is refunded
// when the call ends. See
// admit.go. The worst-case completion is n (the number of choices) times
// max_completion_tokens or max_tokens, else max_output_tokens, else the
// alias's max_output_tokens, else DefaultMaxCompletion (4096). The Ledger
// reserves the prompt plus the largest completion that fits every bucket
// (team, key, model), atomically with the rate limits. The body is
// forwarded as the client sent it unless the worst case does not fit:
// when DefaultMinCompletion (16) tokens per choice do, the grant divided
// by n becomes the cap, written into the field the client used or, when
// it used none, into router.ChatRequest.CompletionCap for the adapter to
// spell (see setCompletionCap), and reported in
// router.Result.MaxTokensClamped (x-llmproxy-max-tokens-clamped). When
// nothing useful fits: KindBudgetExceeded (429 insufficient_quota). Rate
// limits are token buckets holding a minute's worth: KindRateLimited with
// RetryAfter. Requests reserve at the dearest price of their alias and
// its fallbacks (Guard.reservePrice) and settle at the price of what
// served.
//
// Inside a stream the output is counted chunk by chunk (content, refusal,
// reasoning and tool-call text): by the byte length of those string
// literals, found by scanning without decoding, while that bound stays
// under the granted cap; once it would cross the cap, the text read so
// far is tokenized once and every later chunk exactly, so the cut lands
// within one chunk of the exact limit. A chunk that would take the output past
// the granted cap is withheld, the upstream is closed, and the client gets
// a finish_reason "length" chunk, the estimated usage (only if it asked
// for usage) and, when the cap was the budget's, a KindBudgetExceeded error
// event.
//
// Settling (Stream.Close, once): the upstream's usage when it sent one,
// else the tokenizer's count of what was read, marked estimated — which
// covers client disconnects, upstream errors mid-stream and cut streams.
// That count is kept incrementally: the stream holds at most about 16 KiB
// of uncounted text, whatever the output's length (streamcount.go), and
// an upstream usage with a negative or absurd count is clamped to
// [0, router.MaxUsageTokens] before it is billed.
// It is priced by the deployment that served and settled under
// context.WithoutCancel with a short timeout. A failed upstream call
// settles to zero. A reservation never settled (a replica died) expires
// with its worst case still charged: budgets err on the safe side.
//
// Embeddings (embed.go) pass the same guard when the handler it wraps is a
// router.EmbedHandler: every input is counted (strings with the
// tokenizer, token arrays by their length) and reserved with no
// completion, so a call fits whole or is refused; the reply settles to
// the upstream's usage through settleUsage, the step a chat stream's Close
// takes too. The downgrade ladder never applies to them. Rerank calls
// (Guard.Rerank) take the same path: the input counted is what a
// cross-encoder reads, the query once per document plus every document.
//
// Ledgers: Memory in process; store/redis for replicas, where one Lua
// script per request checks and charges everything. With
// GuardOptions.FailOpen a failing ledger falls back to in-process limits,
// otherwise requests get 503; each failure counts in
// Observer.LedgerError and logs one Warn line per second at most.
//
// Lost counters (seed.go): with GuardOptions.Spend (the usage ledger), a
// counter Redis lost, or one a restarted process never had, is rebuilt
// from the ledger's period-to-date sum before admitting; a ledger that
// can lose counters (a Seeder) says so with *UnseededError.
//
// The downgrade ladder and the remaining-budget header read the team's
// settled spend (Grant.Settled: reservations in flight excluded, since
// their worst case mostly comes back) as of this replica's last
// reservation plus what it settled since (one ledger read the first
// time), so thresholds lag other replicas' settlements by at most their
// requests since then.
package budget
