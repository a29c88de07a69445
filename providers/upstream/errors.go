package upstream

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"llmproxy/router"
)

// Cancel causes of the per-call context. The watchdog sets the first two;
// ErrClosed is the cause when we end an attempt ourselves, so a late read
// error is not mistaken for a client cancel or a timeout.
var (
	ErrFirstToken = errors.New("upstream: no first event within the first-token timeout")
	ErrIdle       = errors.New("upstream: silent for longer than the idle timeout")
	ErrClosed     = errors.New("upstream: stream closed")
)

// TransportError classifies a failed request or body read. cctx is the
// per-call context, whose cause tells our timers and Close apart; parent is
// the caller's.
func (c *Client) TransportError(cctx, parent context.Context, err error) *router.Error {
	e := &router.Error{Provider: c.Name, Err: c.Scrub(err)}
	cause := context.Cause(cctx)
	switch {
	case errors.Is(cause, ErrFirstToken), errors.Is(cause, ErrIdle):
		e.Kind = router.KindUpstreamTimeout
		e.Message = fmt.Sprintf("provider %q timed out", c.Name)
		if !errors.Is(err, cause) { // net/http may already return the cause
			e.Err = fmt.Errorf("%w: %w", cause, e.Err)
		}
	case errors.Is(cause, ErrClosed):
		e.Kind, e.Message = router.KindCanceled, "stream closed"
	case errors.Is(parent.Err(), context.Canceled):
		e.Kind, e.Message = router.KindCanceled, "request canceled"
	case errors.Is(parent.Err(), context.DeadlineExceeded), isTimeout(err):
		// The caller's deadline, or the transport's dial/header timeout.
		e.Kind = router.KindUpstreamTimeout
		e.Message = fmt.Sprintf("provider %q timed out", c.Name)
	default:
		e.Kind = router.KindUpstream
		e.Message = fmt.Sprintf("provider %q could not be reached", c.Name)
	}
	return e
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// Malformed is the error for a reply or event the vendor decoder could not
// read; what names it ("reply", "stream event", "usage").
func (c *Client) Malformed(what string, err error) *router.Error {
	return &router.Error{Kind: router.KindUpstream, Provider: c.Name,
		Message: fmt.Sprintf("provider %q sent a malformed %s", c.Name, what), Err: c.Scrub(err)}
}

// MissingKey is the error for a provider that needs an API key and has
// none: it fails without a call, and the router moves on without a retry
// (router.ErrNotConfigured).
func (c *Client) MissingKey() *router.Error {
	return &router.Error{Kind: router.KindUpstream, Provider: c.Name,
		Message: fmt.Sprintf("provider %q has no API key configured", c.Name), Err: router.ErrNotConfigured}
}

// Scrub drops every configured secret from an error's text (a key pasted
// into a base URL's query would otherwise reach the logs through
// *url.Error). The common case keeps the original error so errors.Is
// still works.
func (c *Client) Scrub(err error) error { return c.redactor().Err(err) }

// Redact replaces every form of every configured secret in s, for
// upstream text that may echo one.
func (c *Client) Redact(s string) string { return c.redactor().String(s) }

// RedactError redacts every field of an upstream error that can carry
// upstream text (Message, Type, Param, Code, Err) and returns it. Post,
// Reply and Stream apply it to every error a vendor's Status or Decoder
// returns, so a vendor cannot forget a field.
func (c *Client) RedactError(e *router.Error) *router.Error { return c.redactor().Error(e) }

// redactError is RedactError for an error that may not be a *router.Error.
func (c *Client) redactError(err error) error {
	if e, ok := err.(*router.Error); ok {
		return c.RedactError(e)
	}
	return c.Scrub(err)
}

// redactor is the Client's Redactor, or one built on the spot from Key
// and Headers for a Client that was filled without it (slower, as
// correct).
func (c *Client) redactor() *Redactor {
	if c.Redactor != nil {
		return c.Redactor
	}
	return NewRedactor(c.Key, c.Headers, "")
}

// MaxRetryAfter is the longest wait RetryAfter reports. The router caps
// what it honours lower (router.Options.MaxCooldown, default 5m); this
// bound only keeps absurd values ("Retry-After: 1e300", a date in 2100)
// from overflowing a time.Duration on the way there.
const MaxRetryAfter = 24 * time.Hour

// RetryAfter reads retry-after-ms (OpenAI's and Anthropic's, in
// milliseconds) and then Retry-After, in seconds or as an HTTP date: the
// order the official SDKs use. It returns 0 when neither parses, and at
// most MaxRetryAfter. An HTTP date is measured from the reply's own Date
// header when it has one, so a skewed upstream clock does not stretch or
// cancel the wait; a date in the past means no wait.
func RetryAfter(h http.Header, now time.Time) time.Duration {
	if v := h.Get("Retry-After-Ms"); v != "" {
		if ms, err := strconv.ParseFloat(v, 64); err == nil && ms >= 0 {
			return capWait(ms / 1e3)
		}
	}
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseFloat(v, 64); err == nil && s >= 0 {
		return capWait(s)
	}
	if t, err := http.ParseTime(v); err == nil {
		if d, err := http.ParseTime(h.Get("Date")); err == nil {
			now = d
		}
		if d := t.Sub(now); d > 0 {
			return min(d, MaxRetryAfter)
		}
	}
	return 0
}

// capWait converts seconds to a Duration in [0, MaxRetryAfter]; NaN and
// infinities never reach the conversion, whose result would be undefined.
func capWait(secs float64) time.Duration {
	switch {
	case math.IsNaN(secs) || secs <= 0:
		return 0
	case secs >= MaxRetryAfter.Seconds():
		return MaxRetryAfter
	}
	return time.Duration(secs * float64(time.Second))
}
