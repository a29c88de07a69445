//go:build integration

package postgres

import (
	"testing"

	"llmproxy/memory/memorytest"
)

func TestConversations(t *testing.T) {
	db, _ := mustOpenDB(t)
	memorytest.Run(t, db)
}

// BenchmarkMemoryTurn: go test -tags integration -run '^$' -bench MemoryTurn -benchtime 300x ./store/postgres/
func BenchmarkMemoryTurn(b *testing.B) {
	db, _ := mustOpenDB(b)
	memorytest.Bench(b, db)
}
