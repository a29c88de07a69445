//go:build integration

package main

import (
	"testing"
)

// TestMemoryE2EPostgres is TestMemoryE2ESQLite on PostgreSQL, in a schema
// of its own: two turns, the items API, then a restart on the same
// database.
func TestMemoryE2EPostgres(t *testing.T) {
	dbURL := memorySchema(t)
	runMemoryE2E(t, memoryConfig("", "\ndatabase:\n  url: \""+dbURL+"\"\n"))
}

// memorySchema is a schema of the memory test's own (testSchema).
func memorySchema(t *testing.T) string { return testSchema(t, "llmproxy_memory_") }

// TestMemoryRetentionE2EPostgres runs the river retention job on
// PostgreSQL.
func TestMemoryRetentionE2EPostgres(t *testing.T) {
	dbURL := memorySchema(t)
	runRetentionE2E(t, memoryConfig("", "\ndatabase:\n  url: \""+dbURL+"\"\nmemory: {retention: 400ms, cleanup_every: 100ms}\n"))
}
