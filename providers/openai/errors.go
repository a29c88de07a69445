package openai

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"llmproxy/providers/upstream"
	"llmproxy/router"
)

// maxErrorBody bounds how much of an error reply we read; OpenAI's are a
// few hundred bytes, and a proxy's HTML page is not worth more.
const maxErrorBody = 64 << 10

// wireError is OpenAI's error object. Code and Param are raw because
// compatible servers send strings, numbers or null.
type wireError struct {
	Message string          `json:"message"`
	Type    string          `json:"type"`
	Param   json.RawMessage `json:"param"`
	Code    json.RawMessage `json:"code"`
}

// statusError turns a non-2xx reply into a *router.Error. It is the only
// place that reads upstream status codes and error bodies.
func (c *Client) statusError(resp *http.Response) *router.Error {
	status := resp.StatusCode
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	we, shaped := parseWireError(raw)
	e := &router.Error{Provider: c.name}
	switch {
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		// Our credentials, not the client's request. The upstream text is
		// dropped: OpenAI's echoes a masked key.
		e.Kind = router.KindUpstream
		e.Message = fmt.Sprintf("upstream rejected provider %q credentials", c.name)
		e.Err = fmt.Errorf("upstream status %d type=%q code=%q", status, we.Type, rawText(we.Code))
		return e
	case status == http.StatusTooManyRequests:
		e.Kind = router.KindUpstreamRateLimited
		e.Message = fmt.Sprintf("provider %q is rate limited upstream", c.name)
		e.RetryAfter = upstream.RetryAfter(resp.Header, c.now())
	case status == http.StatusGatewayTimeout:
		e.Kind = router.KindUpstreamTimeout
		e.Message = fmt.Sprintf("provider %q timed out upstream (HTTP %d)", c.name, status)
	case status == http.StatusRequestTimeout || status >= 500 || status < 400:
		// 408 is the upstream's own timeout; 5xx and 529 (overloaded) are
		// its failures; 1xx/3xx here mean a misconfigured base_url.
		e.Kind = router.KindUpstream
		e.Message = fmt.Sprintf("provider %q failed upstream (HTTP %d)", c.name, status)
	default:
		// Any other 4xx is about the request: the client sees the
		// upstream's status and message so it can fix it, e.g. 404
		// model_not_found or 400 context_length_exceeded.
		e.Kind = router.KindInvalidRequest
		e.Status = status
		e.Message = c.up.Redact(we.Message)
		if e.Message == "" {
			e.Message = http.StatusText(status)
		}
		e.Type, e.Param, e.Code = we.Type, rawText(we.Param), rawText(we.Code)
	}
	if shaped {
		e.Err = fmt.Errorf("upstream status %d type=%q code=%q: %s", status, we.Type, rawText(we.Code), c.up.Redact(we.Message))
	} else {
		e.Err = fmt.Errorf("upstream status %d with a non-OpenAI body (%d bytes)", status, len(raw))
	}
	return e
}

// eventError turns an "error" object inside a 200 reply or a stream event
// into a *router.Error. The stream has already started, so the kind is
// always KindUpstream; the upstream's message is what the client sees.
func (c *Client) eventError(raw []byte) *router.Error {
	var we wireError
	_ = json.Unmarshal(raw, &we) // a bad shape leaves the fallback message
	msg := c.up.Redact(we.Message)
	if msg == "" {
		msg = fmt.Sprintf("provider %q reported an error", c.name)
	}
	return c.up.RedactError(&router.Error{Kind: router.KindUpstream, Provider: c.name, Message: msg,
		Err: fmt.Errorf("upstream error event type=%q code=%q", we.Type, rawText(we.Code))})
}

func parseWireError(raw []byte) (wireError, bool) {
	var body struct {
		Error *wireError `json:"error"`
	}
	if json.Unmarshal(raw, &body) != nil || body.Error == nil {
		return wireError{}, false
	}
	return *body.Error, true
}

// rawText renders a raw JSON scalar as text: strings unquoted, null empty.
func rawText(raw json.RawMessage) string {
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	return string(raw)
}
