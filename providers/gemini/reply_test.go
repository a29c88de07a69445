package gemini

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"llmproxy/providers/sse"
	"llmproxy/router"
)

// replyCases are generateContent replies ("Generating content > Response
// body"); their chat.completion translations are in testdata/reply.golden.
var replyCases = []struct{ name, body string }{
	{"text with thinking and cache", `{"candidates":[{"content":{"parts":[{"text":"Let me think","thought":true},{"text":"Hi "},{"text":"there"}],"role":"model"},"finishReason":"STOP","index":0}],` +
		`"usageMetadata":{"promptTokenCount":100,"candidatesTokenCount":5,"cachedContentTokenCount":64,"thoughtsTokenCount":40,"totalTokenCount":145},"modelVersion":"gemini-2.5-pro","responseId":"r1"}`},
	{"parallel function calls", `{"candidates":[{"content":{"parts":[{"text":"Checking."},{"functionCall":{"name":"get_weather","args":{"location":"Paris"}},"thoughtSignature":"c2ln"},` +
		`{"functionCall":{"name":"get_time"}}],"role":"model"},"finishReason":"STOP","index":0}],"usageMetadata":{"promptTokenCount":10,"candidatesTokenCount":8,"totalTokenCount":18},"modelVersion":"gemini-2.5-flash"}`},
	{"gemini call id kept", `{"candidates":[{"content":{"parts":[{"functionCall":{"id":"fc-77","name":"f","args":{}}}],"role":"model"},"finishReason":"STOP","index":0}],"usageMetadata":{"promptTokenCount":1,"totalTokenCount":1}}`},
	{"two candidates, max tokens and safety", `{"candidates":[{"content":{"parts":[{"text":"Once upon"}],"role":"model"},"finishReason":"MAX_TOKENS","index":0},` +
		`{"finishReason":"SAFETY","index":1,"safetyRatings":[{"category":"HARM_CATEGORY_DANGEROUS_CONTENT","probability":"HIGH","blocked":true}]}],` +
		`"usageMetadata":{"promptTokenCount":7,"candidatesTokenCount":2,"toolUsePromptTokenCount":3,"totalTokenCount":12},"modelVersion":"gemini-2.0-flash"}`},
	{"no usage: estimated", `{"candidates":[{"content":{"parts":[{"text":"Hello world"}],"role":"model"},"finishReason":"STOP","index":0}]}`},
}

