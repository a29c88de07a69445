package vectorstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/riverqueue/river"
)

// QueueIngest is the river queue ingestion jobs run on, IngestWorkers
// jobs at a time per process.
const (
	QueueIngest   = "vector_store_ingest"
	IngestWorkers = 4
	// ingestAttempts is how often a transient failure is tried (the
	// seed's 3 retries of one task).
	ingestAttempts = 3
	// ingestTimeout bounds one attempt: a 50 MB file is a few thousand
	// embedding calls.
	ingestTimeout = 30 * time.Minute
)

// IngestArgs is the river job that ingests one vector-store file at one
// generation.
type IngestArgs struct {
	FileRef
}

// Kind implements river.JobArgs.
func (IngestArgs) Kind() string { return "vector_store_ingest" }

// InsertOpts implements river.JobArgsWithInsertOpts.
func (IngestArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueIngest, MaxAttempts: ingestAttempts}
}

// ingestWorker is a thin shell over Ingest.
type ingestWorker struct {
	river.WorkerDefaults[IngestArgs]
	s *Service
}

func (w *ingestWorker) Work(ctx context.Context, job *river.Job[IngestArgs]) error {
	return w.s.Ingest(ctx, job.Args.FileRef, job.Attempt >= job.MaxAttempts)
}

// NextRetry backs off 2s, then 10s (plus river's clock): enough for an
// upstream blip or a rate-limit window to pass.
func (w *ingestWorker) NextRetry(job *river.Job[IngestArgs]) time.Time {
	d := 2 * time.Second
	if job.Attempt > 1 {
		d = 10 * time.Second
	}
	return time.Now().Add(d)
}

func (w *ingestWorker) Timeout(*river.Job[IngestArgs]) time.Duration { return ingestTimeout }

// ReconcileArgs is the periodic river job that queues again the
// ingestions whose job died with its process (SIGKILL, OOM) or was never
// queued (a crash between the insert and the enqueue).
type ReconcileArgs struct{}

// Kind implements river.JobArgs.
func (ReconcileArgs) Kind() string { return "vector_store_reconcile" }

type reconcileWorker struct {
	river.WorkerDefaults[ReconcileArgs]
	s *Service
}

func (w *reconcileWorker) Work(ctx context.Context, _ *river.Job[ReconcileArgs]) error {
	_, err := w.s.Reconcile(ctx)
	return err
}

// AddJobs adds the ingestion and reconcile workers to workers and returns
// the periodic reconcile job. River enqueues periodic jobs on its elected
// leader only; Requeue is conditional, so replicas never queue one file
// twice anyway.
func (s *Service) AddJobs(workers *river.Workers) *river.PeriodicJob {
	river.AddWorker(workers, &ingestWorker{s: s})
	river.AddWorker(workers, &reconcileWorker{s: s})
	every := s.o.ReconcileEvery
	return river.NewPeriodicJob(river.PeriodicInterval(every), func() (river.JobArgs, *river.InsertOpts) {
		return ReconcileArgs{}, &river.InsertOpts{UniqueOpts: river.UniqueOpts{ByPeriod: max(every, time.Second)}}
	}, &river.PeriodicJobOpts{ID: "vector_store_reconcile", RunOnStart: true})
}

// ReconcileEvery is how often the reconciler runs (river's poll interval
// on SQLite must not be slower).
func (s *Service) ReconcileEvery() time.Duration { return s.o.ReconcileEvery }

// reconcileBatch bounds the files one reconcile run looks at.
const reconcileBatch = 500

// maxRequeues is how often a file's ingestion may die with its process
// before the file fails: a file that kills the process each time (out of
// memory) must not bring it down forever.
const maxRequeues = 3

// Reconcile finds in_progress files whose ingestion showed no sign of life
// for StaleAfter. One whose job is still queued (waiting for a worker or a
// retry) is left alone; any other (its job running in a process that
// died, finished without finishing the file, or never queued) moves to
// the next generation and gets a new job; the old job, if it ever runs,
// drops its work. It returns how many it queued again.
func (s *Service) Reconcile(ctx context.Context) (int, error) {
	if s.queue == nil {
		return 0, nil
	}
	now := s.o.Now()
	stale, err := s.o.Storage.StaleIngests(ctx, now.Add(-s.o.StaleAfter), reconcileBatch)
	if err != nil {
		return 0, fmt.Errorf("vectorstore: reconcile: %w", err)
	}
	var refs []FileRef
	var errs []error
	for _, st := range stale {
		if st.JobID != 0 {
			waiting, err := s.queue.Waiting(ctx, st.JobID)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if waiting {
				if err := s.o.Storage.Touch(ctx, st.FileRef, now); err != nil {
					errs = append(errs, err)
				}
				continue
			}
		}
		if st.Requeues >= maxRequeues {
			fe := FileError{Code: CodeServerError, Message: fmt.Sprintf(
				"Ingesting the file was interrupted %d times (the process stopped mid-way); attach it again to retry.", st.Requeues+1)}
			if err := s.o.Storage.FailIngest(ctx, st.FileRef, fe, now); err != nil && !errors.Is(err, ErrSuperseded) && !errors.Is(err, ErrNotFound) {
				errs = append(errs, err)
			} else if err == nil {
				s.m.files.WithLabelValues(fe.Code).Inc()
			}
			continue
		}
		next, ok, err := s.o.Storage.Requeue(ctx, st.FileRef, now)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if ok {
			refs = append(refs, next)
		}
	}
	if err := s.enqueue(ctx, refs); err != nil {
		errs = append(errs, err)
	}
	if len(refs) > 0 {
		s.m.requeued.Add(float64(len(refs)))
		s.o.Log.InfoContext(ctx, "vector store ingestions queued again (their job had died or was lost)", slog.Int("files", len(refs)))
	}
	if err := errors.Join(errs...); err != nil {
		return len(refs), fmt.Errorf("vectorstore: reconcile: %w", err)
	}
	return len(refs), nil
}
