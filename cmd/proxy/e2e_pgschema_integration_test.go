//go:build integration

package main

import (
	"testing"

	"llmproxy/store/postgres/pgtest"
)

// testSchema is a schema of the test's own in the test database
// (pgtest.Schema): its URL, search_path set.
func testSchema(t testing.TB, prefix string) string { return pgtest.Schema(t, prefix) }
