// Package vectorstore is OpenAI's Files and Vector Stores API on
// llmproxy's own storage (issue 11): uploaded files, vector stores, the
// files attached to them and batches of those, their ingestion as durable
// river jobs, and hybrid search. It sits beside the request path: the RAG
// middleware (rag.Augment) calls Service.ResolveStores and Service.Search;
// cmd/proxy serves the HTTP API over the Service's methods.
//
// Ownership: every file, store and batch belongs to the team whose key
// created it. Every Storage method takes the team and answers ErrNotFound
// for another team's ids, so they answer 404, search included.
//
// Ingestion (ingest.go, job.go): attaching a file writes the vector-store
// file as in_progress at a new generation and enqueues one river job for
// it (IngestArgs). The job parses the file (Options.Parse), chunks it by
// tokens (Options.Chunk, 500/50 by default, or the static strategy),
// embeds the chunks through the embedding service (embed.Service.Embed,
// so cache, budget, rate limits and the usage ledger apply; ledger route
// "ingest", charged to the team and key that attached the file) and then,
// in one transaction, replaces the file's chunks and marks it completed —
// only if it is still in_progress at the job's generation. Retries and
// duplicate jobs therefore never duplicate chunks, and work for a file
// detached, cancelled or re-queued meanwhile is dropped. file_counts and
// status are computed from the files when read, so they are always true.
//
// A process killed mid-ingestion leaves its river job "running" until
// river's rescuer gives up on it (an hour later). So a running ingestion
// writes a heartbeat every HeartbeatEvery, and a periodic reconcile job
// (ReconcileArgs) queues again, at the next generation, every in_progress
// file without a sign of life for StaleAfter whose job is not merely
// waiting in the queue. That also covers a crash between writing the rows
// and enqueueing their jobs (SQLite's river lives in its own file, so the
// two cannot share a transaction).
//
// Search (search.go) is hybrid: the query is embedded once per embedding
// model of the stores searched, the Storage returns the nearest chunks by
// cosine similarity and the best full-text matches, and Fuse merges the
// two rankings by reciprocal rank into scores in [0, 1]. Attribute filters
// (filter.go) are OpenAI's comparison and compound filters; Filter.Match
// is their meaning, which store/postgres reproduces in SQL.
//
// Storage: store/postgres keeps chunks in a pgvector table with one
// approximate index per embedding dimension; store/sqlite scans exactly
// over cached float32 vectors and uses FTS5 (see their files).
package vectorstore
