package anthropic

import (
	"context"
	"io"
	"time"

	"llmproxy/providers/upstream"
)

// The names this package's tests were written against, now provided by
// providers/upstream.

func newWatchdog(cancel context.CancelCauseFunc) *upstream.Watchdog {
	return upstream.NewWatchdog(cancel)
}

// streamConfig is a stream over a body and a call context the test derived
// itself.
type streamConfig struct {
	c        *Client
	ctx      context.Context
	parent   context.Context
	cancel   context.CancelCauseFunc // canceled through wd
	wd       *upstream.Watchdog
	body     io.ReadCloser
	idle     time.Duration
	jsonTool bool
}

func newStream(cfg streamConfig) *stream {
	return cfg.c.stream(cfg.c.up.NewCall(cfg.ctx, cfg.parent, cfg.wd), cfg.body, cfg.idle, cfg.jsonTool)
}
