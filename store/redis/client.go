// Package redis is llmproxy's shared state in Redis: budget reservations,
// rate limits and router cooldowns, so that any number of replicas behave
// as one. Keys carry a hash tag ({...}) so each script touches one slot and
// stays Redis Cluster safe.
package redis

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/extra/redisotel/v9"
	goredis "github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/trace"
)

// Client is a connection pool plus the key prefix every key starts with.
type Client struct {
	rdb    *goredis.Client
	prefix string
}

// Options configure a Client.
type Options struct {
	// URL is redis://host:port/db (its query may set go-redis options).
	URL string
	// Prefix namespaces every key (tests give each test its own and
	// delete it afterwards).
	Prefix string
	// PoolSize, when positive, is the connection pool's size.
	PoolSize int
	// Timeout, when positive, is the socket read and write timeout.
	Timeout time.Duration
	// TracerProvider, when set, traces each command and pipeline
	// (redisotel) without its arguments: keys name teams and scripts carry
	// amounts, neither is worth a span. Nil traces nothing.
	TracerProvider trace.TracerProvider
}

// New connects to o.URL.
func New(o Options) (*Client, error) {
	opt, err := goredis.ParseURL(o.URL)
	if err != nil {
		return nil, fmt.Errorf("redis url: %w", err)
	}
	if o.PoolSize > 0 {
		opt.PoolSize = o.PoolSize
	}
	if o.Timeout > 0 {
		opt.ReadTimeout, opt.WriteTimeout = o.Timeout, o.Timeout
	}
	rdb := goredis.NewClient(opt)
	if o.TracerProvider != nil {
		if err := redisotel.InstrumentTracing(rdb, redisotel.WithTracerProvider(o.TracerProvider),
			redisotel.WithDBStatement(false), redisotel.WithCallerEnabled(false)); err != nil {
			rdb.Close()
			return nil, fmt.Errorf("redis tracing: %w", err)
		}
	}
	return &Client{rdb: rdb, prefix: o.Prefix}, nil
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
