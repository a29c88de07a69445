package openai

import (
	"context"
	"io"
	"time"

	"llmproxy/providers/upstream"
	"llmproxy/router"
)

// The names this package's tests were written against, now provided by
// providers/upstream.
var (
	errFirstToken = upstream.ErrFirstToken
	errIdle       = upstream.ErrIdle
	errClosed     = upstream.ErrClosed
)

func newWatchdog(cancel context.CancelCauseFunc) *upstream.Watchdog {
	return upstream.NewWatchdog(cancel)
}

// newStream decodes body for a call whose context the test derived itself.
func newStream(c *Client, ctx, parent context.Context, cancel context.CancelCauseFunc, wd *upstream.Watchdog, body io.ReadCloser, idle time.Duration) *stream {
	return c.stream(c.up.NewCall(ctx, parent, wd), body, idle)
}

func (c *Client) transportError(cctx, parent context.Context, err error) *router.Error {
	return c.up.TransportError(cctx, parent, err)
}
