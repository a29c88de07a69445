package openai

import (
	"bytes"
	"context"
	"encoding/json"
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
	errFirstToken = errors.New("openai: no first chunk within the first-token timeout")
	errIdle       = errors.New("openai: upstream silent for longer than the idle timeout")
)

var doneMarker = []byte("[DONE]")

// stream turns an upstream SSE body into chat.completion.chunk Chunks.
type stream struct {
	c      *Client
	ctx    context.Context // per-call, canceled by the watchdog or Close
	parent context.Context // the caller's
	cancel context.CancelCauseFunc
	wd     *watchdog
	idle   time.Duration
	body   io.ReadCloser
	events *sse.Reader
	model  string // last model name, reused while it repeats
	err    error  // sticky: io.EOF or the failure
	once   sync.Once
}

func newStream(c *Client, ctx, parent context.Context, cancel context.CancelCauseFunc, wd *watchdog, body io.ReadCloser, idle time.Duration) *stream {
	return &stream{c: c, ctx: ctx, parent: parent, cancel: cancel, wd: wd, idle: idle, body: body, events: sse.NewReader(body)}
}

// Next returns the next chunk, io.EOF after "data: [DONE]", or a
// *router.Error.
func (s *stream) Next() (*router.Chunk, error) {
	if s.err != nil {
		return nil, s.err
	}
	for {
		// Checked before each read: events already buffered must not
		// outlive a client that left, a fired timer, or Close.
		if err := s.ctx.Err(); err != nil {
			return nil, s.fail(s.c.transportError(s.ctx, s.parent, err))
		}
		ev, err := s.events.Next()
		if err != nil {
			return nil, s.fail(s.readError(err))
		}
		// Any event, even one we skip, proves the upstream is alive.
		s.wd.arm(s.idle, errIdle)
		if len(ev.Data) == 0 {
			continue
		}
		if bytes.Equal(ev.Data, doneMarker) {
			s.drain()
			return nil, s.fail(io.EOF)
		}
		ch, err := s.chunk(ev.Data)
		if err != nil {
			return nil, s.fail(err)
		}
		return ch, nil
	}
}

// chunk classifies one event's JSON with a few top-level scans instead of
// a full decode; only a usage object is unmarshaled.
func (s *stream) chunk(data []byte) (*router.Chunk, error) {
	if !json.Valid(data) {
		return nil, s.c.malformed("stream chunk", nil)
	}
	if e := router.TopField(data, "error"); isObject(e) {
		return nil, s.c.eventError(e)
	}
	// The sse buffer is reused by the next event: the chunk needs its own.
	ch := &router.Chunk{Data: bytes.Clone(data)}
	s.model = modelName(router.TopField(data, "model"), s.model)
	ch.Model = s.model
	if raw := router.TopField(data, "usage"); isObject(raw) {
		u, err := parseUsage(raw)
		if err != nil {
			return nil, s.c.malformed("usage", err)
		}
		ch.Usage = u
		ch.UsageOnly = isEmptyArray(router.TopField(data, "choices"))
	}
	return ch, nil
}

// Bounds on reading what follows [DONE].
const (
	drainTimeout = 25 * time.Millisecond
	drainMax     = 4 << 10
)

// drain reads the body to its end after [DONE] (normally only the chunked
// terminator is left), so that net/http returns the connection to the
// pool: a body abandoned before its end closes the connection, and then
// every stream dials the upstream anew. It runs before Next reports the
// end, because the callers cancel the request context as soon as it does.
// An upstream that holds the body open is cut after drainTimeout.
func (s *stream) drain() {
	s.wd.arm(drainTimeout, errClosed)
	_, _ = io.CopyN(io.Discard, s.body, drainMax)
}

// readError maps a decoder error to a *router.Error.
func (s *stream) readError(err error) error {
	switch {
	case s.ctx.Err() != nil:
		// A canceled body may read as a short stream: the cause decides.
		return s.c.transportError(s.ctx, s.parent, err)
	case err == io.EOF || err == io.ErrUnexpectedEOF:
		// Without [DONE] the reply may be truncated: a failure, not an end.
		return &router.Error{Kind: router.KindUpstream, Provider: s.c.name,
			Message: "upstream closed the stream early", Err: err}
	case errors.Is(err, sse.ErrEventTooLarge):
		return &router.Error{Kind: router.KindUpstream, Provider: s.c.name,
			Message: fmt.Sprintf("provider %q sent a stream event larger than %d bytes", s.c.name, sse.MaxEventSize), Err: err}
	}
	return s.c.transportError(s.ctx, s.parent, err)
}

// fail records the stream's terminal state and stops the timer, so a
// finished stream cannot be canceled by a late tick.
func (s *stream) fail(err error) error {
	s.err = err
	s.wd.stop()
	return err
}

// Close stops the timer, cancels the per-call context (which makes net/http
// drop the connection if the body is not finished) and closes the body. It
// is safe to call more than once and concurrently with Next.
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
