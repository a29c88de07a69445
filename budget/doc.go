// Package budget holds the price table and, as a router.Middleware, the
// guard that admits, clamps or refuses a request against its team's token
// and dollar budgets and rate limits. It runs after memory and RAG so it
// counts the tokens they add, and settles in the Stream's Close.
package budget
