// Package embed is the embedding service (issue 10): the one place that
// embeds anything. /v1/embeddings, RAG queries and document ingestion all
// go through a Service, which adds a cache and request coalescing to the
// router's embeddings.
//
// # Where it sits
//
// A Service contributes two stages to the embeddings chain, on either side
// of the budget guard:
//
//	usage ─▶ Lookup ─▶ budget.Guard ─▶ Batch ─▶ router.Router ─▶ providers
//	         cache       admits only      coalesces callers
//	         MGET/SET    the misses       into upstream calls
//
// Lookup runs first so that admission counts only the inputs the cache
// could not answer: cached inputs cost $0 and are not counted against tpm.
// A request whose inputs are all cached never reaches the guard, so it
// makes no upstream call and no reservation (nor counts against rpm), and
// is settled at $0. The misses go on as a smaller
// request, which the guard admits, limits and settles for its own team;
// Batch then merges admitted requests into upstream calls below the guard.
//
// # Coalescing is per team
//
// Batch merges requests with the same team, alias, dimensions and input
// kind (strings or token arrays: an upstream call takes one kind). Keeping
// teams apart costs some coalescing across teams but keeps every upstream
// call attributable to one team: the router's fallbacks honour that
// team's model allow-list, and the call's usage is split only among that
// team's callers, each of which the guard admitted and settles on its own.
// A batch goes out when it holds max_inputs inputs (at once) or max_wait
// after its first caller arrived, whichever is first; a caller that would
// push it past max_inputs or max_tokens (300k, OpenAI's per-request limit)
// sends the pending batch first. Gemini's 100-per-call limit is kept by
// the gemini adapter, which splits larger calls.
//
// The upstream's usage is split among the inputs in proportion to their
// length (bytes, or tokens for token arrays), rounding so the parts add up
// to the upstream's total; each caller is charged the sum of its parts.
// An upstream error reaches every caller of the call as its own error,
// except an invalid-request error on a call that merged several callers:
// then each caller's part is sent again on its own, so one caller's
// invalid input never fails the others.
//
// # Cache
//
// The key is the SHA-256 of the team (unless scope is shared), the
// provider and upstream model that produced the vector, dimensions, any
// other body field that can change the vector (input_type, truncate …),
// the input kind and the input itself. Those other fields are part of the
// batch key too, and reach the upstream. A lookup probes every deployment of
// the alias in one MGET (Redis) and takes the first hit; a write stores
// under the deployment that served (after a fallback, another alias's
// model, which only that alias's lookups probe). Entries hold the input's
// token share and the float32 vector exactly as the upstream encoded it:
// the Batch stage always asks the upstream for base64, so base64 answers
// are byte-exact and float answers print each float32 in its shortest
// form ('g', -1, 32), as the demo and gemini adapters do. Cache errors are
// logged and served as misses.
package embed
