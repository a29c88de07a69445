package openai

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"llmproxy/router"
)

const secretKey = "sk-live-0123456789"

func testClient(t *testing.T) *Client {
	t.Helper()
	c, err := New(Config{Name: "oa", BaseURL: "https://upstream.example/v1", APIKey: secretKey}, nil)
	if err != nil {
		t.Fatal(err)
	}
	c.now = func() time.Time { return time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC) }
	return c
}

func reply(status int, header http.Header, body string) *http.Response {
	if header == nil {
		header = http.Header{}
	}
	return &http.Response{StatusCode: status, Header: header, Body: io.NopCloser(strings.NewReader(body))}
}

func openaiErr(msg, typ, param, code string) string {
	q := func(s string) string {
		if s == "" {
			return "null"
		}
		return fmt.Sprintf("%q", s)
	}
	return fmt.Sprintf(`{"error":{"message":%q,"type":%q,"param":%s,"code":%s}}`, msg, typ, q(param), q(code))
}

func TestStatusError(t *testing.T) {
	for _, tc := range []struct {
		name       string
		status     int
		header     http.Header
		body       string
		kind       router.Kind
		httpStatus int
		msg        string // substring of Message
		typ, param string
		code       string
		retry      time.Duration
	}{
		{name: "400 keeps upstream fields", status: 400,
			body: openaiErr("This model's maximum context length is 128000 tokens.", "invalid_request_error", "messages", "context_length_exceeded"),
			kind: router.KindInvalidRequest, httpStatus: 400, msg: "maximum context length", typ: "invalid_request_error", param: "messages", code: "context_length_exceeded"},
		{name: "404 model_not_found stays 404", status: 404,
			body: openaiErr("The model `gpt-9` does not exist or you do not have access to it.", "invalid_request_error", "", "model_not_found"),
			kind: router.KindInvalidRequest, httpStatus: 404, msg: "gpt-9", typ: "invalid_request_error", code: "model_not_found"},
		{name: "409", status: 409, body: openaiErr("conflict", "invalid_request_error", "", ""), kind: router.KindInvalidRequest, httpStatus: 409, msg: "conflict", typ: "invalid_request_error"},
		{name: "413 non-JSON body", status: 413, body: "<html>too large</html>", kind: router.KindInvalidRequest, httpStatus: 413, msg: "Request Entity Too Large"},
		{name: "422 numeric code", status: 422, body: `{"error":{"message":"bad","type":"BadRequestError","param":null,"code":422}}`,
			kind: router.KindInvalidRequest, httpStatus: 422, msg: "bad", typ: "BadRequestError", code: "422"},
		{name: "401 hides upstream text", status: 401,
			body: openaiErr("Incorrect API key provided: "+secretKey+".", "invalid_request_error", "", "invalid_api_key"),
			kind: router.KindUpstream, httpStatus: 502, msg: `upstream rejected provider "oa" credentials`},
		{name: "403", status: 403, body: openaiErr("Project does not have access", "invalid_request_error", "", ""), kind: router.KindUpstream, httpStatus: 502, msg: "credentials"},
		{name: "429 retry-after-ms wins", status: 429, header: http.Header{"Retry-After-Ms": {"1500"}, "Retry-After": {"9"}},
			body: openaiErr("Rate limit reached", "requests", "", "rate_limit_exceeded"), kind: router.KindUpstreamRateLimited, httpStatus: 429, retry: 1500 * time.Millisecond},
		{name: "429 seconds", status: 429, header: http.Header{"Retry-After": {"7"}}, kind: router.KindUpstreamRateLimited, httpStatus: 429, retry: 7 * time.Second},
		{name: "429 http date", status: 429, header: http.Header{"Retry-After": {"Sat, 01 Mar 2025 12:00:30 GMT"}}, kind: router.KindUpstreamRateLimited, httpStatus: 429, retry: 30 * time.Second},
		{name: "429 garbage", status: 429, header: http.Header{"Retry-After": {"soon"}}, kind: router.KindUpstreamRateLimited, httpStatus: 429},
		{name: "408", status: 408, kind: router.KindUpstream, httpStatus: 502},
		{name: "500", status: 500, body: openaiErr("The server had an error", "server_error", "", ""), kind: router.KindUpstream, httpStatus: 502, msg: "HTTP 500"},
		{name: "503", status: 503, kind: router.KindUpstream, httpStatus: 502},
		{name: "529 overloaded", status: 529, kind: router.KindUpstream, httpStatus: 502},
		{name: "504", status: 504, kind: router.KindUpstreamTimeout, httpStatus: 504},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := testClient(t).statusError(reply(tc.status, tc.header, tc.body))
			if e.Kind != tc.kind || e.StatusCode() != tc.httpStatus {
				t.Fatalf("kind/status = %v/%d; want %v/%d (%v)", e.Kind, e.StatusCode(), tc.kind, tc.httpStatus, e)
			}
			if !strings.Contains(e.Message, tc.msg) {
				t.Errorf("Message = %q; want it to contain %q", e.Message, tc.msg)
			}
			if e.Type != tc.typ || e.Param != tc.param || e.Code != tc.code {
				t.Errorf("type/param/code = %q/%q/%q; want %q/%q/%q", e.Type, e.Param, e.Code, tc.typ, tc.param, tc.code)
			}
			if e.RetryAfter != tc.retry {
				t.Errorf("RetryAfter = %v; want %v", e.RetryAfter, tc.retry)
			}
			if strings.Contains(e.Error(), secretKey) {
				t.Errorf("Error() leaks the key: %q", e.Error())
			}
			if e.Provider != "oa" || e.Err == nil {
				t.Errorf("Provider/Err = %q/%v; want oa and a cause", e.Provider, e.Err)
			}
		})
	}
}

