// Package rag is retrieval-augmented generation as a chain stage (issue
// 12). Its middleware sits between memory and budget (STYLE.md §1): for a
// chat request that asks for retrieval — an alias with a rag block, the
// header x-llmproxy-vector-store-ids, or the body field vector_store_ids
// (removed before the body goes upstream) — it takes the last user
// message's text as the query, searches the team's vector stores through
// the Retriever (which embeds the query, charged to the team under ledger
// route "rag"), optionally reranks the hits through a rerank alias
// (charged under route "rerank"), keeps the best ones that fit
// max_context_tokens, and adds one system message of numbered references,
// built from a template, after the client's own system messages. The
// budget guard, inside it, then counts that message like any other. What
// it used travels back in router.Result (RAG, Sources): cmd/proxy turns it
// into the reply's "sources" field and the x-llmproxy-rag* headers.
//
// Requests that do not ask pass through after a map lookup, one header
// check and one substring search of the body (the top-level keys are
// scanned only when it finds vector_store_ids or a \u escape): about
// 70 ns and no allocation (BenchmarkPassThrough).
//
// Errors: a store the team does not own (ErrStoreNotFound) is a 404, and
// the client's own errors (a budget or rate limit refusing the query's
// embedding, a bad field) are returned as they are. Any other failure
// (the store, the embedding or rerank upstream) follows the alias's
// on_error: fail_closed answers 503; fail_open answers without context,
// with Result.RAG "skipped", a metric and a Warn line.
//
// On a dry run (POST /v1/route/explain) it retrieves — the query's
// embedding is a real call, charged like any other — but does not
// rerank; it adds the references it found to the body (so the budget's
// decision counts them) and reports them in Result.Sources and a note.
package rag
