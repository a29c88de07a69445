package azure

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"llmproxy/providers/providertest"
)

// fake renders providertest scenarios in Azure OpenAI's wire format,
// replaying the transcripts in testdata/ (see testdata/README.md).
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
	path := "/v1/openai/deployments/" + want.Model + "/chat/completions"
	if r.Method != http.MethodPost || r.URL.Path != path || r.URL.Query().Get("api-version") != DefaultAPIVersion {
		bad("request = %s %s; want POST %s?api-version=%s", r.Method, r.URL, path, DefaultAPIVersion)
	}
	if got := r.Header.Get("api-key"); got != want.APIKey {
		bad("api-key = %q; want the key", got)
	}
	if got := r.Header.Get("Authorization"); got != "" {
		bad("Authorization = %q; want none (Azure keys go in api-key)", got)
	}
	var b struct {
		Stream        bool `json:"stream"`
		StreamOptions *struct {
			IncludeUsage bool `json:"include_usage"`
		} `json:"stream_options"`
	}
	if err := json.Unmarshal(body, &b); err != nil {
		bad("body is not JSON: %v", err)
	}
	if b.Stream != want.Stream {
		bad("body stream = %v; want %v", b.Stream, want.Stream)
	}
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

// Error renders Azure's error body: OpenAI's shape, with Azure's codes.
func (fake) Error(status int, message string) providertest.Transcript {
	var e map[string]any
	switch {
	case status == 401:
		e = map[string]any{"code": "401", "message": message}
	case status == 429:
		e = map[string]any{"code": "429", "message": message}
	case status >= 500:
		e = map[string]any{"message": message, "type": "server_error", "param": nil, "code": nil}
	default:
		e = map[string]any{"message": message, "type": "invalid_request_error", "param": nil, "code": nil}
	}
	body, _ := json.Marshal(map[string]any{"error": e})
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
