package ledger

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults for the zero fields of Options.
const (
	DefaultCapacity     = 10000
	DefaultBatchSize    = 200
	DefaultFlushEvery   = time.Second
	DefaultRetries      = 3
	DefaultRetryBackoff = 200 * time.Millisecond
	DefaultMaxBackoff   = 5 * time.Second
	DefaultWriteTimeout = 10 * time.Second
	// dropWarnEvery rate-limits the warning a full queue logs.
	dropWarnEvery = 10 * time.Second
)

// ErrUnavailable marks a Writer error that means the store is down (not
// connected yet, or not answering) rather than the batch bad: the batch
// is kept and retried until the store is back, while Add keeps queueing
// up to Capacity.
var ErrUnavailable = errors.New("usage store unavailable")

// Options configure a Ledger. Only Writer is required.
type Options struct {
	// Writer is where batches go.
	Writer Writer
	// Capacity bounds the records waiting in memory. Default 10000.
	Capacity int
	// BatchSize is the most records per WriteBatch. Default 200.
	BatchSize int
	// FlushEvery is the longest a queued record waits for a batch to fill.
	// Default 1s.
	FlushEvery time.Duration
	// Retries is how many more times a failed batch is tried before its
	// records are dropped (and counted), unless the error is
	// ErrUnavailable (see MaxRetryBackoff). Default 3; negative means none.
	Retries int
	// RetryBackoff is the wait before the first retry; it doubles each
	// time, up to MaxRetryBackoff. Default 200ms.
	RetryBackoff time.Duration
	// MaxRetryBackoff caps the wait between retries of a batch the Writer
	// refused with ErrUnavailable, which is retried until it is written
	// (or Close gives up) instead of dropped after Retries. Default 5s.
	MaxRetryBackoff time.Duration
	// WriteTimeout bounds one WriteBatch call. Default 10s.
	WriteTimeout time.Duration
	// Log receives drop warnings and write errors. Default slog.Default().
	Log *slog.Logger
	// Now is the clock (tests inject one). Default time.Now.
	Now func() time.Time
}

// Stats are the ledger's counters since New.
type Stats struct {
	// Queued is how many records wait to be written (in the queue or in
	// the batch being written).
	Queued int64
	// Written counts records the Writer accepted.
	Written uint64
	// DroppedFull counts records refused because the queue was full.
	DroppedFull uint64
	// DroppedFailed counts records of batches that failed every retry.
	DroppedFailed uint64
	// DroppedClosed counts records added after Close, or still queued
	// when Close's context ended.
	DroppedClosed uint64
}

// Dropped is the total of every kind of drop.
func (s Stats) Dropped() uint64 { return s.DroppedFull + s.DroppedFailed + s.DroppedClosed }

// Ledger is the bounded queue and its writer goroutine.
type Ledger struct {
	o   Options
	log *slog.Logger
	ch  chan Record

	// mu orders Add against Close: Add holds it shared, so once Close
	// holds it alone no Add is half-way and every later one sees closed.
	mu     sync.RWMutex
	closed bool

	quit   chan struct{}
	done   chan struct{}
	ctx    context.Context // cancelled when Close gives up waiting
	cancel context.CancelFunc
	once   sync.Once
	err    error

	queued  atomic.Int64
	written atomic.Uint64
	// writeSeq is odd while a batch is being written (see WriteSeq).
	writeSeq      atomic.Uint64
	droppedFull   atomic.Uint64
	droppedFailed atomic.Uint64
	droppedClosed atomic.Uint64
	lastWarn      atomic.Int64 // unix nanoseconds of the last drop warning
	// pending sums what the queue holds, for Pending (pending.go).
	pending pendingIndex
}

