package gemini

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"llmproxy/providers/providertest"
)

// fake renders providertest scenarios in Gemini's wire format, replaying
// the transcripts in testdata/ (see testdata/README.md for the doc
// sections each follows).
type fake struct{}

var _ providertest.Fake = fake{}

var transcriptFiles = map[string]string{
	providertest.ReplyText:        "chat_text.json",
	providertest.ReplyStreamText:  "chat_stream_text.sse",
	providertest.ReplyStreamTools: "chat_stream_tools.sse",
}

func (fake) Check(r *http.Request, body []byte, want providertest.Want) error {
	var errs []string
	bad := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }
	method, query := "generateContent", ""
	if want.Stream {
		method, query = "streamGenerateContent", "alt=sse"
	}
	if path := "/v1/v1beta/models/" + want.Model + ":" + method; r.Method != http.MethodPost || r.URL.Path != path || r.URL.RawQuery != query {
		bad("request = %s %s?%s; want POST %s?%s", r.Method, r.URL.Path, r.URL.RawQuery, path, query)
	}
	if got := r.Header.Get("x-goog-api-key"); got != want.APIKey {
		bad("x-goog-api-key = %q; want the key", got)
	}
	if got := r.Header.Get("Authorization"); got != "" {
		bad("Authorization = %q; want none", got)
	}
	var b genRequest
	if err := json.Unmarshal(body, &b); err != nil {
		bad("body is not JSON: %v", err)
	}
	if len(b.Contents) != 1 || b.Contents[0].Role != "user" || len(b.Contents[0].Parts) != 1 || b.Contents[0].Parts[0].Text == "" {
		bad("contents = %+v; want one user text turn", b.Contents)
	}
	if len(b.Tools) != 1 || len(b.Tools[0].FunctionDeclarations) != 1 || b.Tools[0].FunctionDeclarations[0].Name != "get_weather" {
		bad("tools = %+v; want get_weather declared", b.Tools)
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}

func (fake) Reply(name string) (providertest.Transcript, error) {
	tr, raw, err := providertest.ReadTranscript(transcriptFiles, name, modelOf)
	if err != nil {
		return tr, err
	}
	if raw == "" {
		tr.Header = jsonHeader() // Google sends the charset
		return tr, nil
	}
	tr.Header = http.Header{"Content-Type": {"text/event-stream"}}
	var frames []string
	for _, f := range strings.SplitAfter(raw, "\r\n\r\n") {
		if f != "" {
			frames = append(frames, f)
		}
	}
	// The last event (finishReason and final usage) ends the stream: the kit
	// leaves it off to play an upstream that stops early.
	for _, f := range frames[:len(frames)-1] {
		tr.Events = append(tr.Events, []byte(f))
	}
	tr.Done = [][]byte{[]byte(frames[len(frames)-1])}
	tr.Model = modelOf([]byte(strings.TrimPrefix(frames[0], "data: ")))
	return tr, nil
}

// googleStatus is the canonical status Google sends with each HTTP code.
var googleStatus = map[int]string{
	400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
	429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED",
}

// Error renders Google's error body; a 429 carries the RetryInfo detail
// Gemini sends (here 2s, the delay the kit's Retry-After header names).
func (fake) Error(status int, message string) providertest.Transcript {
	e := map[string]any{"code": status, "message": message, "status": googleStatus[status]}
	if status == 429 {
		e["details"] = []any{
			map[string]any{"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": []any{map[string]any{
				"quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests", "quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier"}}},
			map[string]any{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "2s"},
		}
	}
	body, _ := json.Marshal(map[string]any{"error": e})
	return providertest.Transcript{Status: status, Header: jsonHeader(), Body: body}
}

func (fake) ErrorEvent(message string) []byte {
	body, _ := json.Marshal(map[string]any{"error": map[string]any{"code": 500, "message": message, "status": "INTERNAL"}})
	return []byte("data: " + string(body) + "\r\n\r\n")
}

func jsonHeader() http.Header {
	return http.Header{"Content-Type": {"application/json; charset=UTF-8"}}
}

func modelOf(raw []byte) string {
	var m struct {
		ModelVersion string `json:"modelVersion"`
	}
	json.Unmarshal(raw, &m)
	return m.ModelVersion
}
