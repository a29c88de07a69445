// Package postgres is llmproxy's PostgreSQL store (pgx v5, pgxpool): the
// usage ledger when database.url is set. It sits behind the ledger, off
// the request path: a *DB is a ledger.Writer and a ledger.Reporter.
//
// Tables live in the first schema of the connection's search_path, so a
// test (or a tenant) can get its own schema with ?search_path=name.
package postgres
