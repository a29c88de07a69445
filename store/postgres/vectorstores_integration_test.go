//go:build integration

package postgres

import (
	"context"
	"testing"

	"llmproxy/vectorstore/vectorstoretest"
)

func mustVectorDB(t *testing.T, kind string) *VectorDB {
	t.Helper()
	db, _ := mustOpenDB(t)
	v, err := db.VectorStores(context.Background(), kind)
	if err != nil {
		t.Fatalf("VectorStores: %v", err)
	}
	return v
}

func TestVectorStoresHNSW(t *testing.T) {
	t.Parallel()
	vectorstoretest.Run(t, mustVectorDB(t, IndexHNSW))
}

func TestVectorStoresIVFFlat(t *testing.T) {
	t.Parallel()
	vectorstoretest.Run(t, mustVectorDB(t, IndexIVFFlat))
}