func testClient(t testing.TB) *Client {
	t.Helper()
	c, err := New(Config{Name: "gemini", BaseURL: "http://gemini.example", APIKey: "AIza-test-key"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	c.now = func() time.Time { return time.Unix(1750000000, 0) }
	c.newID = func() string { return "fixed" }
	return c
}

func meta() replyMeta {
	return replyMeta{ID: "chatcmpl-fixed", Created: 1750000000, Model: "gemini-2.5-flash"}
}

func TestReplyGolden(t *testing.T) {
	c := testClient(t)
	req := parse(t, `{"model":"m","messages":[{"role":"user","content":"Say hello"}]}`)
	var out strings.Builder
	for _, tc := range replyCases {
		ch, err := c.wholeChunk([]byte(tc.body), meta(), c.estimator(req))
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if !ch.Whole || ch.Usage == nil {
			t.Errorf("%s: Whole=%v Usage=%v; want a whole chunk with usage", tc.name, ch.Whole, ch.Usage)
		}
		if est := strings.HasPrefix(tc.name, "no usage"); ch.Usage.Estimated != est {
			t.Errorf("%s: Usage.Estimated = %v; want %v", tc.name, ch.Usage.Estimated, est)
		}
		out.WriteString("== " + tc.name + "\n" + indent(t, ch.Data) + "\n")
	}
	checkGolden(t, "reply.golden", []byte(out.String()))
}

// decodeAll runs an SSE body through the decoder as the stream does.
func decodeAll(body string, c *Client, req *router.ChatRequest) ([]*router.Chunk, error) {
	d := newDecoder(meta(), c.estimator(req), c.eventError)
	rd := sse.NewReader(strings.NewReader(body))
	var out []*router.Chunk
	for {
		ev, err := rd.Next()
		if err == io.EOF {
			ch, err := d.end()
			if err != nil {
				return out, err
			}
			return append(out, ch), nil
		}
		if err != nil {
			return out, err
		}
		chunks, err := d.event(ev.Data)
		out = append(out, chunks...)
		if err != nil {
			return out, err
		}
	}
}

func TestStreamGolden(t *testing.T) {
	c := testClient(t)
	req := parse(t, `{"model":"m","stream":true,"messages":[{"role":"user","content":"Say hello"}]}`)
	cases := []struct{ name, body string }{
		{"text", string(mustRead(t, "chat_stream_text.sse"))},
		{"parallel tools", string(mustRead(t, "chat_stream_tools.sse"))},
		{"two candidates, no usage (estimated)", "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"A\"}]},\"index\":0},{\"content\":{\"parts\":[{\"text\":\"B\"}]},\"index\":1}]}\n\n" +
			"data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"!\"}]},\"finishReason\":\"STOP\",\"index\":0},{\"finishReason\":\"RECITATION\",\"index\":1}]}\n\n"},
	}
	var out strings.Builder
	for _, tc := range cases {
		chunks, err := decodeAll(tc.body, c, req)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		out.WriteString("== " + tc.name + "\n")
		for i, ch := range chunks {
			last := i == len(chunks)-1
			if ch.UsageOnly != last || (ch.Usage != nil) != last {
				t.Errorf("%s: chunk %d UsageOnly=%v Usage=%v; want only the last to be the usage chunk", tc.name, i, ch.UsageOnly, ch.Usage)
			}
			out.Write(ch.Data)
			out.WriteByte('\n')
		}
		if u := chunks[len(chunks)-1].Usage; strings.Contains(tc.name, "estimated") != u.Estimated {
			t.Errorf("%s: Usage.Estimated = %v", tc.name, u.Estimated)
		}
	}
	checkGolden(t, "stream.golden", []byte(out.String()))
}

func TestStreamEnds(t *testing.T) {
	c := testClient(t)
	req := parse(t, `{"model":"m","stream":true,"messages":[{"role":"user","content":"x"}]}`)
	for _, tc := range []struct {
		name, body string
		kind       router.Kind
		status     int
		msg        string
	}{
		{"no finishReason", "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"A\"}]},\"index\":0}]}\n\n", router.KindUpstream, 502, "closed the stream early"},
		{"empty body", "", router.KindUpstream, 502, "closed the stream early"},
		{"prompt blocked", "data: {\"promptFeedback\":{\"blockReason\":\"PROHIBITED_CONTENT\"},\"usageMetadata\":{\"promptTokenCount\":9}}\n\n", router.KindInvalidRequest, 400,
			"prompt blocked by Gemini safety filters: PROHIBITED_CONTENT"},
		{"error event", "data: {\"error\":{\"code\":503,\"message\":\"The model is overloaded.\",\"status\":\"UNAVAILABLE\"}}\n\n", router.KindUpstream, 502, "The model is overloaded."},
		{"malformed", "data: {\"candidates\":[\n\n", router.KindUpstream, 502, "malformed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := decodeAll(tc.body, c, req)
			e := router.AsError(err)
			if e.Kind != tc.kind || e.StatusCode() != tc.status || !strings.Contains(e.Message, tc.msg) {
				t.Errorf("err = %v (kind %v, status %d); want %v %d containing %q", err, e.Kind, e.StatusCode(), tc.kind, tc.status, tc.msg)
			}
		})
	}
}

func TestPlainPromptBlocked(t *testing.T) {
	c := testClient(t)
	req := parse(t, `{"model":"m","messages":[{"role":"user","content":"x"}]}`)
	_, err := c.wholeChunk([]byte(`{"promptFeedback":{"blockReason":"SAFETY","safetyRatings":[]},"usageMetadata":{"promptTokenCount":4,"totalTokenCount":4}}`), meta(), c.estimator(req))
	e := router.AsError(err)
	if e.Kind != router.KindInvalidRequest || e.StatusCode() != 400 || e.Message != "prompt blocked by Gemini safety filters: SAFETY" || e.Code != "content_filter" {
		t.Errorf("err = %+v; want a 400 KindInvalidRequest naming SAFETY", e)
	}
}

func TestStatusErrors(t *testing.T) {
	c := testClient(t)
	retry := `{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"37s"}`
	for _, tc := range []struct {
		name   string
		status int
		body   string
		header http.Header
		kind   router.Kind
		code   int
		retry  time.Duration
		msg    string // wanted in Message; "" means the upstream text must not appear
	}{
		{"invalid argument", 400, `{"error":{"code":400,"message":"* GenerateContentRequest.contents: contents is not specified","status":"INVALID_ARGUMENT"}}`, nil,
			router.KindInvalidRequest, 400, 0, "contents is not specified"},
		{"bad key is ours", 400, `{"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","status":"INVALID_ARGUMENT",` +
			`"details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID","domain":"googleapis.com"}]}}`, nil, router.KindUpstream, 502, 0, ""},
		{"permission denied", 403, `{"error":{"code":403,"message":"Method doesn't allow unregistered callers","status":"PERMISSION_DENIED"}}`, nil, router.KindUpstream, 502, 0, ""},
		{"unauthenticated", 401, `{"error":{"code":401,"message":"Request had invalid authentication credentials.","status":"UNAUTHENTICATED"}}`, nil, router.KindUpstream, 502, 0, ""},
		{"location", 400, `{"error":{"code":400,"message":"User location is not supported for the API use.","status":"FAILED_PRECONDITION"}}`, nil, router.KindUpstream, 502, 0, ""},
		{"not found", 404, `{"error":{"code":404,"message":"models/gemini-9 is not found for API version v1beta","status":"NOT_FOUND"}}`, nil, router.KindInvalidRequest, 404, 0, "gemini-9"},
		{"rate limited, RetryInfo", 429, `{"error":{"code":429,"message":"You exceeded your current quota","status":"RESOURCE_EXHAUSTED","details":[` + retry + `]}}`,
			http.Header{"Retry-After": {"5"}}, router.KindUpstreamRateLimited, 429, 37 * time.Second, ""},
		{"rate limited, header", 429, `[{"error":{"code":429,"message":"Resource exhausted","status":"RESOURCE_EXHAUSTED"}}]`, http.Header{"Retry-After": {"3"}},
			router.KindUpstreamRateLimited, 429, 3 * time.Second, ""},
		{"internal", 500, `{"error":{"code":500,"message":"An internal error has occurred.","status":"INTERNAL"}}`, nil, router.KindUpstream, 502, 0, ""},
		{"unavailable", 503, `{"error":{"code":503,"message":"The model is overloaded.","status":"UNAVAILABLE"}}`, nil, router.KindUpstream, 502, 0, ""},
		{"deadline", 504, `{"error":{"code":504,"message":"Deadline expired","status":"DEADLINE_EXCEEDED"}}`, nil, router.KindUpstreamTimeout, 504, 0, ""},
		{"html", 502, `<html>bad gateway</html>`, nil, router.KindUpstream, 502, 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := &http.Response{StatusCode: tc.status, Header: tc.header, Body: io.NopCloser(strings.NewReader(tc.body))}
			if resp.Header == nil {
				resp.Header = http.Header{}
			}
			e := c.statusError(resp)
			if e.Kind != tc.kind || e.StatusCode() != tc.code || e.RetryAfter != tc.retry {
				t.Errorf("statusError = %v kind %v status %d retry %v; want %v %d %v", e, e.Kind, e.StatusCode(), e.RetryAfter, tc.kind, tc.code, tc.retry)
			}
			if tc.msg != "" && !strings.Contains(e.Message, tc.msg) {
				t.Errorf("Message = %q; want the upstream's %q", e.Message, tc.msg)
			}
			if tc.msg == "" && e.Kind != router.KindInvalidRequest && strings.Contains(tc.body, e.Message) {
				t.Errorf("Message = %q repeats upstream text", e.Message)
			}
		})
	}
}

func TestContextLengthCode(t *testing.T) {
	c := testClient(t)
	body := `{"error":{"code":400,"message":"The input token count (1200000) exceeds the maximum number of tokens allowed (1048576).","status":"INVALID_ARGUMENT"}}`
	e := c.statusError(&http.Response{StatusCode: 400, Header: http.Header{}, Body: io.NopCloser(strings.NewReader(body))})
	if e.Code != "context_length_exceeded" || e.Kind != router.KindInvalidRequest {
		t.Errorf("err = %+v; want code context_length_exceeded", e)
	}
}

func TestKeyNeverInErrors(t *testing.T) {
	c := testClient(t)
	err := c.transportError(context.Background(), context.Background(), errors.New("dial http://x?key=AIza-test-key: refused"))
	if strings.Contains(err.Error(), "AIza-test-key") {
		t.Errorf("transport error leaks the key: %v", err)
	}
}
