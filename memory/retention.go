package memory

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
	"time"
)

// Sweep deletes the conversations not updated for retention and returns
// how many. It is the whole retention job; RunRetention only schedules it.
func (m *Memory) Sweep(ctx context.Context, retention time.Duration) (int64, error) {
	if retention <= 0 {
		return 0, fmt.Errorf("memory: retention %v is not positive", retention)
	}
	n, err := m.o.Store.DeleteIdle(ctx, m.o.Now().Add(-retention))
	if err != nil {
		return 0, fmt.Errorf("memory: retention sweep: %w", err)
	}
	return n, nil
}

// RunRetention sweeps every interval until ctx ends, logging each run and
// reporting the count to deleted (a metric). Across replicas on one
// PostgreSQL database the store lets one sweep at a time (an advisory
// lock); the others find nothing to do.
//
// TODO(w2memory): run it as a river periodic job (issue 13 asks for a
// durable job, one run across replicas); the advisory lock gives the
// one-run guarantee today, without durability of a missed run.
func (m *Memory) RunRetention(ctx context.Context, retention, every time.Duration, deleted func(int64)) {
	defer func() {
		if p := recover(); p != nil {
			m.o.Log.Error("panic in memory retention", slog.Any("err", p), slog.String("stack", string(debug.Stack())))
		}
	}()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		sctx, cancel := context.WithTimeout(ctx, every)
		n, err := m.Sweep(sctx, retention)
		cancel()
		switch {
		case err != nil && ctx.Err() == nil:
			m.o.Log.Warn("memory retention sweep failed", slog.Any("err", err))
		case err == nil:
			deleted(n)
			m.o.Log.Info("memory retention sweep", slog.Int64("deleted", n), slog.Duration("retention", retention))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
