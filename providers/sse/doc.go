// Package sse decodes Server-Sent Events, the framing every streaming LLM
// upstream uses. Adapters in providers/<vendor> wrap an upstream response
// body in a Reader and turn each Event into a router.Chunk; the decoder knows
// nothing about the JSON inside.
//
// It follows the WHATWG HTML "Server-sent events" parsing rules
// (https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation)
// except that it does not reconnect and reports a stream cut mid-event as
// io.ErrUnexpectedEOF instead of silently dropping the event, because for an
// LLM reply that is a failure the caller must see.
package sse
