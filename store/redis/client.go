// Package redis is llmproxy's shared state in Redis: budget reservations,
// rate limits and router cooldowns, so that any number of replicas behave
// as one. Keys carry a hash tag ({...}) so each script touches one slot and
// stays Redis Cluster safe.
package redis

import (
	"context"
	"fmt"

	goredis "github.com/redis/go-redis/v9"
)

// Client is a connection pool plus the key prefix every key starts with.
type Client struct {
	rdb    *goredis.Client
	prefix string
}

// New connects to url (redis://host:port/db). prefix namespaces every key
// (tests give each test its own and delete it afterwards).
func New(url, prefix string) (*Client, error) {
	opt, err := goredis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("redis url: %w", err)
	}
	return &Client{rdb: goredis.NewClient(opt), prefix: prefix}, nil
}

// Ping reports whether Redis answers (a /ready check).
func (c *Client) Ping(ctx context.Context) error { return c.rdb.Ping(ctx).Err() }

// Close closes the pool.
func (c *Client) Close() error { return c.rdb.Close() }

// key builds a prefixed key.
func (c *Client) key(parts ...string) string {
	k := c.prefix
	for _, p := range parts {
		k += ":" + p
	}
	return k
}
