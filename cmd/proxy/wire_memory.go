package main

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"llmproxy/budget"
	"llmproxy/memory"
	"llmproxy/router"
)

// headerConversation names the conversation a chat request continues
// ("new" starts one); the response header of the same name names the one
// used.
const headerConversation = "x-llmproxy-conversation"

// buildMemory returns conversation memory on the usage database (SQLite
// or PostgreSQL, connected in the background like the ledger) and starts
// its retention sweep; stop ends the sweep.
func buildMemory(cfg *Config, log *slog.Logger, reg prometheus.Registerer, db *usageStore) (m *memory.Memory, stop func(context.Context) error, err error) {
	windows := make(map[string]int, len(cfg.Models))
	for _, mc := range cfg.Models {
		windows[mc.Name] = mc.ContextWindow
	}
	counter := budget.NewCounter()
	m, err = memory.New(memory.Options{
		Store:            memoryStore{u: db},
		Count:            counter.Text,
		ContextWindow:    func(alias string) int { return windows[alias] },
		MaxHistoryTokens: cfg.Memory.MaxHistoryTokens,
		Log:              log,
	})
	if err != nil {
		return nil, nil, err
	}
	deleted := prometheus.NewCounter(prometheus.CounterOpts{Name: "llmproxy_memory_conversations_deleted_total",
		Help: "Conversations the retention sweep deleted (idle longer than memory.retention)."})
	reg.MustRegister(deleted)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		m.RunRetention(ctx, cfg.Memory.Retention.Std(), cfg.Memory.CleanupEvery.Std(), func(n int64) { deleted.Add(float64(n)) })
	})
	return m, func(context.Context) error { cancel(); wg.Wait(); return nil }, nil
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
