package gemini

import (
	"io"
	"time"

	"llmproxy/providers/sse"
	"llmproxy/providers/upstream"
	"llmproxy/router"
)

// stream reads streamGenerateContent?alt=sse: the upstream.Stream reads and
// times the body and hands out the decoder's chunks one at a time. The
// stream has no end marker, so the body's end is its end (End).
type stream struct {
	upstream.Stream
	dec *decoder
}

// stream hands the rest of call to a Stream over body.
func (c *Client) stream(call *upstream.Call, body io.ReadCloser, idle time.Duration, dec *decoder) *stream {
	s := &stream{dec: dec}
	call.Open(&s.Stream, upstream.StreamConfig{Body: body, Idle: idle, Decoder: s})
	return s
}

// Decode appends the chunks of one GenerateContentResponse event.
func (s *stream) Decode(out []*router.Chunk, ev sse.Event) ([]*router.Chunk, bool, error) {
	chunks, err := s.dec.event(ev.Data)
	if err != nil {
		return out, false, err
	}
	return append(out, chunks...), false, nil
}

// End is the usage chunk once every candidate finished, or the error for a
// reply cut short.
func (s *stream) End(out []*router.Chunk) ([]*router.Chunk, error) {
	ch, err := s.dec.end()
	if err != nil {
		return out, err
	}
	return append(out, ch), nil
}
