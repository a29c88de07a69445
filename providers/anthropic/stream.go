package anthropic

import (
	"errors"
	"io"
	"time"

	"llmproxy/providers/sse"
	"llmproxy/providers/upstream"
	"llmproxy/router"
)

// stream turns Anthropic's SSE events into chat.completion.chunk Chunks:
// the upstream.Stream reads and times the body, and Decode hands each
// event to the decoder.
type stream struct {
	upstream.Stream
	c   *Client
	dec *decoder
}

// stream hands the rest of call to a Stream over body.
func (c *Client) stream(call *upstream.Call, body io.ReadCloser, idle time.Duration, jsonTool bool) *stream {
	s := &stream{c: c, dec: newDecoder(jsonTool, c.now)}
	call.Open(&s.Stream, upstream.StreamConfig{Body: body, Idle: idle, Decoder: s})
	return s
}

// Decode appends the chunks of one event; message_stop ends the stream
// once its usage chunk is out.
func (s *stream) Decode(out []*router.Chunk, ev sse.Event) ([]*router.Chunk, bool, error) {
	out, err := s.dec.event(out, ev.Event, ev.Data)
	if err != nil {
		return out, false, s.decodeError(err)
	}
	return out, s.dec.done, nil
}

func (s *stream) decodeError(err error) error {
	var we *wireErrorReply
	if errors.As(err, &we) {
		return s.c.eventError(we.raw)
	}
	return s.c.up.Malformed("stream event", err)
}