func TestEventError(t *testing.T) {
	c := testClient(t)
	e := c.eventError([]byte(`{"message":"The server had an error while processing your request.","type":"server_error","param":null,"code":null}`))
	if e.Kind != router.KindUpstream || e.Message != "The server had an error while processing your request." {
		t.Errorf("eventError = %v/%q; want KindUpstream with the upstream message", e.Kind, e.Message)
	}
	if e := c.eventError([]byte(`{"oops":1}`)); e.Message == "" {
		t.Errorf("eventError of a bad shape has no message")
	}
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "net/http: timeout awaiting response headers" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

func TestTransportError(t *testing.T) {
	c := testClient(t)
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	deadline, cancel2 := context.WithTimeout(context.Background(), -time.Second)
	defer cancel2()
	withCause := func(parent context.Context, cause error) context.Context {
		ctx, cancel := context.WithCancelCause(parent)
		cancel(cause)
		return ctx
	}
	bg := context.Background()
	for _, tc := range []struct {
		name        string
		cctx, pctx  context.Context
		err         error
		kind        router.Kind
		notContains string
	}{
		{name: "idle timer", cctx: withCause(bg, errIdle), pctx: bg, err: context.Canceled, kind: router.KindUpstreamTimeout},
		{name: "first-token timer", cctx: withCause(bg, errFirstToken), pctx: bg, err: errFirstToken, kind: router.KindUpstreamTimeout},
		{name: "client left", cctx: withCause(canceled, nil), pctx: canceled, err: context.Canceled, kind: router.KindCanceled},
		{name: "caller deadline", cctx: deadline, pctx: deadline, err: context.DeadlineExceeded, kind: router.KindUpstreamTimeout},
		{name: "closed by us", cctx: withCause(bg, errClosed), pctx: bg, err: errors.New("read on closed body"), kind: router.KindCanceled},
		{name: "header timeout", cctx: bg, pctx: bg, err: timeoutErr{}, kind: router.KindUpstreamTimeout},
		{name: "refused, key scrubbed", cctx: bg, pctx: bg, err: errors.New(`Post "https://x/v1?key=` + secretKey + `": connection refused`),
			kind: router.KindUpstream, notContains: secretKey},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := c.transportError(tc.cctx, tc.pctx, tc.err)
			if e.Kind != tc.kind {
				t.Errorf("kind = %v (%v); want %v", e.Kind, e, tc.kind)
			}
			if tc.notContains != "" && strings.Contains(e.Error(), tc.notContains) {
				t.Errorf("Error() = %q leaks %q", e.Error(), tc.notContains)
			}
		})
	}
}
