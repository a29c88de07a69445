package vectorstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"time"

	"golang.org/x/sync/errgroup"

	"llmproxy/router"
)

const (
	// embedBatch is how many chunks one embedding call carries: 64 of at
	// most 4096 tokens stay under OpenAI's 300k tokens per request.
	embedBatch = 64
	// embedParallel is how many embedding calls one file has in flight.
	embedParallel = 4
)

// Ingest is the whole ingestion of one vector-store file, the body of
// its river job: parse, chunk, embed (through the embedding service,
// charged to the team and key that attached the file, ledger route
// "ingest"), then store every chunk in one transaction. last says this
// is the job's last attempt.
//
// A file that cannot be read (unsupported, corrupt, no text) or embedded
// for reasons a retry cannot fix (the team's budget is spent, the model is
// not allowed) ends failed with last_error, and Ingest returns nil. Other
// errors are returned for river to retry; on the last attempt the file
// ends failed with server_error (rate_limit_exceeded after 429s). Work
// whose file was detached, cancelled or queued again meanwhile is dropped.
func (s *Service) Ingest(ctx context.Context, ref FileRef, last bool) error {
	start := s.o.Now()
	t, err := s.o.Storage.StartIngest(ctx, ref, start)
	if errors.Is(err, ErrNotFound) || errors.Is(err, ErrSuperseded) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("vectorstore: start ingestion: %w", err)
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stop := s.heartbeat(ctx, ref, cancel)
	defer stop()

	chunks, err := s.prepare(ctx, t)
	if err == nil {
		var usage int64
		for _, c := range chunks {
			usage += int64(len(c.Content) + 4*len(c.Embedding))
		}
		err = s.o.Storage.CompleteIngest(ctx, ref, chunks, usage, s.o.Now())
		if err == nil {
			s.m.files.WithLabelValues(StatusCompleted).Inc()
			s.m.chunks.Add(float64(len(chunks)))
			s.m.ingest.Observe(s.o.Now().Sub(start).Seconds())
			s.o.Log.InfoContext(ctx, "vector store file ingested", slog.String("vector_store_id", ref.StoreID),
				slog.String("file_id", ref.FileID), slog.Int("chunks", len(chunks)), slog.Duration("duration", s.o.Now().Sub(start)))
			return nil
		}
	}
	if errors.Is(err, ErrSuperseded) || errors.Is(context.Cause(ctx), ErrSuperseded) {
		return nil
	}
	fe, permanent := classify(err)
	if !permanent && !last {
		return err // river retries with backoff
	}
	if ferr := s.o.Storage.FailIngest(context.WithoutCancel(ctx), ref, *fe, s.o.Now()); ferr != nil && !errors.Is(ferr, ErrSuperseded) {
		return errors.Join(err, fmt.Errorf("vectorstore: mark failed: %w", ferr))
	}
	s.m.files.WithLabelValues(fe.Code).Inc()
	s.o.Log.WarnContext(ctx, "vector store file failed", slog.String("vector_store_id", ref.StoreID),
		slog.String("file_id", ref.FileID), slog.String("code", fe.Code), slog.Any("err", err))
	return nil
}

// split parses and chunks a file. A parser that panics has met a file it
// cannot read: the file fails for good (a retry would panic again).
func (s *Service) split(ctx context.Context, t *Target) (tcs []TextChunk, err error) {
	defer func() {
		if p := recover(); p != nil {
			s.o.Log.ErrorContext(ctx, "panic parsing a file; it is marked invalid_file", slog.String("file_id", t.FileID),
				slog.Any("err", p), slog.String("stack", string(debug.Stack())))
			tcs, err = nil, &FileError{Code: CodeInvalidFile, Message: "The file could not be read."}
		}
	}()
	text, err := s.o.Parse(ctx, t.Filename, t.Data)
	if err != nil {
		return nil, err
	}
	return s.o.Chunk(text, t.Chunking), nil
}

// prepare parses, chunks and embeds t's file.
func (s *Service) prepare(ctx context.Context, t *Target) ([]Chunk, error) {
	tcs, err := s.split(ctx, t)
	if err != nil {
		return nil, err
	}
	if len(tcs) == 0 {
		return nil, &FileError{Code: CodeInvalidFile, Message: "The file has no text to index."}
	}
	chunks := make([]Chunk, len(tcs))
	for i, c := range tcs {
		chunks[i] = Chunk{Index: c.Index, Content: c.Text, Tokens: c.Tokens}
	}
	ectx := router.WithLedgerRoute(ctx, "ingest")
	who := router.Identity{Team: t.Team, KeyID: t.KeyID}
	g, gctx := errgroup.WithContext(ectx)
	g.SetLimit(embedParallel)
	for lo := 0; lo < len(chunks); lo += embedBatch {
		part := chunks[lo:min(lo+embedBatch, len(chunks))]
		g.Go(func() error {
			texts := make([]string, len(part))
			for i, c := range part {
				texts[i] = c.Content
			}
			vs, _, err := s.o.Embedder.Embed(gctx, who, t.EmbeddingModel, texts)
			if err != nil {
				return err
			}
			if len(vs) != len(part) {
				return fmt.Errorf("vectorstore: embedding service returned %d vectors for %d chunks", len(vs), len(part))
			}
			for i := range part {
				part[i].Embedding = vs[i]
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return chunks, nil
}

// classify says what a failed ingestion's last_error is and whether a
// retry could help.
func classify(err error) (fe *FileError, permanent bool) {
	if errors.As(err, &fe) {
		return fe, true
	}
	var re *router.Error
	if errors.As(err, &re) {
		msg := "Embedding the file failed: " + re.Message
		switch re.Kind {
		case router.KindBudgetExceeded:
			return &FileError{Code: CodeRateLimitExceeded, Message: msg}, true
		case router.KindRateLimited, router.KindUpstreamRateLimited:
			return &FileError{Code: CodeRateLimitExceeded, Message: msg}, false
		case router.KindInvalidRequest, router.KindNotFound, router.KindUnauthorized:
			return &FileError{Code: CodeServerError, Message: msg}, true
		case router.KindInternal:
			return &FileError{Code: CodeServerError, Message: "Embedding the file failed: internal error."}, false
		}
		return &FileError{Code: CodeServerError, Message: msg}, false
	}
	return &FileError{Code: CodeServerError, Message: "The file could not be processed; it was retried and gave up."}, false
}

// heartbeat marks ref alive every HeartbeatEvery until stop, so the
// reconciler can tell a running job from one whose process died. When ref
// was superseded (detached, cancelled, re-queued) it cancels ctx with
// ErrSuperseded: its embeddings are not wanted any more.
func (s *Service) heartbeat(ctx context.Context, ref FileRef, cancel context.CancelCauseFunc) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		defer func() {
			if p := recover(); p != nil {
				s.o.Log.Error("panic in the ingestion heartbeat", slog.Any("err", p))
			}
		}()
		t := time.NewTicker(s.o.HeartbeatEvery)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
			}
			err := s.o.Storage.Heartbeat(ctx, ref, s.o.Now())
			if errors.Is(err, ErrSuperseded) || errors.Is(err, ErrNotFound) {
				cancel(ErrSuperseded)
				return
			}
			if err != nil && ctx.Err() == nil {
				s.o.Log.WarnContext(ctx, "vector store ingestion heartbeat failed", slog.Any("err", err))
			}
		}
	}()
	return func() {
		close(done)
		<-finished
	}
}
