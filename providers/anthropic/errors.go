package anthropic

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"llmproxy/router"
)

// maxErrorBody bounds how much of an error reply we read; Anthropic's are a
// few hundred bytes, and a proxy's HTML page is not worth more.
const maxErrorBody = 64 << 10

// statusOverloaded is Anthropic's "overloaded_error" status
// (API reference > Errors > HTTP errors).
const statusOverloaded = 529

// wireError is Anthropic's error object: {"type":"error","error":{"type",
// "message"},"request_id"} (API reference > Errors > Error shapes).
type wireError struct {
	Type    string `json:"type"`
	Message string `json:"message"`
}

// wireErrorReply marks a 200 body or stream event that is an error object;
// raw is the inner "error" value.
type wireErrorReply struct{ raw []byte }

func (e *wireErrorReply) Error() string { return "upstream sent an error object" }

// statusError turns a non-2xx reply into a *router.Error. This file is the
// only place that reads Anthropic's status codes and error bodies.
func (c *Client) statusError(resp *http.Response) *router.Error {
	status := resp.StatusCode
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	we, reqID, shaped := parseWireError(raw)
	e := &router.Error{Provider: c.name}
	switch {
	case status == http.StatusUnauthorized || status == http.StatusForbidden || status == http.StatusPaymentRequired:
		// authentication_error, permission_error, billing_error: our
		// account, not the client's request, and another deployment may
		// work. The upstream text is dropped.
		e.Kind = router.KindUpstream
		e.Message = fmt.Sprintf("upstream rejected provider %q credentials", c.name)
		e.Err = fmt.Errorf("upstream status %d type=%q request_id=%q", status, we.Type, reqID)
		return e
	case status == http.StatusTooManyRequests:
		e.Kind = router.KindUpstreamRateLimited
		e.Message = fmt.Sprintf("provider %q is rate limited upstream", c.name)
		e.RetryAfter = retryAfter(resp.Header, c.now())
	case status == statusOverloaded:
		e.Kind = router.KindUpstream
		e.Message = fmt.Sprintf("provider %q is overloaded upstream (HTTP 529)", c.name)
		e.RetryAfter = retryAfter(resp.Header, c.now())
	case status == http.StatusGatewayTimeout:
		e.Kind = router.KindUpstreamTimeout
		e.Message = fmt.Sprintf("provider %q timed out upstream (HTTP %d)", c.name, status)
	case status == http.StatusRequestTimeout || status >= 500 || status < 400:
		e.Kind = router.KindUpstream
		e.Message = fmt.Sprintf("provider %q failed upstream (HTTP %d)", c.name, status)
	default:
		// invalid_request_error, not_found_error, request_too_large: the
		// client keeps Anthropic's status and message so it can fix the
		// request.
		e.Kind = router.KindInvalidRequest
		e.Status = status
		e.Message = c.redact(we.Message)
		if e.Message == "" {
			e.Message = http.StatusText(status)
		}
		e.Type = "invalid_request_error"
		if strings.Contains(we.Message, "prompt is too long") {
			// OpenAI's code, so context-window fallbacks see it.
			e.Code = "context_length_exceeded"
		}
	}
	if shaped {
		e.Err = fmt.Errorf("upstream status %d type=%q request_id=%q: %s", status, we.Type, reqID, c.redact(we.Message))
	} else {
		e.Err = fmt.Errorf("upstream status %d with a non-Anthropic body (%d bytes)", status, len(raw))
	}
	return e
}

// eventError turns an error object inside a 200 reply or an "error" stream
// event into a *router.Error. The reply has started, so the kind is always
// KindUpstream; Anthropic's message is what the client sees.
func (c *Client) eventError(raw []byte) *router.Error {
	var we wireError
	_ = json.Unmarshal(raw, &we) // a bad shape leaves the fallback message
	msg := c.redact(we.Message)
	if msg == "" {
		msg = fmt.Sprintf("provider %q reported an error", c.name)
	}
	return &router.Error{Kind: router.KindUpstream, Provider: c.name, Message: msg,
		Err: fmt.Errorf("upstream error event type=%q", we.Type)}
}

func parseWireError(raw []byte) (we wireError, requestID string, ok bool) {
	var body struct {
		Error     *wireError `json:"error"`
		RequestID string     `json:"request_id"`
	}
	if json.Unmarshal(raw, &body) != nil || body.Error == nil {
		return wireError{}, "", false
	}
	return *body.Error, body.RequestID, true
}

// retryAfter reads retry-after-ms and then Retry-After (Anthropic sends
// seconds; an HTTP date is accepted too). It returns 0 when neither parses.
func retryAfter(h http.Header, now time.Time) time.Duration {
	if v := h.Get("Retry-After-Ms"); v != "" {
		if ms, err := strconv.ParseFloat(v, 64); err == nil && ms >= 0 {
			return time.Duration(ms * float64(time.Millisecond))
		}
	}
	v := h.Get("Retry-After")
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseFloat(v, 64); err == nil && s >= 0 {
		return time.Duration(s * float64(time.Second))
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}

// transportError classifies a failed request or body read. cctx is the
// per-call context, whose cause tells our timers and Close apart; parent is
// the caller's.
func (c *Client) transportError(cctx, parent context.Context, err error) *router.Error {
	e := &router.Error{Provider: c.name, Err: c.scrub(err)}
	cause := context.Cause(cctx)
	switch {
	case errors.Is(cause, errFirstToken), errors.Is(cause, errIdle):
		e.Kind = router.KindUpstreamTimeout
		e.Message = fmt.Sprintf("provider %q timed out", c.name)
		if !errors.Is(err, cause) {
			e.Err = fmt.Errorf("%w: %w", cause, e.Err)
		}
	case errors.Is(cause, errClosed):
		e.Kind = router.KindCanceled
		e.Message = "stream closed"
	case errors.Is(parent.Err(), context.Canceled):
		e.Kind = router.KindCanceled
		e.Message = "request canceled"
	case errors.Is(parent.Err(), context.DeadlineExceeded), isTimeout(err):
		e.Kind = router.KindUpstreamTimeout
		e.Message = fmt.Sprintf("provider %q timed out", c.name)
	default:
		e.Kind = router.KindUpstream
		e.Message = fmt.Sprintf("provider %q could not be reached", c.name)
	}
	return e
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func (c *Client) malformed(what string, err error) *router.Error {
	return &router.Error{Kind: router.KindUpstream, Provider: c.name,
		Message: fmt.Sprintf("provider %q sent a malformed %s", c.name, what), Err: c.scrub(err)}
}

// scrub drops the API key from an error's text; the common case keeps the
// original error so errors.Is still works.
func (c *Client) scrub(err error) error {
	if err == nil || c.key == "" || !strings.Contains(err.Error(), c.key) {
		return err
	}
	return errors.New(c.redact(err.Error()))
}

func (c *Client) redact(s string) string {
	if c.key == "" {
		return s
	}
	return strings.ReplaceAll(s, c.key, "[redacted]")
}
