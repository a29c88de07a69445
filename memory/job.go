package memory

import (
	"context"
	"log/slog"
	"time"

	"github.com/riverqueue/river"
)

// RetentionArgs is the river job that runs the retention sweep.
type RetentionArgs struct{}

// Kind implements river.JobArgs.
func (RetentionArgs) Kind() string { return "memory_retention" }

// retentionWorker is a thin shell over Sweep.
type retentionWorker struct {
	river.WorkerDefaults[RetentionArgs]
	m         *Memory
	retention time.Duration
	deleted   func(int64)
}

func (w *retentionWorker) Work(ctx context.Context, _ *river.Job[RetentionArgs]) error {
	n, err := w.m.Sweep(ctx, w.retention)
	if err != nil {
		return err // river retries
	}
	w.deleted(n)
	w.m.o.Log.InfoContext(ctx, "memory retention sweep", slog.Int64("deleted", n), slog.Duration("retention", w.retention))
	return nil
}

// AddRetentionJob adds the worker to workers and returns the periodic job
// that sweeps conversations idle for retention every interval, reporting
// each count to deleted (a metric). River enqueues periodic jobs on its
// elected leader only, and the job is unique per interval, so replicas
// sharing a database run it once; it survives restarts and is retried on
// failure.
func (m *Memory) AddRetentionJob(workers *river.Workers, retention, every time.Duration, deleted func(int64)) *river.PeriodicJob {
	river.AddWorker(workers, &retentionWorker{m: m, retention: retention, deleted: deleted})
	// River refuses unique periods under a second.
	period := max(every, time.Second)
	job := river.NewPeriodicJob(river.PeriodicInterval(every), func() (river.JobArgs, *river.InsertOpts) {
		return RetentionArgs{}, &river.InsertOpts{UniqueOpts: river.UniqueOpts{ByPeriod: period}}
	}, &river.PeriodicJobOpts{ID: "memory_retention", RunOnStart: true})
	return job
}
