// Package memory keeps conversations on the server (issue 13). Its
// middleware sits between usage and rag in the chain (STYLE.md §1): for a
// request that names a conversation (header x-llmproxy-conversation or the
// body field "conversation") it loads the stored history, fits it into the
// model's context, puts it in front of the request's messages, and saves
// the new user message(s) and the assistant reply once the reply has
// completed. Requests without a conversation pass through after one
// header check and one scan of the body's top-level keys.
//
// The package also holds the logic of OpenAI's Conversations API (api.go,
// items.go; cmd/proxy serves it over HTTP) and the retention sweep
// (retention.go), run as a river periodic job (job.go).
// Storage is behind the Store interface, satisfied by store/sqlite and
// store/postgres.
package memory
