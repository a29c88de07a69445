// Package upstream is one HTTP exchange between an adapter in
// providers/<vendor> and its vendor's API: the request and its headers, the
// per-call timers (first token, then idle), the classification of transport
// failures into router.Error kinds, and an SSE event loop that hands each
// event to a vendor Decoder. It sits at the far end of the request path,
// behind router.Router, below the adapters.
//
// It knows no vendor's JSON: URLs, auth schemes, translation, the per-event
// decoding and the mapping of status codes and error bodies stay in the
// vendor packages, which plug them in through Client.Status and Decoder.
package upstream
