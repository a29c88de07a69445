package sqlite

import (
	"context"
	"path/filepath"
	"testing"

	"llmproxy/memory/memorytest"
)

func openTemp(tb testing.TB) *DB {
	tb.Helper()
	db, err := OpenFile(context.Background(), filepath.Join(tb.TempDir(), "m.db"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

func TestConversations(t *testing.T) { memorytest.Run(t, openTemp(t)) }

// BenchmarkMemoryTurn: go test -run '^$' -bench MemoryTurn -benchtime 300x ./store/sqlite/
func BenchmarkMemoryTurn(b *testing.B) { memorytest.Bench(b, openTemp(b)) }
