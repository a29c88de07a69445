package embed

import (
	"context"
	"time"

	"github.com/maypok86/otter/v2"
)

// Cache holds embeddings by key. store/redis implements it for replicas
// that share one cache; NewMemoryCache is the in-process default.
type Cache interface {
	// GetMulti returns the value of each key, nil for a miss, in one
	// round trip (MGET).
	GetMulti(ctx context.Context, keys []string) ([][]byte, error)
	// SetMulti stores items, each expiring after ttl, in one round trip
	// (a pipeline).
	SetMulti(ctx context.Context, items []Item, ttl time.Duration) error
}

// Item is one cache entry to write.
type Item struct {
	Key   string
	Value []byte
}

// MemoryCache is a bounded in-process Cache with expiry (otter).
type MemoryCache struct {
	c *otter.Cache[string, []byte]
}

var _ Cache = (*MemoryCache)(nil)

// NewMemoryCache holds up to maxEntries entries, each for ttl after it was
// written.
func NewMemoryCache(maxEntries int, ttl time.Duration) *MemoryCache {
	return &MemoryCache{c: otter.Must(&otter.Options[string, []byte]{
		MaximumSize:      maxEntries,
		ExpiryCalculator: otter.ExpiryWriting[string, []byte](ttl),
	})}
}

// GetMulti implements Cache.
func (m *MemoryCache) GetMulti(_ context.Context, keys []string) ([][]byte, error) {
	out := make([][]byte, len(keys))
	for i, k := range keys {
		out[i], _ = m.c.GetIfPresent(k)
	}
	return out, nil
}

// SetMulti implements Cache. The ttl is the one given to NewMemoryCache.
func (m *MemoryCache) SetMulti(_ context.Context, items []Item, _ time.Duration) error {
	for _, it := range items {
		m.c.Set(it.Key, it.Value)
	}
	return nil
}

// Close stops the cache's background goroutines.
func (m *MemoryCache) Close() { m.c.StopAllGoroutines() }
