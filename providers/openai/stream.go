package openai

import (
	"bytes"
	"io"
	"time"

	"llmproxy/providers/sse"
	"llmproxy/providers/upstream"
	"llmproxy/router"
)

var doneMarker = []byte("[DONE]")

// stream turns an upstream SSE body into chat.completion.chunk Chunks: the
// upstream.Stream reads and times the body, and Decode classifies each
// event's JSON.
type stream struct {
	upstream.Stream
	c     *Client
	model string // last model name, reused while it repeats
}

// stream hands the rest of call to a Stream over body. What follows
// "data: [DONE]" is drained so the connection goes back to the pool.
func (c *Client) stream(call *upstream.Call, body io.ReadCloser, idle time.Duration) *stream {
	s := &stream{c: c}
	call.Open(&s.Stream, upstream.StreamConfig{Body: body, Idle: idle, Decoder: s, Drain: true})
	return s
}

// Decode turns one event into at most one chunk; "data: [DONE]" ends the
// stream.
func (s *stream) Decode(out []*router.Chunk, ev sse.Event) ([]*router.Chunk, bool, error) {
	if bytes.Equal(ev.Data, doneMarker) {
		return out, true, nil
	}
	ch, err := s.chunk(ev.Data)
	if err != nil {
		return out, false, err
	}
	return append(out, ch), false, nil
}

// chunk classifies one event's JSON in one scan that checks it and finds
// the members read here (router.ScanFields); only a usage object is
// decoded.
func (s *stream) chunk(data []byte) (*router.Chunk, error) {
	var v [4][]byte
	if !router.ScanFields(data, v[:], "error", "model", "usage", "choices") {
		return nil, s.c.up.Malformed("stream chunk", nil)
	}
	errV, model, usage, choices := v[0], v[1], v[2], v[3]
	if isObject(errV) {
		return nil, s.c.eventError(errV)
	}
	// The sse buffer is reused by the next event: the chunk needs its own.
	ch := &router.Chunk{Data: bytes.Clone(data)}
	s.model = modelName(model, s.model)
	ch.Model = s.model
	if isObject(usage) {
		u, err := parseUsage(usage)
		if err != nil {
			return nil, s.c.up.Malformed("usage", err)
		}
		ch.Usage = u
		ch.UsageOnly = isEmptyArray(choices)
	}
	return ch, nil
}
