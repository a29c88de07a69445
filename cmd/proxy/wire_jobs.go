package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"llmproxy/router"
	"llmproxy/store/postgres"
	"llmproxy/store/sqlite"
	"llmproxy/vectorstore"
)

// One river client per process runs every background job: memory's
// retention sweep and, with vector_stores, ingestion and its reconciler.
// On PostgreSQL it lives in the usage database (started once that is
// connected: it may be down at start, usage_store.go); on SQLite in
// river.db under server.data_dir (riversqlite wants a connection of its
// own). It starts after the server is built, so a job left from an
// earlier run never meets an embedding service that is not bound yet.

// jobPart is what one subsystem runs on river.
type jobPart struct {
	// add adds its workers and returns its periodic jobs; it may fail
	// (vector stores need their storage set up on the database).
	add func(ctx context.Context, db dbStore, w *river.Workers) ([]*river.PeriodicJob, error)
	// queues are its queues besides the default one.
	queues map[string]river.QueueConfig
	// every is its shortest period: SQLite's river finds jobs by polling,
	// which must not be slower.
	every time.Duration
}

// jobs owns the river client.
type jobs struct {
	log   *slog.Logger
	dir   string // SQLite: where river.db goes; "" on PostgreSQL
	parts []jobPart
	// middleware wraps every job worked (tracing's otelriver, when on).
	middleware []rivertype.Middleware
	mu         sync.Mutex
	runner     jobRunner
	cancel     context.CancelFunc
	wg         sync.WaitGroup
}

// jobRunner is a started river client.
type jobRunner interface {
	stop(ctx context.Context) error
	vectorstore.Queue
}

var errJobsUnavailable = &router.Error{Kind: router.KindNoProvider, Message: "Background jobs are not running yet; retry later."}

func newJobs(cfg *Config, log *slog.Logger, parts ...jobPart) *jobs {
	j := &jobs{log: log, parts: parts}
	if cfg.Database.URL.Value() == "" {
		j.dir = cfg.Server.DataDir
	}
	return j
}

// config builds the client's config and workers for db.
func (j *jobs) config(ctx context.Context, db dbStore) (*river.Config, error) {
	workers := river.NewWorkers()
	rc := &river.Config{
		Queues:  map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: 2}},
		Workers: workers,
		// River's own lines below Warn are per-poll noise.
		Logger:            slog.New(minLevel{Handler: j.log.Handler(), min: slog.LevelWarn}),
		FetchPollInterval: river.FetchPollIntervalDefault,
		FetchCooldown:     river.FetchCooldownDefault,
		// Tracing, when on: a span per job worked (otelriver).
		Middleware: j.middleware,
	}
	for _, p := range j.parts {
		pj, err := p.add(ctx, db, workers)
		if err != nil {
			return nil, err
		}
		rc.PeriodicJobs = append(rc.PeriodicJobs, pj...)
		for name, q := range p.queues {
			rc.Queues[name] = q
		}
		rc.FetchPollInterval = min(rc.FetchPollInterval, p.every)
		rc.FetchCooldown = min(rc.FetchCooldown, p.every)
	}
	return rc, nil
}

// start starts the client: at once on SQLite and on a PostgreSQL that is
// connected, else in the background once it is.
func (j *jobs) start(u *usageStore) error {
	ctx, cancel := context.WithTimeout(context.Background(), connectTimeout)
	defer cancel()
	if j.dir != "" {
		db := u.current()
		rc, err := j.config(ctx, db)
		if err != nil {
			return fmt.Errorf("jobs: %w", err)
		}
		r, err := sqlite.OpenJobs(ctx, j.dir, rc)
		if err != nil {
			return fmt.Errorf("jobs: %w", err)
		}
		if err := r.Start(context.Background()); err != nil {
			_ = r.Close()
			return fmt.Errorf("jobs: %w", err)
		}
		j.set(&riverRunner[*sqlite.Jobs]{c: r, close: r.Close})
		return nil
	}
	if pg, ok := u.current().(*postgres.DB); ok && j.startPG(ctx, pg) == nil {
		return nil
	}
	j.startWhenConnected(u)
	return nil
}

