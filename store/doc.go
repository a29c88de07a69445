// Package store holds the durable and shared state behind llmproxy's
// middlewares. All SQL lives in store/sqlite and store/postgres and all
// Redis code in store/redis; other packages declare the small interfaces
// they need and cmd/proxy hands these implementations to them.
package store
