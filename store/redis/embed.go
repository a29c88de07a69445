package redis

import (
	"context"
	"fmt"
	"time"

	"llmproxy/embed"
)

// EmbedCache is the embeddings cache in Redis, shared by every replica:
// one MGET per lookup and one pipelined SET ... EX per reply's misses.
// Keys are independent (no hash tag): an MGET of them needs a single
// node, not Redis Cluster.
type EmbedCache struct {
	c *Client
}

var _ embed.Cache = (*EmbedCache)(nil)

// EmbedCache returns the embeddings cache on c.
func (c *Client) EmbedCache() *EmbedCache { return &EmbedCache{c: c} }

// GetMulti implements embed.Cache.
func (e *EmbedCache) GetMulti(ctx context.Context, keys []string) ([][]byte, error) {
	full := make([]string, len(keys))
	for i, k := range keys {
		full[i] = e.c.key("emb", k)
	}
	vals, err := e.c.rdb.MGet(ctx, full...).Result()
	if err != nil {
		return nil, fmt.Errorf("embeddings cache: %w", err)
	}
	out := make([][]byte, len(keys))
	for i, v := range vals {
		if s, ok := v.(string); ok {
			out[i] = []byte(s)
		}
	}
	return out, nil
}

// SetMulti implements embed.Cache.
func (e *EmbedCache) SetMulti(ctx context.Context, items []embed.Item, ttl time.Duration) error {
	if len(items) == 0 {
		return nil
	}
	pipe := e.c.rdb.Pipeline()
	for _, it := range items {
		pipe.Set(ctx, e.c.key("emb", it.Key), it.Value, ttl)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("embeddings cache: %w", err)
	}
	return nil
}
