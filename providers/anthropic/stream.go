package anthropic

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"llmproxy/providers/sse"
	"llmproxy/router"
)

// Cancel causes set by the watchdog, so a failed read can tell our timers
// from the client leaving.
var (
	errFirstToken = errors.New("anthropic: no first event within the first-token timeout")
	errIdle       = errors.New("anthropic: upstream silent for longer than the idle timeout")
)

// streamConfig is what newStream needs from Chat.
type streamConfig struct {
	c        *Client
	ctx      context.Context // per-call, canceled by the watchdog or Close
	parent   context.Context // the caller's
	cancel   context.CancelCauseFunc
	wd       *watchdog
	body     io.ReadCloser
	idle     time.Duration
	jsonTool bool
}

// stream turns Anthropic's SSE events into chat.completion.chunk Chunks.
type stream struct {
	streamConfig
	events *sse.Reader
	dec    *decoder
	queue  []*router.Chunk // chunks decoded but not yet handed out
	err    error           // sticky: io.EOF or the failure
	once   sync.Once
}

func newStream(cfg streamConfig) *stream {
	return &stream{streamConfig: cfg, events: sse.NewReader(cfg.body), dec: newDecoder(cfg.jsonTool, cfg.c.now)}
}

// Next returns the next chunk, io.EOF after message_stop's usage chunk, or
// a *router.Error.
func (s *stream) Next() (*router.Chunk, error) {
	for {
		if len(s.queue) > 0 {
			ch := s.queue[0]
			s.queue = s.queue[1:]
			return ch, nil
		}
		if s.err != nil {
			return nil, s.err
		}
		if s.dec.done {
			return nil, s.fail(io.EOF)
		}
		// Checked before each read: events already buffered must not
		// outlive a client that left, a fired timer, or Close.
		if err := s.ctx.Err(); err != nil {
			return nil, s.fail(s.c.transportError(s.ctx, s.parent, err))
		}
		ev, err := s.events.Next()
		if err != nil {
			return nil, s.fail(s.readError(err))
		}
		// Any event, a ping included, proves the upstream is alive.
		s.wd.arm(s.idle, errIdle)
		s.queue, err = s.dec.event(s.queue[:0], ev.Event, ev.Data)
		if err != nil {
			s.queue = nil
			return nil, s.fail(s.decodeError(err))
		}
	}
}

func (s *stream) decodeError(err error) error {
	var we *wireErrorReply
	if errors.As(err, &we) {
		return s.c.eventError(we.raw)
	}
	return s.c.malformed("stream event", err)
}

// readError maps a decoder error to a *router.Error.
func (s *stream) readError(err error) error {
	switch {
	case s.ctx.Err() != nil:
		return s.c.transportError(s.ctx, s.parent, err)
	case err == io.EOF || err == io.ErrUnexpectedEOF:
		// Without message_stop the reply may be truncated: a failure.
		return &router.Error{Kind: router.KindUpstream, Provider: s.c.name,
			Message: "upstream closed the stream early", Err: err}
	case errors.Is(err, sse.ErrEventTooLarge):
		return &router.Error{Kind: router.KindUpstream, Provider: s.c.name,
			Message: fmt.Sprintf("provider %q sent a stream event larger than %d bytes", s.c.name, sse.MaxEventSize), Err: err}
	}
	return s.c.transportError(s.ctx, s.parent, err)
}

// fail records the terminal state and stops the timer, so a finished
// stream cannot be canceled by a late tick.
func (s *stream) fail(err error) error {
	s.err = err
	s.wd.stop()
	return err
}

// Close stops the timer, cancels the per-call context (net/http then drops
// an unfinished connection) and closes the body. It is safe to call more
// than once and concurrently with Next.
func (s *stream) Close() error {
	s.once.Do(func() {
		s.wd.stop()
		s.cancel(errClosed)
		s.body.Close()
	})
	return nil
}

// watchdog is the single time.AfterFunc that bounds an attempt: armed with
// FirstToken before the request, re-armed with Idle after each event.
// Firing cancels the per-call context with the phase's cause.
type watchdog struct {
	mu     sync.Mutex
	t      *time.Timer
	cause  error
	cancel context.CancelCauseFunc
}

func newWatchdog(cancel context.CancelCauseFunc) *watchdog { return &watchdog{cancel: cancel} }

// arm (re)starts the timer for d with the given cause; d <= 0 means no
// limit for this phase.
func (w *watchdog) arm(d time.Duration, cause error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.cause = cause
	switch {
	case d <= 0:
		if w.t != nil {
			w.t.Stop()
		}
	case w.t == nil:
		w.t = time.AfterFunc(d, w.fire)
	default:
		w.t.Reset(d)
	}
}

func (w *watchdog) fire() {
	w.mu.Lock()
	cause := w.cause
	w.mu.Unlock()
	w.cancel(cause)
}

func (w *watchdog) stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.t != nil {
		w.t.Stop()
	}
}