// New starts a Ledger and its writer goroutine; Close stops it.
func New(o Options) (*Ledger, error) {
	if o.Writer == nil {
		return nil, errors.New("ledger: Options.Writer is required")
	}
	if o.Capacity < 0 || o.BatchSize < 0 || o.FlushEvery < 0 || o.RetryBackoff < 0 || o.MaxRetryBackoff < 0 || o.WriteTimeout < 0 {
		return nil, errors.New("ledger: Options sizes and durations must not be negative")
	}
	setDefault(&o.Capacity, DefaultCapacity)
	setDefault(&o.BatchSize, DefaultBatchSize)
	setDefault(&o.FlushEvery, DefaultFlushEvery)
	setDefault(&o.Retries, DefaultRetries)
	setDefault(&o.RetryBackoff, DefaultRetryBackoff)
	setDefault(&o.MaxRetryBackoff, max(DefaultMaxBackoff, o.RetryBackoff))
	setDefault(&o.WriteTimeout, DefaultWriteTimeout)
	if o.Retries < 0 {
		o.Retries = 0
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	l := &Ledger{o: o, log: o.Log, ch: make(chan Record, o.Capacity), quit: make(chan struct{}), done: make(chan struct{})}
	l.ctx, l.cancel = context.WithCancel(context.Background())
	go l.run()
	return l, nil
}

func setDefault[T comparable](p *T, v T) {
	var zero T
	if *p == zero {
		*p = v
	}
}

// Add queues r for writing and reports whether it was queued. It never
// blocks: when the queue is full (or the ledger is closed) r is dropped,
// counted and, at most every 10 seconds, logged at Warn.
func (l *Ledger) Add(r Record) bool {
	l.mu.RLock()
	if l.closed {
		l.mu.RUnlock()
		l.droppedClosed.Add(1)
		l.warnDrop("ledger closed")
		return false
	}
	// Indexed before it is sent, so the writer can never remove it first.
	l.pending.add(&r)
	select {
	case l.ch <- r:
		l.queued.Add(1)
		l.mu.RUnlock()
		return true
	default:
		l.mu.RUnlock()
		l.pending.remove([]Record{r})
		l.droppedFull.Add(1)
		l.warnDrop("ledger queue full")
		return false
	}
}

func (l *Ledger) warnDrop(msg string) {
	now := l.o.Now().UnixNano()
	last := l.lastWarn.Load()
	if last != 0 && now-last < int64(dropWarnEvery) || !l.lastWarn.CompareAndSwap(last, now) {
		return
	}
	st := l.Stats()
	l.log.Warn(msg+": usage records dropped", slog.Uint64("dropped_full", st.DroppedFull),
		slog.Uint64("dropped_closed", st.DroppedClosed), slog.Int("capacity", l.o.Capacity))
}

// Stats returns the counters.
func (l *Ledger) Stats() Stats {
	return Stats{Queued: l.queued.Load(), Written: l.written.Load(), DroppedFull: l.droppedFull.Load(),
		DroppedFailed: l.droppedFailed.Load(), DroppedClosed: l.droppedClosed.Load()}
}

// Close stops accepting records and writes everything queued. If ctx ends
// first, the writes in progress are cancelled and what is left is dropped
// and counted. Close is safe to call more than once.
func (l *Ledger) Close(ctx context.Context) error {
	l.once.Do(func() {
		before := l.droppedClosed.Load()
		l.mu.Lock()
		l.closed = true
		l.mu.Unlock()
		close(l.quit)
		select {
		case <-l.done:
		case <-ctx.Done():
			l.cancel()
			<-l.done
		}
		l.cancel()
		if n := l.droppedClosed.Load() - before; n > 0 {
			l.err = fmt.Errorf("ledger close: %w: %d records dropped", context.Cause(ctx), n)
		}
	})
	return l.err
}

// run is the writer goroutine: it collects records into batches and
// writes a batch when it is full or FlushEvery has passed.
func (l *Ledger) run() {
	defer close(l.done)
	batch := make([]Record, 0, l.o.BatchSize)
	tick := time.NewTicker(l.o.FlushEvery)
	defer tick.Stop()
	for {
		select {
		case r := <-l.ch:
			batch = append(batch, r)
			if len(batch) >= l.o.BatchSize {
				batch = l.flush(batch)
			}
		case <-tick.C:
			batch = l.flush(batch)
		case <-l.quit:
			l.drain(batch)
			return
		}
	}
}

// drain writes what is queued after Close; nothing can be added any more.
func (l *Ledger) drain(batch []Record) {
	for {
		select {
		case r := <-l.ch:
			batch = append(batch, r)
			if len(batch) >= l.o.BatchSize {
				batch = l.flush(batch)
			}
		default:
			l.flush(batch)
			return
		}
	}
}

// flush writes batch, retrying with backoff, and returns it emptied.
func (l *Ledger) flush(batch []Record) []Record {
	if len(batch) == 0 {
		return batch
	}
	n := len(batch)
	defer l.queued.Add(-int64(n))
	backoff := l.o.RetryBackoff
	var err error
	attempt := 0
	for ; ; attempt++ {
		if attempt > 0 && !l.sleep(backoff) {
			break
		}
		backoff = min(backoff*2, l.o.MaxRetryBackoff)
		l.writeSeq.Add(1) // odd: a batch may be in the database and in pending at once
		err = l.write(batch)
		if err == nil {
			l.written.Add(uint64(n))
			l.pending.remove(batch)
		}
		l.writeSeq.Add(1)
		if err == nil {
			return batch[:0]
		}
		if l.ctx.Err() != nil {
			break
		}
		if attempt >= l.o.Retries {
			if !errors.Is(err, ErrUnavailable) {
				break
			}
			if attempt == l.o.Retries {
				// The store is down, not the batch bad: keep it, and let
				// the queue (bounded by Capacity) hold what arrives.
				l.log.Warn("usage database unavailable; records wait in the queue", slog.Int("records", n),
					slog.Int("capacity", l.o.Capacity), slog.Any("err", err))
			}
		}
	}
	if l.ctx.Err() != nil {
		l.droppedClosed.Add(uint64(n))
	} else {
		l.droppedFailed.Add(uint64(n))
	}
	l.log.Error("usage ledger write failed; records dropped", slog.Int("records", n),
		slog.Int("attempts", attempt+1), slog.Any("err", err))
	l.pending.remove(batch)
	clear(batch) // drop references to the strings
	return batch[:0]
}

// write makes one WriteBatch call, turning a panic into an error so the
// writer goroutine survives a broken store.
func (l *Ledger) write(batch []Record) (err error) {
	defer func() {
		if p := recover(); p != nil {
			l.log.Error("panic in ledger writer", slog.Any("err", p), slog.String("stack", string(debug.Stack())))
			err = fmt.Errorf("ledger writer panicked: %v", p)
		}
	}()
	ctx, cancel := context.WithTimeout(l.ctx, l.o.WriteTimeout)
	defer cancel()
	return l.o.Writer.WriteBatch(ctx, batch)
}

// sleep waits d, or returns false if Close gave up first.
func (l *Ledger) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-l.ctx.Done():
		return false
	}
}
