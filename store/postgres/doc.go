// Package postgres is llmproxy's PostgreSQL store (pgx v5, pgxpool): the
// usage ledger when database.url is set. It sits behind the ledger, off
// the request path: a *DB is a ledger.Writer and a ledger.Reporter.
//
// It also keeps conversations (memory.Store), river's job tables, and
// files and vector stores: DB.VectorStores returns the database as a
// vectorstore.Storage, with chunks in a pgvector table (vs_schema.go says
// how embeddings of different dimensions share it).
//
// Tables live in the first schema of the connection's search_path, so a
// test (or a tenant) can get its own schema with ?search_path=name.
package postgres
