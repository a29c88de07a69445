//go:build integration

package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// TestMemoryE2EPostgres is TestMemoryE2ESQLite on PostgreSQL, in a schema
// of its own: two turns, the items API, then a restart on the same
// database.
func TestMemoryE2EPostgres(t *testing.T) {
	dbURL := memorySchema(t)
	runMemoryE2E(t, memoryConfig("", "\ndatabase:\n  url: \""+dbURL+"\"\n"))
}

// memorySchema creates a schema in the test database, dropped in cleanup,
// and returns a URL whose search_path is it.
func memorySchema(t *testing.T) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	base := envOr("LLMPROXY_TEST_DATABASE", defaultTestDatabase)
	admin, err := pgx.Connect(ctx, base)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("PostgreSQL at LLMPROXY_TEST_DATABASE is required under CI: %v", err)
		}
		t.Skipf("no PostgreSQL at LLMPROXY_TEST_DATABASE: %v", err)
	}
	defer admin.Close(ctx)
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "llmproxy_memory_" + hex.EncodeToString(b[:])
	if _, err := admin.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("LLMPROXY_TEST_DATABASE: %v", err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// TestMemoryRetentionE2EPostgres runs the river retention job on
// PostgreSQL.
func TestMemoryRetentionE2EPostgres(t *testing.T) {
	dbURL := memorySchema(t)
	runRetentionE2E(t, memoryConfig("", "\ndatabase:\n  url: \""+dbURL+"\"\nmemory: {retention: 400ms, cleanup_every: 100ms}\n"))
}
