package redis

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"llmproxy/router"
)

// Cooldowns is the shared router.Cooldowns: a 429 cooldown or an open
// breaker on one replica benches the deployment on every replica at once.
//
// Each cooldown is a key {cd}:<deployment> holding "<reason>|<until unix
// ms>" that expires with the cooldown, so a replica that starts later
// still learns it, plus a message on the {cd}:events channel so running
// replicas learn it without polling. Get reads only the in-process copy:
// the hot path never waits on Redis.
type Cooldowns struct {
	c     *Client
	local *router.MemoryCooldowns
	ps    *goredis.PubSub
}

var _ router.Cooldowns = (*Cooldowns)(nil)

// Cooldowns subscribes to cooldown events and loads the cooldowns already
// set. The caller runs Run to apply events and calls Close when done.
func (c *Client) Cooldowns(ctx context.Context) (*Cooldowns, error) {
	cd := &Cooldowns{c: c, local: router.NewMemoryCooldowns()}
	cd.ps = c.rdb.Subscribe(ctx, cd.channel())
	if _, err := cd.ps.Receive(ctx); err != nil { // the subscription is confirmed
		cd.ps.Close()
		return nil, err
	}
	if err := cd.load(ctx); err != nil {
		cd.ps.Close()
		return nil, err
	}
	return cd, nil
}

func (cd *Cooldowns) channel() string        { return cd.c.key("{cd}", "events") }
func (cd *Cooldowns) keyFor(d string) string { return cd.c.key("{cd}", "d", d) }

// load copies every live cooldown key into the local view.
func (cd *Cooldowns) load(ctx context.Context) error {
	prefix := cd.keyFor("")
	iter := cd.c.rdb.Scan(ctx, 0, prefix+"*", 256).Iterator()
	for iter.Next(ctx) {
		v, err := cd.c.rdb.Get(ctx, iter.Val()).Result()
		if errors.Is(err, goredis.Nil) {
			continue
		}
		if err != nil {
			return err
		}
		if c, ok := decodeCooldown(v); ok {
			_ = cd.local.Set(ctx, strings.TrimPrefix(iter.Val(), prefix), c)
		}
	}
	return iter.Err()
}

// Get returns the deployment's cooldown from the in-process view.
func (cd *Cooldowns) Get(deployment string) router.Cooldown { return cd.local.Get(deployment) }

// Set records c locally first (so this replica honours it even if Redis
// is down), then in Redis with an expiry, then tells the other replicas.
// A zero Until clears the cooldown everywhere. Until is rounded up to the
// millisecond, the precision the other replicas receive, so every replica
// holds the same instant whether or not this one has seen its own event.
func (cd *Cooldowns) Set(ctx context.Context, deployment string, c router.Cooldown) error {
	if !c.Until.IsZero() {
		c.Until = time.UnixMilli((c.Until.UnixNano() + int64(time.Millisecond) - 1) / int64(time.Millisecond))
	}
	_ = cd.local.Set(ctx, deployment, c)
	msg := deployment + "\n" + encodeCooldown(c)
	pipe := cd.c.rdb.TxPipeline()
	if ttl := time.Until(c.Until); c.Until.IsZero() || ttl <= 0 {
		pipe.Del(ctx, cd.keyFor(deployment))
	} else {
		pipe.Set(ctx, cd.keyFor(deployment), encodeCooldown(c), ttl)
	}
	pipe.Publish(ctx, cd.channel(), msg)
	_, err := pipe.Exec(ctx)
	return err
}

// Run applies other replicas' events until ctx ends. It recovers from a
// panic so that a bad message cannot take the process down.
func (cd *Cooldowns) Run(ctx context.Context) {
	defer func() { _ = recover() }()
	ch := cd.ps.Channel()
	for {
		select {
		case <-ctx.Done():
			return
		case m, ok := <-ch:
			if !ok {
				return
			}
			dep, v, found := strings.Cut(m.Payload, "\n")
			if c, ok := decodeCooldown(v); found && ok {
				_ = cd.local.Set(ctx, dep, c)
			}
		}
	}
}

// Close ends the subscription.
func (cd *Cooldowns) Close() error { return cd.ps.Close() }

func encodeCooldown(c router.Cooldown) string {
	if c.Until.IsZero() {
		return c.Reason + "|0"
	}
	return c.Reason + "|" + strconv.FormatInt(c.Until.UnixMilli(), 10)
}

func decodeCooldown(v string) (router.Cooldown, bool) {
	reason, ms, ok := strings.Cut(v, "|")
	n, err := strconv.ParseInt(ms, 10, 64)
	if !ok || err != nil {
		return router.Cooldown{}, false
	}
	if n == 0 {
		return router.Cooldown{Reason: reason}, true
	}
	return router.Cooldown{Reason: reason, Until: time.UnixMilli(n)}, true
}
