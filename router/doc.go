// Package router is the innermost stage of a chat request: it turns a model
// alias into an ordered list of deployments, calls their providers and commits
// to the first one that produces a chunk. Everything else in llmproxy is either
// a Middleware around the router (memory, RAG, budget) or a Provider behind it.
//
// Health is per replica, except what Cooldowns share: a 429's Retry-After and
// an open breaker. A replica benches a deployment for another replica's open
// breaker until its breaker_open cooldown ends, then probes it as a half-open
// breaker would (remote.go). Embeddings take the same plan, breakers,
// limiters, cooldowns and retries as chat, without the commit point.
//
// router imports only the standard library, gobreaker and x/time/rate, so the
// routing policy can be tested without a network.
package router
