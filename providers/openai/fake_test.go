package openai

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"llmproxy/providers/providertest"
)

// fake renders providertest scenarios in OpenAI's wire format, replaying
// the transcripts in testdata/ (see testdata/README.md).
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
	if r.Method != http.MethodPost || r.URL.Path != "/v1/chat/completions" {
		bad("request = %s %s; want POST /v1/chat/completions", r.Method, r.URL.Path)
	}
	if got := r.Header.Get("Authorization"); got != "Bearer "+want.APIKey {
		bad("Authorization = %q; want the bearer key", got)
	}
	if got := r.Header.Get("Content-Type"); got != "application/json" {
		bad("Content-Type = %q; want application/json", got)
	}
	if got := r.Header.Get("Accept"); want.Stream && got != "text/event-stream" {
		bad("Accept = %q; want text/event-stream", got)
	}
	var b struct {
		Model         string `json:"model"`
		Stream        bool   `json:"stream"`
		StreamOptions *struct {
			IncludeUsage bool `json:"include_usage"`
		} `json:"stream_options"`
	}
	if err := json.Unmarshal(body, &b); err != nil {
		bad("body is not JSON: %v", err)
	}
	if b.Model != want.Model || b.Stream != want.Stream {
		bad("body model/stream = %q/%v; want %q/%v", b.Model, b.Stream, want.Model, want.Stream)
	}
	// The transcripts carry the usage chunk, which OpenAI sends only when
	// asked: the adapter must ask.
	if want.Stream && (b.StreamOptions == nil || !b.StreamOptions.IncludeUsage) {
		bad("stream request without stream_options.include_usage")
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
	tr.Header = http.Header{"Content-Type": {"text/event-stream; charset=utf-8"}}
	for _, frame := range strings.SplitAfter(raw, "\n\n") {
		switch {
		case frame == "":
		case frame == "data: [DONE]\n\n":
			tr.Done = append(tr.Done, []byte(frame))
		default:
			tr.Events = append(tr.Events, []byte(frame))
			if tr.Model == "" {
				tr.Model = modelOf([]byte(strings.TrimPrefix(frame, "data: ")))
			}
		}
	}
	return tr, nil
}

// Error renders OpenAI's error body with the type and code OpenAI uses for
// each status.
func (fake) Error(status int, message string) providertest.Transcript {
	typ, code := "invalid_request_error", any(nil)
	switch {
	case status == 401:
		code = "invalid_api_key"
	case status == 429:
		typ, code = "requests", "rate_limit_exceeded"
	case status >= 500:
		typ = "server_error"
	}
	body, _ := json.Marshal(map[string]any{"error": map[string]any{"message": message, "type": typ, "param": nil, "code": code}})
	return providertest.Transcript{Status: status, Header: jsonHeader(), Body: body}
}

func (fake) ErrorEvent(message string) []byte {
	body, _ := json.Marshal(map[string]any{"error": map[string]any{"message": message, "type": "server_error", "param": nil, "code": nil}})
	return []byte("data: " + string(body) + "\n\n")
}

func jsonHeader() http.Header { return http.Header{"Content-Type": {"application/json"}} }

func modelOf(raw []byte) string {
	var m struct {
		Model string `json:"model"`
	}
	json.Unmarshal(bytes.TrimSpace(raw), &m)
	return m.Model
}
