package upstream

import (
	"context"
	"sync"
	"time"
)

// Watchdog is the single time.AfterFunc that bounds an attempt: armed with
// the first-token timeout before the request, re-armed with the idle
// timeout after each event. Firing cancels the per-call context with the
// phase's cause, so a failed read can tell our timers from the client
// leaving. It is safe for concurrent use.
type Watchdog struct {
	mu     sync.Mutex
	t      *time.Timer
	cause  error
	cancel context.CancelCauseFunc
}

// NewWatchdog returns an unarmed Watchdog that calls cancel when it fires.
func NewWatchdog(cancel context.CancelCauseFunc) *Watchdog { return &Watchdog{cancel: cancel} }

// Arm (re)starts the timer for d with the given cause; d <= 0 means no
// limit for this phase.
func (w *Watchdog) Arm(d time.Duration, cause error) {
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

func (w *Watchdog) fire() {
	w.mu.Lock()
	cause := w.cause
	w.mu.Unlock()
	w.cancel(cause)
}

// Stop disarms the timer, so a finished attempt cannot be canceled by a
// late tick.
func (w *Watchdog) Stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.t != nil {
		w.t.Stop()
	}
}
