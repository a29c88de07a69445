package anthropic

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	"llmproxy/providers/upstream"
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
		e.RetryAfter = upstream.RetryAfter(resp.Header, c.now())
	case status == statusOverloaded:
		e.Kind = router.KindUpstream
		e.Message = fmt.Sprintf("provider %q is overloaded upstream (HTTP 529)", c.name)
		e.RetryAfter = upstream.RetryAfter(resp.Header, c.now())
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
		e.Message = c.up.Redact(we.Message)
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
		e.Err = fmt.Errorf("upstream status %d type=%q request_id=%q: %s", status, we.Type, reqID, c.up.Redact(we.Message))
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
	msg := c.up.Redact(we.Message)
	if msg == "" {
		msg = fmt.Sprintf("provider %q reported an error", c.name)
	}
	return c.up.RedactError(&router.Error{Kind: router.KindUpstream, Provider: c.name, Message: msg,
		Err: fmt.Errorf("upstream error event type=%q", we.Type)})
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
