// Package ledger is the usage ledger: one Record per finished chat or
// embeddings request, queued in process and written to a database in
// batches by a single goroutine the Ledger owns. It sits after the reply:
// cmd/proxy adds a Record once a request (streamed or not) has ended, so
// the request path never waits for a database write.
//
// The queue is bounded. When it is full, Add drops the record, counts it
// and logs a (rate-limited) warning; it never blocks. Close drains the
// queue on graceful shutdown. Implementations of Writer live in
// store/sqlite and store/postgres.
package ledger
