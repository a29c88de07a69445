// Package sqlite is llmproxy's embedded database (modernc.org/sqlite, pure
// Go): the usage ledger's default store when no PostgreSQL URL is set. It
// sits behind the ledger, off the request path: a *DB is a ledger.Writer
// and a ledger.Reporter.
//
// It also keeps conversations (memory.Store) and files and vector stores
// (vectorstore.Storage): file bytes under files/ next to the database,
// chunks with their float32 embeddings and an FTS5 index, searched exactly
// over vectors cached in memory (vs_search.go). River's jobs live in a
// file of their own (jobs.go).
//
// The database file is opened in WAL mode with synchronous=NORMAL,
// busy_timeout=5000 and immediate transactions, so a second process (or a
// second proxy in a test) waits for the write lock instead of failing.
package sqlite
