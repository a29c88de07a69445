package upstream

import (
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"llmproxy/providers/sse"
	"llmproxy/router"
)

// Decoder is the vendor half of a Stream: it turns one event into chunks.
// It does no I/O, so it can be fuzzed on its own.
type Decoder interface {
	// Decode appends the chunks ev yields (often none or one) to out. end
	// reports the vendor's end marker ([DONE], message_stop): the stream
	// ends with io.EOF once the chunks are handed out. ev.Data aliases the
	// reader's buffer and is never empty. A *router.Error without a
	// Provider gets the Client's Name; other errors pass through as they
	// are.
	Decode(out []*router.Chunk, ev sse.Event) (chunks []*router.Chunk, end bool, err error)
}

// Ender is a Decoder for a stream with no end marker (Gemini's): the body
// ending between events is the normal end, and End returns the chunks that
// closes it or the error if the reply was incomplete. Without it, a body
// that ends before the marker is a truncated reply.
type Ender interface {
	End(out []*router.Chunk) ([]*router.Chunk, error)
}

// StreamConfig is what Call.Stream needs.
type StreamConfig struct {
	// Body is the 2xx response body; the Stream closes it.
	Body io.ReadCloser
	// Idle bounds the silence between events; 0 means no bound.
	Idle time.Duration
	// Decoder turns events into chunks.
	Decoder Decoder
	// Drain reads what follows the end marker (normally only the chunked
	// terminator) before reporting the end, so that net/http returns the
	// connection to the pool: a body abandoned before its end closes the
	// connection, and then every stream dials the upstream anew.
	Drain bool
}

// Bounds on reading what follows the end marker: an upstream that holds
// the body open is cut after drainTimeout.
const (
	drainTimeout = 25 * time.Millisecond
	drainMax     = 4 << 10
)

// Stream reads an SSE body and hands out its Decoder's chunks one at a
// time, so a slow client slows the upstream read instead of filling memory.
// It is a router.Stream.
type Stream struct {
	call   Call
	body   io.ReadCloser
	dec    Decoder
	idle   time.Duration
	events *sse.Reader
	queue  []*router.Chunk  // decoded, not yet handed out: queue[head:]
	one    [1]*router.Chunk // queue's first backing array: most events yield one chunk
	head   int32
	drain  bool  // StreamConfig.Drain
	ended  bool  // the decoder saw the end marker
	err    error // sticky: io.EOF or the failure
	once   sync.Once
}

var _ router.Stream = (*Stream)(nil)

// Open starts s over cfg.Body. s is usually a field of the vendor's stream
// type, so that one allocation holds both; it then owns the call, and
// Close ends it. A Stream is opened once and never copied.
func (k *Call) Open(s *Stream, cfg StreamConfig) {
	*s = Stream{call: *k, body: cfg.Body, dec: cfg.Decoder, idle: cfg.Idle, drain: cfg.Drain, events: sse.NewReader(cfg.Body)}
	s.queue = s.one[:0]
}

// Next returns the next chunk, io.EOF after the last one, or a
// *router.Error.
func (s *Stream) Next() (*router.Chunk, error) {
	for {
		if int(s.head) < len(s.queue) {
			ch := s.queue[s.head]
			s.queue[s.head] = nil
			s.head++
			return ch, nil
		}
		if s.err != nil {
			return nil, s.err
		}
		if s.ended {
			if s.drain {
				s.drainBody()
			}
			return nil, s.fail(io.EOF)
		}
		// Checked before each read: events already buffered must not
		// outlive a client that left, a fired timer, or Close.
		if err := s.call.ctx.Err(); err != nil {
			return nil, s.fail(s.call.c.TransportError(s.call.ctx, s.call.parent, err))
		}
		ev, err := s.events.Next()
		if err != nil {
			if e, ok := s.dec.(Ender); ok && err == io.EOF {
				return s.end(e)
			}
			return nil, s.fail(s.readError(err))
		}
		// Any event, even one that yields nothing (a ping), proves the
		// upstream is alive.
		s.call.wd.Arm(s.idle, ErrIdle)
		if len(ev.Data) == 0 {
			continue
		}
		s.queue, s.ended, err = s.dec.Decode(s.queue[:0], ev)
		s.head = 0
		if err != nil {
			s.queue = s.queue[:0]
			return nil, s.fail(s.stamp(err))
		}
	}
}

// end finishes a stream without an end marker at the end of its body.
func (s *Stream) end(e Ender) (*router.Chunk, error) {
	var err error
	s.queue, err = e.End(s.queue[:0])
	s.head = 0
	if err != nil {
		s.queue = s.queue[:0]
		return nil, s.fail(s.stamp(err))
	}
	s.fail(io.EOF)
	return s.Next()
}

// stamp gives a decoder's *router.Error the provider's name and redacts
// the provider's secrets from it.
func (s *Stream) stamp(err error) error {
	if e, ok := err.(*router.Error); ok && e.Provider == "" {
		e.Provider = s.call.c.Name
	}
	return s.call.c.redactError(err)
}

// drainBody reads the body to its end after the end marker. It runs before
// Next reports the end, because the callers cancel the request context as
// soon as it does.
func (s *Stream) drainBody() {
	s.call.wd.Arm(drainTimeout, ErrClosed)
	_, _ = io.CopyN(io.Discard, s.body, drainMax)
}

// readError maps an SSE reader error to a *router.Error.
func (s *Stream) readError(err error) error {
	c := s.call.c
	switch {
	case s.call.ctx.Err() != nil:
		// A canceled body may read as a short stream: the cause decides.
		return c.TransportError(s.call.ctx, s.call.parent, err)
	case err == io.EOF || err == io.ErrUnexpectedEOF:
		// Without the end marker the reply may be truncated: a failure,
		// not an end.
		return &router.Error{Kind: router.KindUpstream, Provider: c.Name,
			Message: "upstream closed the stream early", Err: err}
	case errors.Is(err, sse.ErrEventTooLarge):
		return &router.Error{Kind: router.KindUpstream, Provider: c.Name,
			Message: fmt.Sprintf("provider %q sent a stream event larger than %d bytes", c.Name, sse.MaxEventSize), Err: err}
	}
	return c.TransportError(s.call.ctx, s.call.parent, err)
}

// fail records the stream's terminal state and stops the timer, so a
// finished stream cannot be canceled by a late tick.
func (s *Stream) fail(err error) error {
	s.err = err
	s.call.wd.Stop()
	return err
}

// Close stops the timer, cancels the call's context (which makes net/http
// drop the connection if the body is not finished) and closes the body. It
// is safe to call more than once and concurrently with Next.
func (s *Stream) Close() error {
	s.once.Do(func() {
		s.call.End()
		s.body.Close()
	})
	return nil
}
