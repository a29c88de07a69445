// Package pgtest gives each integration test a PostgreSQL schema of its
// own in the test database, so tests run in parallel with each other and
// with other users of the same server. store/postgres and cmd/proxy tests
// use it; nothing in the binary does.
package pgtest

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

// DefaultDatabase is the test database when LLMPROXY_TEST_DATABASE is
// unset (what the Makefile and scripts/services.sh set up).
const DefaultDatabase = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// Schema creates a schema named prefix plus a random tag in the test
// database (LLMPROXY_TEST_DATABASE), dropped with everything in it in
// cleanup, and returns a URL whose search_path is it. Without PostgreSQL
// the test skips, or fails under CI.
func Schema(tb testing.TB, prefix string) string {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	base := os.Getenv("LLMPROXY_TEST_DATABASE")
	if base == "" {
		base = DefaultDatabase
	}
	admin, err := pgx.Connect(ctx, base)
	if err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("PostgreSQL at LLMPROXY_TEST_DATABASE is required under CI: %v", err)
		}
		tb.Skipf("no PostgreSQL at LLMPROXY_TEST_DATABASE: %v", err)
	}
	defer admin.Close(ctx)
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := prefix + hex.EncodeToString(b[:])
	if _, err := admin.Exec(ctx, "CREATE SCHEMA "+pgx.Identifier{schema}.Sanitize()); err != nil {
		tb.Fatalf("create schema: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, base)
		if err != nil {
			tb.Errorf("drop schema %s: %v", schema, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP SCHEMA "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
			tb.Errorf("drop schema %s: %v", schema, err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		tb.Fatalf("LLMPROXY_TEST_DATABASE: %v", err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}
