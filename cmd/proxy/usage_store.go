package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"llmproxy/budget"
	"llmproxy/ledger"
)

// Connecting to the usage database in the background (issue 17 item 9).
// A database that is down at start, or that blips later, must not stop the
// proxy or turn /ready red: requests do not need it. The ledger keeps
// records in its bounded queue and retries (ledger.ErrUnavailable) until
// the database is back; /v1/usage answers 503; budget counters that must
// be rebuilt from it wait (budget/seed.go).

// Backoff between connection attempts to a database that was down at start.
const (
	connectBackoff    = time.Second
	connectBackoffMax = 30 * time.Second
	connectTimeout    = 15 * time.Second
)

// usageStore is the usage database once connected: a ledger.Store and a
// budget.SpendSource that answer ledger.ErrUnavailable while it is not.
type usageStore struct {
	db  atomic.Pointer[dbStore]
	log *slog.Logger
	// queue is the usage ledger, whose unwritten records PeriodSpend adds.
	queue  atomic.Pointer[ledger.Ledger]
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

var (
	_ ledger.Store       = (*usageStore)(nil)
	_ budget.SpendSource = (*usageStore)(nil)
)

// connectUsage opens the store once; if that fails it logs a warning and
// keeps trying in the background, with backoff, until it succeeds or the
// store is closed.
func connectUsage(open func(context.Context) (dbStore, error), log *slog.Logger) *usageStore {
	u := &usageStore{log: log}
	ctx, cancel := context.WithCancel(context.Background())
	u.cancel = cancel
	octx, ocancel := context.WithTimeout(ctx, connectTimeout)
	db, err := open(octx)
	ocancel()
	if err == nil {
		u.db.Store(&db)
		return u
	}
	log.Warn("usage database unavailable at start; serving without it and retrying in the background", slog.Any("err", err))
	u.wg.Add(1)
	go u.retry(ctx, open)
	return u
}

func (u *usageStore) retry(ctx context.Context, open func(context.Context) (dbStore, error)) {
	defer u.wg.Done()
	defer func() {
		if p := recover(); p != nil {
			u.log.Error("panic connecting to the usage database", slog.Any("err", p), slog.String("stack", string(debug.Stack())))
		}
	}()
	backoff := connectBackoff
	for {
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(backoff*2, connectBackoffMax)
		octx, cancel := context.WithTimeout(ctx, connectTimeout)
		db, err := open(octx)
		cancel()
		if err == nil {
			u.db.Store(&db)
			u.log.Info("usage database connected")
			return
		}
		if ctx.Err() != nil {
			return
		}
		u.log.Warn("usage database still unavailable", slog.Duration("retry_in", backoff), slog.Any("err", err))
	}
}

func (u *usageStore) current() dbStore {
	if p := u.db.Load(); p != nil {
		return *p
	}
	return nil
}

// unavailable marks err as ledger.ErrUnavailable when the database does
// not answer a ping: a blip, not a bad query.
func (u *usageStore) unavailable(ctx context.Context, db dbStore, err error) error {
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
	defer cancel()
	if perr := db.Ping(pctx); perr != nil {
		return fmt.Errorf("%w: %w", ledger.ErrUnavailable, err)
	}
	return err
}

var errNotConnected = fmt.Errorf("%w: not connected yet", ledger.ErrUnavailable)

// WriteBatch implements ledger.Writer.
func (u *usageStore) WriteBatch(ctx context.Context, recs []ledger.Record) error {
	db := u.current()
	if db == nil {
		return errNotConnected
	}
	if err := db.WriteBatch(ctx, recs); err != nil {
		return u.unavailable(ctx, db, err)
	}
	return nil
}

// Usage implements ledger.Reporter.
func (u *usageStore) Usage(ctx context.Context, f ledger.Filter) ([]ledger.Row, error) {
	db := u.current()
	if db == nil {
		return nil, errNotConnected
	}
	rows, err := db.Usage(ctx, f)
	if err != nil {
		return nil, u.unavailable(ctx, db, err)
	}
	return rows, nil
}

// PeriodSpend implements budget.SpendSource: the database's rows plus the
// records still queued in this replica's ledger. The two reads are made
// consistent with the ledger's write sequence (a seqlock): when a batch
// was written in between, they are read again, so a record counts once.
// After a few tries it settles for counting such a record twice (high),
// never zero times: the queue is read first.
func (u *usageStore) PeriodSpend(ctx context.Context, sel budget.SpendSelector, from, to time.Time) (budget.Amount, error) {
	const tries = 5
	for i := 0; ; i++ {
		l := u.queue.Load()
		var seq uint64
		var pending budget.Amount
		if l != nil {
			seq = l.WriteSeq()
			tok, cost := l.Pending(sel.Team, sel.KeyID, sel.Alias, from, to)
			pending = budget.Amount{Tokens: tok, NanoUSD: budget.ToNano(cost)}
		}
		db := u.current()
		if db == nil {
			return budget.Amount{}, errNotConnected
		}
		a, err := db.PeriodSpend(ctx, sel, from, to)
		if err != nil {
			return budget.Amount{}, u.unavailable(ctx, db, err)
		}
		if l == nil || (seq%2 == 0 && l.WriteSeq() == seq) || i == tries-1 {
			return budget.Amount{Tokens: a.Tokens + pending.Tokens, NanoUSD: a.NanoUSD + pending.NanoUSD}, nil
		}
		select { // a batch is being written: let it land
		case <-ctx.Done():
			return budget.Amount{}, ctx.Err()
		case <-time.After(time.Duration(i+1) * 10 * time.Millisecond):
		}
	}
}

// Close stops connecting and closes the database.
func (u *usageStore) Close() error {
	u.cancel()
	u.wg.Wait()
	if db := u.current(); db != nil {
		return db.Close()
	}
	return nil
}

// isUnavailable reports an error that means the usage database is down.
func isUnavailable(err error) bool { return errors.Is(err, ledger.ErrUnavailable) }
