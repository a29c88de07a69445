package gemini

import (
	"context"

	"llmproxy/router"
)

// transportError is the name this package's tests were written against,
// now provided by providers/upstream.
func (c *Client) transportError(cctx, parent context.Context, err error) *router.Error {
	return c.up.TransportError(cctx, parent, err)
}