func (j *jobs) startPG(ctx context.Context, pg *postgres.DB) error {
	rc, err := j.config(ctx, pg)
	if err != nil {
		return err
	}
	r, err := pg.Jobs(ctx, rc)
	if err == nil {
		err = r.Start(context.Background())
	}
	if err != nil {
		return err
	}
	j.set(&riverRunner[*postgres.Jobs]{c: r})
	return nil
}

func (j *jobs) set(r jobRunner) {
	j.mu.Lock()
	j.runner = r
	j.mu.Unlock()
}

func (j *jobs) current() jobRunner {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.runner
}

func (j *jobs) startWhenConnected(u *usageStore) {
	ctx, cancel := context.WithCancel(context.Background())
	j.cancel = cancel
	j.wg.Go(func() {
		defer func() {
			if p := recover(); p != nil {
				j.log.Error("panic starting the background jobs", slog.Any("err", p), slog.String("stack", string(debug.Stack())))
			}
		}()
		backoff := connectBackoff
		for {
			if pg, ok := u.current().(*postgres.DB); ok {
				sctx, scancel := context.WithTimeout(ctx, connectTimeout)
				err := j.startPG(sctx, pg)
				scancel()
				if err == nil || ctx.Err() != nil {
					return
				}
				j.log.Warn("background jobs (memory retention, vector-store ingestion) not started; retrying",
					slog.Duration("retry_in", backoff), slog.Any("err", err))
				backoff = min(2*backoff, connectBackoffMax)
			}
			t := time.NewTimer(backoff)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
	})
}

// stop stops the client: running jobs get half of ctx's time to finish,
// then they are cancelled (an ingestion cut so resumes after a restart).
func (j *jobs) stop(ctx context.Context) error {
	if j.cancel != nil {
		j.cancel()
	}
	j.wg.Wait()
	r := j.current()
	if r == nil {
		return nil
	}
	return r.stop(ctx)
}

// Enqueue implements vectorstore.Queue.
func (j *jobs) Enqueue(ctx context.Context, refs []vectorstore.FileRef) ([]int64, error) {
	r := j.current()
	if r == nil {
		return nil, errJobsUnavailable
	}
	return r.Enqueue(ctx, refs)
}

// Waiting implements vectorstore.Queue.
func (j *jobs) Waiting(ctx context.Context, id int64) (bool, error) {
	r := j.current()
	if r == nil {
		return false, errJobsUnavailable
	}
	return r.Waiting(ctx, id)
}

// riverClient is what a store's river client offers (sqlite.Jobs,
// postgres.Jobs).
type riverClient interface {
	Stop(ctx context.Context) error
	StopAndCancel(ctx context.Context) error
	InsertMany(ctx context.Context, params []river.InsertManyParams) ([]*rivertype.JobInsertResult, error)
	JobGet(ctx context.Context, id int64) (*rivertype.JobRow, error)
}

type riverRunner[C riverClient] struct {
	c     C
	close func() error // after stopping; nil: nothing to close
}

func (r *riverRunner[C]) stop(ctx context.Context) error {
	soft := ctx
	if dl, ok := ctx.Deadline(); ok {
		var cancel context.CancelFunc
		soft, cancel = context.WithTimeout(ctx, time.Until(dl)/2)
		defer cancel()
	}
	err := r.c.Stop(soft)
	if err != nil && ctx.Err() == nil {
		err = r.c.StopAndCancel(ctx)
	}
	if r.close != nil {
		err = errors.Join(err, r.close())
	}
	return err
}

func (r *riverRunner[C]) Enqueue(ctx context.Context, refs []vectorstore.FileRef) ([]int64, error) {
	params := make([]river.InsertManyParams, len(refs))
	for i, ref := range refs {
		params[i] = river.InsertManyParams{Args: vectorstore.IngestArgs{FileRef: ref}}
	}
	res, err := r.c.InsertMany(ctx, params)
	if err != nil {
		return nil, err
	}
	ids := make([]int64, len(res))
	for i, x := range res {
		ids[i] = x.Job.ID
	}
	return ids, nil
}

func (r *riverRunner[C]) Waiting(ctx context.Context, id int64) (bool, error) {
	job, err := r.c.JobGet(ctx, id)
	if errors.Is(err, river.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	switch job.State {
	case rivertype.JobStateAvailable, rivertype.JobStateScheduled, rivertype.JobStateRetryable, rivertype.JobStatePending:
		return true, nil
	}
	return false, nil
}
