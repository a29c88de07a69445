// Package router is the innermost stage of a chat request: it turns a model
// alias into an ordered list of deployments, calls their providers and commits
// to the first one that produces a chunk. Everything else in llmproxy is either
// a Middleware around the router (memory, RAG, budget) or a Provider behind it.
//
// router imports only the standard library, gobreaker and x/time/rate, so the
// routing policy can be tested without a network.
package router
