package gemini

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"llmproxy/providers/upstream"
	"llmproxy/router"
)

// maxErrorBody bounds how much of an error reply is read.
const maxErrorBody = 64 << 10

// googleError is Google's error object, {"error":{"code","message",
// "status","details"}} ("Gemini API > Troubleshooting > Error codes"; the
// shape is google.rpc.Status).
type googleError struct {
	Code    int               `json:"code"`
	Message string            `json:"message"`
	Status  string            `json:"status"`
	Details []json.RawMessage `json:"details"`
}

// parseGoogleError reads an error body. Google wraps it in an array when
// the request was a stream without alt=sse; both forms are accepted.
func parseGoogleError(raw []byte) (googleError, bool) {
	type body struct {
		Error *googleError `json:"error"`
	}
	var b body
	if json.Unmarshal(raw, &b) != nil || b.Error == nil {
		var list []body
		if json.Unmarshal(raw, &list) != nil || len(list) == 0 || list[0].Error == nil {
			return googleError{}, false
		}
		b = list[0]
	}
	return *b.Error, true
}

// statusError turns a non-2xx reply into a *router.Error.
func (c *Client) statusError(resp *http.Response) *router.Error {
	status := resp.StatusCode
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	ge, shaped := parseGoogleError(raw)
	e := &router.Error{Provider: c.name}
	if shaped {
		e.Err = fmt.Errorf("upstream status %d %s reason=%q: %s", status, ge.Status, reason(ge), c.up.Redact(ge.Message))
	} else {
		e.Err = fmt.Errorf("upstream status %d with a non-Google body (%d bytes)", status, len(raw))
	}
	switch {
	case status == http.StatusUnauthorized || status == http.StatusForbidden ||
		(status == http.StatusBadRequest && strings.HasPrefix(reason(ge), "API_KEY_")):
		// Our credentials, not the client's request: Gemini answers a bad
		// key with 400 INVALID_ARGUMENT reason API_KEY_INVALID.
		e.Kind = router.KindUpstream
		e.Message = fmt.Sprintf("upstream rejected provider %q credentials", c.name)
	case status == http.StatusTooManyRequests:
		e.Kind = router.KindUpstreamRateLimited
		e.Message = fmt.Sprintf("provider %q is rate limited upstream", c.name)
		if e.RetryAfter = retryDelay(ge); e.RetryAfter == 0 {
			e.RetryAfter = upstream.RetryAfter(resp.Header, c.now())
		}
	case status == http.StatusGatewayTimeout:
		e.Kind = router.KindUpstreamTimeout
		e.Message = fmt.Sprintf("provider %q timed out upstream (HTTP %d)", c.name, status)
	case status == http.StatusBadRequest && ge.Status == "FAILED_PRECONDITION":
		// "User location is not supported", billing not enabled: this
		// provider cannot serve anyone, another deployment might.
		e.Kind = router.KindUpstream
		e.Message = fmt.Sprintf("provider %q cannot serve requests (%s)", c.name, ge.Status)
	case status == http.StatusRequestTimeout || status >= 500 || status < 400:
		e.Kind = router.KindUpstream
		e.Message = fmt.Sprintf("provider %q failed upstream (HTTP %d)", c.name, status)
	default:
		// INVALID_ARGUMENT, NOT_FOUND and other 4xx are about the request:
		// the client sees Google's status and message to fix it.
		e.Kind = router.KindInvalidRequest
		e.Status = status
		e.Message = c.up.Redact(ge.Message)
		if e.Message == "" {
			e.Message = http.StatusText(status)
		}
		e.Code = strings.ToLower(ge.Status)
		if strings.Contains(ge.Message, "exceeds the maximum number of tokens") {
			// OpenAI's code for it, which context-window fallbacks key on.
			e.Code = "context_length_exceeded"
		}
	}
	return e
}

// eventError is an error event inside a 200 stream. Bytes may already
// have reached the client, so it is always KindUpstream.
func (c *Client) eventError(ge *googleError) error {
	msg := c.up.Redact(ge.Message)
	if msg == "" {
		msg = fmt.Sprintf("provider %q reported an error", c.name)
	}
	return c.up.RedactError(&router.Error{Kind: router.KindUpstream, Provider: c.name, Message: msg,
		Err: fmt.Errorf("upstream error event %d %s", ge.Code, ge.Status)})
}

// blocked is the error for a prompt Gemini refused to answer at all
// (promptFeedback.blockReason with no candidates). It is the request's
// fault, and retrying it elsewhere would be refused the same way.
func blocked(reason string) *router.Error {
	return &router.Error{Kind: router.KindInvalidRequest, Code: "content_filter", Param: "messages",
		Message: "prompt blocked by Gemini safety filters: " + reason}
}

// detail is the part of a google.rpc detail the mapping reads.
type detail struct {
	Type       string `json:"@type"`
	RetryDelay string `json:"retryDelay"` // google.rpc.RetryInfo, e.g. "37s"
	Reason     string `json:"reason"`     // google.rpc.ErrorInfo
}

func details(ge googleError) []detail {
	out := make([]detail, 0, len(ge.Details))
	for _, raw := range ge.Details {
		var d detail
		if json.Unmarshal(raw, &d) == nil {
			out = append(out, d)
		}
	}
	return out
}

// retryDelay reads google.rpc.RetryInfo, a Duration in JSON form ("37s",
// "1.5s").
func retryDelay(ge googleError) time.Duration {
	for _, d := range details(ge) {
		if strings.HasSuffix(d.Type, "google.rpc.RetryInfo") {
			if v, err := time.ParseDuration(d.RetryDelay); err == nil && v > 0 {
				return min(v, upstream.MaxRetryAfter)
			}
		}
	}
	return 0
}

func reason(ge googleError) string {
	for _, d := range details(ge) {
		if strings.HasSuffix(d.Type, "google.rpc.ErrorInfo") {
			return d.Reason
		}
	}
	return ""
}
