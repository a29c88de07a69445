// Package providers builds upstream adapters from configuration. Each vendor
// lives in its own sub-package and satisfies router.Provider (and
// router.Embedder where the vendor can embed); upstream holds the HTTP
// exchange they share (request, timers, transport errors, the SSE event
// loop), sse the Server-Sent Events decoder and providertest the
// conformance kit every adapter passes.
package providers
