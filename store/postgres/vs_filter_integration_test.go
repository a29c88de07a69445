//go:build integration

package postgres

import (
	"context"
	"encoding/json"
	"testing"

	"llmproxy/vectorstore"
	"llmproxy/vectorstore/vectorstoretest"
)

// TestFilterSQLMatchesGo: filterSQL means what vectorstore.Filter.Match
// means, on every case of the shared table.
func TestFilterSQLMatchesGo(t *testing.T) {
	t.Parallel()
	db, _ := mustOpenDB(t)
	ctx := context.Background()
	for _, tc := range vectorstoretest.FilterCases {
		f, err := vectorstore.ParseFilter(json.RawMessage(tc.Filter))
		if err != nil {
			t.Fatal(err)
		}
		for _, set := range append(append([]string{}, tc.Pass...), tc.Fail...) {
			var attrs map[string]any
			if err := json.Unmarshal([]byte(set), &attrs); err != nil {
				t.Fatal(err)
			}
			meta, _ := json.Marshal(map[string]any{"attributes": attrs})
			args := []any{string(meta)}
			cond := filterSQL(f, &args)
			var got bool
			if err := db.pool.QueryRow(ctx, `SELECT `+cond+` FROM (SELECT $1::jsonb AS metadata) d`, args...).Scan(&got); err != nil {
				t.Fatalf("%s on %s: %v", tc.Filter, set, err)
			}
			if want := f.Match(attrs); got != want {
				t.Errorf("SQL of %s on %s = %v; Match says %v", tc.Filter, set, got, want)
			}
		}
	}
}
