// Package providers builds upstream adapters from configuration. Each vendor
// lives in its own sub-package and satisfies router.Provider (and
// router.Embedder where the vendor can embed); sse holds the shared
// Server-Sent Events decoder and providertest the conformance kit every
// adapter passes.
package providers
