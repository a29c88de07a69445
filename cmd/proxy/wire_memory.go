package main

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"

	"llmproxy/budget"
	"llmproxy/memory"
	"llmproxy/router"
)

// headerConversation names the conversation a chat request continues
// ("new" starts one); the response header of the same name names the one
// used.
const headerConversation = "x-llmproxy-conversation"

// buildMemory returns conversation memory on the usage database (SQLite
// or PostgreSQL, connected in the background like the ledger) and its
// retention job, which runs on the process's river client (wire_jobs.go).
func buildMemory(cfg *Config, log *slog.Logger, reg prometheus.Registerer, db *usageStore) (*memory.Memory, jobPart, error) {
	windows := make(map[string]int, len(cfg.Models))
	for _, mc := range cfg.Models {
		windows[mc.Name] = mc.ContextWindow
	}
	counter := budget.NewCounter()
	m, err := memory.New(memory.Options{
		Store:            memoryStore{u: db},
		Count:            counter.Text,
		ContextWindow:    func(alias string) int { return windows[alias] },
		MaxHistoryTokens: cfg.Memory.MaxHistoryTokens,
		Log:              log,
		Registerer:       reg,
	})
	if err != nil {
		return nil, jobPart{}, err
	}
	deleted := prometheus.NewCounter(prometheus.CounterOpts{Name: "llmproxy_memory_conversations_deleted_total",
		Help: "Conversations the retention sweep deleted (idle longer than memory.retention)."})
	reg.MustRegister(deleted)
	retention, every := cfg.Memory.Retention.Std(), cfg.Memory.CleanupEvery.Std()
	part := jobPart{every: every, add: func(_ context.Context, _ dbStore, w *river.Workers) ([]*river.PeriodicJob, error) {
		return []*river.PeriodicJob{m.AddRetentionJob(w, retention, every, func(n int64) { deleted.Add(float64(n)) })}, nil
	}}
	return m, part, nil
}

// minLevel drops records below min.
type minLevel struct {
	slog.Handler
	min slog.Level
}

func (h minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}

// Handle drops river's complaints that its own context was cancelled
// and logs its errors as warnings (see below):
// they come from stopping the client at shutdown (an insert notification
// in flight), which is no failure an operator must act on.
func (h minLevel) Handle(ctx context.Context, r slog.Record) error {
	canceled := false
	r.Attrs(func(a slog.Attr) bool {
		if e, ok := a.Value.Any().(error); ok && errors.Is(e, context.Canceled) {
			canceled = true
			return false
		}
		if a.Value.Kind() == slog.KindString && a.Key == "err" && a.Value.String() == context.Canceled.Error() {
			canceled = true
			return false
		}
		return true
	})
	if canceled {
		return nil
	}
	if r.Level >= slog.LevelError {
		// River retries what it reports here by itself (its LISTEN
		// connection lost in a database blip, a job retried): degraded,
		// not an operator's action. A retention sweep that fails for good
		// is logged by our own job.
		r.Level = slog.LevelWarn
	}
	return h.Handler.Handle(ctx, r)
}

func (h minLevel) WithAttrs(as []slog.Attr) slog.Handler {
	return minLevel{Handler: h.Handler.WithAttrs(as), min: h.min}
}

func (h minLevel) WithGroup(name string) slog.Handler {
	return minLevel{Handler: h.Handler.WithGroup(name), min: h.min}
}

// memoryStore is the usage database as a memory.Store: until it is
// connected, conversations answer 503.
type memoryStore struct{ u *usageStore }

var _ memory.Store = memoryStore{}

var errMemoryUnavailable = &router.Error{Kind: router.KindNoProvider,
	Message: "Conversation storage is unavailable; retry later."}

func (s memoryStore) db() (memory.Store, error) {
	if st, ok := s.u.current().(memory.Store); ok {
		return st, nil
	}
	return nil, errMemoryUnavailable
}

func (s memoryStore) CreateConversation(ctx context.Context, c *memory.Conversation, items []memory.Message) error {
	db, err := s.db()
	if err != nil {
		return err
	}
	return db.CreateConversation(ctx, c, items)
}

func (s memoryStore) LoadHistory(ctx context.Context, team, id string) (*memory.Conversation, []memory.Message, error) {
	db, err := s.db()
	if err != nil {
		return nil, nil, err
	}
	return db.LoadHistory(ctx, team, id)
}

func (s memoryStore) AppendMessages(ctx context.Context, team, id string, msgs []memory.Message, at time.Time) error {
	db, err := s.db()
	if err != nil {
		return err
	}
	return db.AppendMessages(ctx, team, id, msgs, at)
}

func (s memoryStore) GetConversation(ctx context.Context, team, id string) (*memory.Conversation, error) {
	db, err := s.db()
	if err != nil {
		return nil, err
	}
	return db.GetConversation(ctx, team, id)
}

func (s memoryStore) UpdateConversation(ctx context.Context, team, id string, md map[string]string, at time.Time) (*memory.Conversation, error) {
	db, err := s.db()
	if err != nil {
		return nil, err
	}
	return db.UpdateConversation(ctx, team, id, md, at)
}

func (s memoryStore) DeleteConversation(ctx context.Context, team, id string) error {
	db, err := s.db()
	if err != nil {
		return err
	}
	return db.DeleteConversation(ctx, team, id)
}

func (s memoryStore) ListConversations(ctx context.Context, team string, p memory.Page) ([]memory.Conversation, error) {
	db, err := s.db()
	if err != nil {
		return nil, err
	}
	return db.ListConversations(ctx, team, p)
}

func (s memoryStore) ListMessages(ctx context.Context, team, id string, p memory.Page) ([]memory.Message, error) {
	db, err := s.db()
	if err != nil {
		return nil, err
	}
	return db.ListMessages(ctx, team, id, p)
}

func (s memoryStore) GetMessage(ctx context.Context, team, id, msgID string) (*memory.Message, error) {
	db, err := s.db()
	if err != nil {
		return nil, err
	}
	return db.GetMessage(ctx, team, id, msgID)
}

func (s memoryStore) DeleteMessage(ctx context.Context, team, id, msgID string) error {
	db, err := s.db()
	if err != nil {
		return err
	}
	return db.DeleteMessage(ctx, team, id, msgID)
}

func (s memoryStore) DeleteIdle(ctx context.Context, before time.Time) (int64, error) {
	db, err := s.db()
	if err != nil {
		return 0, err
	}
	return db.DeleteIdle(ctx, before)
}
