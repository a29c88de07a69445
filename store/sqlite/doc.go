// Package sqlite is llmproxy's embedded database (modernc.org/sqlite, pure
// Go): the usage ledger's default store when no PostgreSQL URL is set. It
// sits behind the ledger, off the request path: a *DB is a ledger.Writer
// and a ledger.Reporter.
//
// The database file is opened in WAL mode with synchronous=NORMAL,
// busy_timeout=5000 and immediate transactions, so a second process (or a
// second proxy in a test) waits for the write lock instead of failing.
package sqlite
