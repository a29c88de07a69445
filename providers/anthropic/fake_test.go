package anthropic

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"llmproxy/providers/providertest"
)

// fake renders providertest scenarios in Anthropic's wire format, replaying
// the transcripts in testdata/ (see testdata/README.md for the doc section
// each follows).
type fake struct{}

var _ providertest.Fake = fake{}

var transcriptFiles = map[string]string{
	providertest.ReplyText:        "messages_text.json",
	providertest.ReplyStreamText:  "messages_stream_text.sse",
	providertest.ReplyStreamTools: "messages_stream_tools.sse",
}

// Check verifies the request against "API reference > Messages > Create a
// Message" and "Getting started > Authentication / Versions": POST
// /v1/messages, x-api-key, anthropic-version, and a body with model,
// max_tokens and messages.
func (fake) Check(r *http.Request, body []byte, want providertest.Want) error {
	var errs []string
	bad := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }
	if r.Method != http.MethodPost || r.URL.Path != "/v1/messages" {
		bad("request = %s %s; want POST /v1/messages", r.Method, r.URL.Path)
	}
	if got := r.Header.Get("x-api-key"); got != want.APIKey {
		bad("x-api-key = %q; want the key", got)
	}
	if got := r.Header.Get("Authorization"); got != "" {
		bad("Authorization = %q; want none (Anthropic uses x-api-key)", got)
	}
	if got := r.Header.Get("anthropic-version"); got != DefaultAPIVersion {
		bad("anthropic-version = %q; want %q", got, DefaultAPIVersion)
	}
	if got := r.Header.Get("Content-Type"); got != "application/json" {
		bad("Content-Type = %q; want application/json", got)
	}
	if got := r.Header.Get("Accept"); want.Stream && got != "text/event-stream" {
		bad("Accept = %q; want text/event-stream", got)
	}
	var b struct {
		Model     string            `json:"model"`
		Stream    bool              `json:"stream"`
		MaxTokens int               `json:"max_tokens"`
		Messages  []json.RawMessage `json:"messages"`
		Tools     []struct {
			Name        string          `json:"name"`
			InputSchema json.RawMessage `json:"input_schema"`
		} `json:"tools"`
	}
	if err := json.Unmarshal(body, &b); err != nil {
		bad("body is not JSON: %v", err)
	}
	if b.Model != want.Model || b.Stream != want.Stream {
		bad("body model/stream = %q/%v; want %q/%v", b.Model, b.Stream, want.Model, want.Stream)
	}
	if b.MaxTokens <= 0 || len(b.Messages) == 0 {
		bad("body max_tokens = %d, %d messages; want both set", b.MaxTokens, len(b.Messages))
	}
	for _, t := range b.Tools {
		if t.Name == "" || len(t.InputSchema) == 0 {
			bad("tool %q has no input_schema", t.Name)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}

func (fake) Reply(name string) (providertest.Transcript, error) {
	tr, raw, err := providertest.ReadTranscript(transcriptFiles, name, modelOf)
	if err != nil || raw == "" {
		return tr, err
	}
	return sseTranscript(raw), nil
}

// sseTranscript splits a recorded stream into frames. Anthropic ends a
// stream with message_stop and no [DONE], so that last frame is the Done
// frame the kit leaves off to play an upstream that stops early.
func sseTranscript(raw string) providertest.Transcript {
	tr := providertest.Transcript{Header: http.Header{"Content-Type": {"text/event-stream; charset=utf-8"}}}
	for _, frame := range strings.SplitAfter(raw, "\n\n") {
		switch {
		case strings.TrimSpace(frame) == "":
		case strings.HasPrefix(frame, "event: message_stop\n"):
			tr.Done = append(tr.Done, []byte(frame))
		default:
			tr.Events = append(tr.Events, []byte(frame))
			if data, ok := strings.CutPrefix(frame, "event: message_start\ndata: "); ok {
				var ms struct {
					Message struct {
						Model string `json:"model"`
					} `json:"message"`
				}
				json.Unmarshal([]byte(data), &ms)
				tr.Model = ms.Message.Model
			}
		}
	}
	return tr
}

// Error renders Anthropic's error body ("API reference > Errors > HTTP
// errors") with the error type Anthropic uses for each status; 429 replies
// carry retry-after as Anthropic's do ("Rate limits > Response headers").
func (fake) Error(status int, message string) providertest.Transcript {
	typ := map[int]string{400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
		404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error", 500: "api_error", 529: "overloaded_error"}[status]
	if typ == "" {
		typ = "api_error"
	}
	return providertest.Transcript{Status: status, Header: jsonHeader(), Body: errorBody(typ, message)}
}

// ErrorEvent renders a mid-stream error ("Streaming Messages > Error
// events"): the status is already 200, so the error is an SSE event.
func (fake) ErrorEvent(message string) []byte {
	return []byte("event: error\ndata: " + string(errorBody("overloaded_error", message)) + "\n\n")
}

func errorBody(typ, message string) []byte {
	b, _ := json.Marshal(map[string]any{"type": "error", "error": map[string]any{"type": typ, "message": message},
		"request_id": "req_011CSHoEeqs5C35K2UUqR7Fy"})
	return b
}

func jsonHeader() http.Header { return http.Header{"Content-Type": {"application/json"}} }

func modelOf(raw []byte) string {
	var m struct {
		Model string `json:"model"`
	}
	json.Unmarshal(raw, &m)
	return m.Model
}
