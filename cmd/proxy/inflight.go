package main

import (
	"sync"
	"time"

	"llmproxy/router"
)

// inflight counts the work that still has to report: handlers that have
// not returned and stream writers that have not ended. Shutdown waits for
// it before the closers run, because a stream settles its budget (Redis)
// and queues its ledger row (the database) only when it ends.
//
// A sync.WaitGroup does not fit: a request that arrived before the drain
// may start its stream writer (Add from zero) while Shutdown waits.
type inflight struct {
	mu   sync.Mutex
	n    int
	idle chan struct{} // closed when n drops to 0; nil while n is 0
}

// add counts one more and returns how many are now in flight.
func (f *inflight) add() int {
	f.mu.Lock()
	if f.n == 0 {
		f.idle = make(chan struct{})
	}
	f.n++
	n := f.n
	f.mu.Unlock()
	return n
}

func (f *inflight) done() {
	f.mu.Lock()
	f.n--
	if f.n == 0 {
		close(f.idle)
		f.idle = nil
	}
	f.mu.Unlock()
}

// wait blocks until nothing is in flight or d has passed; it reports how
// many were still running.
func (f *inflight) wait(d time.Duration) int {
	f.mu.Lock()
	idle := f.idle
	f.mu.Unlock()
	if idle == nil {
		return 0
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-idle:
		return 0
	case <-t.C:
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.n
}

// errShuttingDown is the event a stream cut at the end of the drain ends
// with, so the client (and the SDK) sees a failure rather than a clean
// end. Its kind stays KindCanceled: the access line and the metrics count
// it as cut, not as a provider failure.
func errShuttingDown(cause error) *router.Error {
	return &router.Error{Kind: router.KindCanceled, Type: "api_error", Code: "server_shutting_down",
		Message: "The server is shutting down and cut this stream before it finished; retry the request.", Err: cause}
}
