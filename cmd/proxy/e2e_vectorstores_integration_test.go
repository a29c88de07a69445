//go:build integration

package main

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// TestVectorStoresE2EPostgres is TestVectorStoresE2ESQLite on PostgreSQL
// with pgvector, in a schema of its own, once per index kind.
func TestVectorStoresE2EPostgres(t *testing.T) {
	for _, index := range []string{"hnsw", "ivfflat"} {
		t.Run(index, func(t *testing.T) {
			dbURL := testSchema(t, "llmproxy_vs_")
			config := withOtherTeam(vectorConfig("", "\ndatabase:\n  url: \""+dbURL+"\"\n")) + "  index: " + index + "\n"
			e := startE2EWith(t, config)
			runVectorStoresE2E(t, e)
			if err := e.stop(5 * time.Second); err != nil {
				t.Fatalf("shutdown: %v", err)
			}
			routes := ledgerRoutesPG(t, dbURL)
			if routes["ingest"] < 1 || routes["search"] < 1 {
				t.Errorf("ledger routes = %v; want ingest and search rows", routes)
			}
		})
	}
}

// ledgerRoutesPG counts the usage ledger's rows by route.
func ledgerRoutesPG(t *testing.T, dbURL string) map[string]int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	rows, err := c.Query(ctx, `SELECT route, count(*) FROM usage_ledger GROUP BY route`)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for rows.Next() {
		var r string
		var n int
		if err := rows.Scan(&r, &n); err != nil {
			t.Fatal(err)
		}
		out[r] = n
	}
	return out
}

// TestVectorStoresE2ENodePostgres is TestVectorStoresE2ENode on
// PostgreSQL.
func TestVectorStoresE2ENodePostgres(t *testing.T) {
	node, mods := nodeSDK(t)
	dbURL := testSchema(t, "llmproxy_vsnode_")
	runVectorStoresNode(t, node, mods, startE2EWith(t, vectorConfig("", "\ndatabase:\n  url: \""+dbURL+"\"\n")))
}
