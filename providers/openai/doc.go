// Package openai is the adapter for OpenAI and every OpenAI-compatible
// upstream (vLLM, Ollama, LiteLLM, llama.cpp server...). It sits at the far
// end of the request path, behind router.Router: the client's JSON is
// forwarded with only "model" rewritten, and the upstream's bytes come back
// as router.Chunks untouched, so the hot path never re-encodes JSON.
package openai
