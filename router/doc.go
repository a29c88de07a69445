// Package router is the innermost stage of a chat request: it turns a model
// alias into an ordered list of deployments, calls their providers and commits
// to the first one that produces a chunk. Everything else in llmproxy is either
// a Middleware around the router (memory, RAG, budget) or a Provider behind it.
//
// Health is per replica, except what Cooldowns share: a 429's Retry-After and
// an open breaker. A replica benches a deployment for another replica's open
// breaker until its breaker_open cooldown ends, then probes it as a half-open
// breaker would (remote.go). Embeddings take the same plan, breakers,
// limiters, cooldowns and retries as chat, without the commit point; so do
// rerank calls (Router.Rerank, for providers that implement Reranker).
//
// # The return leg: Result
//
// What a stage learns travels back to the caller as a *Result, never by
// changing the request's own fields for the caller to read. The outermost
// caller (cmd/proxy) allocates the Result (as part of its per-request
// record, so it costs no allocation) and attaches it as ChatRequest.Result
// or EmbedRequest.Result before calling the chain; stages fill in their own
// facts: the router what served (Alias, Target, Attempts, Fallbacks,
// FallbackAlias), the budget guard its decisions (DowngradedFrom,
// MaxTokensClamped, budget left, RateLimit) and, in the stream's Close, the
// settled Usage and CostUSD. The caller reads it after Serve returns (for
// headers, an error's included) and after Close (for the access record and
// the usage ledger); it never reads the request back. Only cmd/proxy turns
// it into headers.
//
// The Result is carried on the request rather than returned by Serve
// because the return leg has three exits a return value cannot all reach:
// an error (a 429 still owes its x-ratelimit-* headers), a Stream whose
// cost is known only in Close, and an embeddings reply; a pointer the
// caller owns reaches all three without wrapping every Stream. The
// request's other fields stay what they were: decisions passed down
// (Model after a downgrade, MaxTokens after a clamp, Target and Timeouts
// for the provider of the current attempt). A caller that attaches no
// Result reads nothing; a stage that needs one then works on a shallow
// copy with its own (WithResult), so it never writes into its caller's
// request.
//
// A new stage adds a fact by adding a documented field to Result, setting
// it on req.Result (nil-checked, or through WithResult), and, when the
// client should see it, one line in cmd/proxy's setResultHeaders.
//
// # Dry runs
//
// ChatRequest.DryRun (POST /v1/route/explain) runs the same chain without
// acting: the budget guard computes its decision from the spend it reads
// (no reservation, no rate-limit count) into Result.Budget, the router
// returns an empty Stream and its plan in Result.Candidates instead of
// calling an upstream, and each stage may report what it would add with
// Result.Note (notes are for dry runs only, so the hot path does not
// allocate them).
//
// router imports only the standard library, gobreaker and x/time/rate, so the
// routing policy can be tested without a network.
package router
