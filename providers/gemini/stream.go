package gemini

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

// stream reads streamGenerateContent?alt=sse and hands out the decoder's
// chunks one at a time, so a slow client slows the upstream read.
type stream struct {
	c       *Client
	ctx     context.Context // per-call, canceled by the watchdog or Close
	parent  context.Context // the caller's
	cancel  context.CancelCauseFunc
	wd      *watchdog
	idle    time.Duration
	body    io.ReadCloser
	events  *sse.Reader
	dec     *decoder
	pending []*router.Chunk
	err     error // sticky: io.EOF or the failure
	once    sync.Once
}

func newStream(c *Client, ctx, parent context.Context, cancel context.CancelCauseFunc, wd *watchdog, body io.ReadCloser, idle time.Duration, dec *decoder) *stream {
	return &stream{c: c, ctx: ctx, parent: parent, cancel: cancel, wd: wd, idle: idle, body: body, events: sse.NewReader(body), dec: dec}
}

// Next returns the next chunk, io.EOF after the usage chunk, or a
// *router.Error.
func (s *stream) Next() (*router.Chunk, error) {
	for {
		if len(s.pending) > 0 {
			ch := s.pending[0]
			s.pending = s.pending[1:]
			return ch, nil
		}
		if s.err != nil {
			return nil, s.err
		}
		if err := s.ctx.Err(); err != nil {
			return nil, s.fail(s.c.transportError(s.ctx, s.parent, err))
		}
		ev, err := s.events.Next()
		if err == io.EOF {
			ch, err := s.dec.end()
			if err != nil {
				return nil, s.fail(withProvider(err, s.c.name))
			}
			s.fail(io.EOF)
			return ch, nil
		}
		if err != nil {
			return nil, s.fail(s.readError(err))
		}
		s.wd.arm(s.idle, errIdle) // any event proves the upstream is alive
		if len(ev.Data) == 0 {
			continue
		}
		chunks, err := s.dec.event(ev.Data)
		if err != nil {
			return nil, s.fail(withProvider(err, s.c.name))
		}
		s.pending = chunks
	}
}

func (s *stream) readError(err error) error {
	switch {
	case s.ctx.Err() != nil:
		return s.c.transportError(s.ctx, s.parent, err)
	case err == io.ErrUnexpectedEOF:
		return &router.Error{Kind: router.KindUpstream, Provider: s.c.name,
			Message: "upstream closed the stream early", Err: err}
	case errors.Is(err, sse.ErrEventTooLarge):
		return &router.Error{Kind: router.KindUpstream, Provider: s.c.name,
			Message: fmt.Sprintf("provider %q sent a stream event larger than %d bytes", s.c.name, sse.MaxEventSize), Err: err}
	}
	return s.c.transportError(s.ctx, s.parent, err)
}

// fail records the terminal state and stops the timer.
func (s *stream) fail(err error) error {
	s.err = err
	s.wd.stop()
	return err
}

// Close stops the timer, cancels the per-call context (net/http then drops
// an unfinished connection) and closes the body. Safe to call twice.
func (s *stream) Close() error {
	s.once.Do(func() {
		s.wd.stop()
		s.cancel(errClosed)
		s.body.Close()
	})
	return nil
}

// watchdog is the one time.AfterFunc bounding an attempt: armed with
// FirstToken before the request, re-armed with Idle after each event.
type watchdog struct {
	mu     sync.Mutex
	t      *time.Timer
	cause  error
	cancel context.CancelCauseFunc
}

func newWatchdog(cancel context.CancelCauseFunc) *watchdog { return &watchdog{cancel: cancel} }

// arm (re)starts the timer; d <= 0 means no limit for this phase.
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
