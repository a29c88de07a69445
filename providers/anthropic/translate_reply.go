package anthropic

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"llmproxy/router"
)

// msgResponse is a Messages reply (API reference > Messages > Create a
// Message > Response) or, with Type "error", an error object.
type msgResponse struct {
	Type       string          `json:"type"`
	ID         string          `json:"id"`
	Model      string          `json:"model"`
	Content    []replyBlock    `json:"content"`
	StopReason string          `json:"stop_reason"`
	Usage      wireUsage       `json:"usage"`
	Error      json.RawMessage `json:"error"`
}

type replyBlock struct {
	Type  string          `json:"type"`
	Text  string          `json:"text"`
	ID    string          `json:"id"`
	Name  string          `json:"name"`
	Input json.RawMessage `json:"input"`
}

// wireUsage is Anthropic's usage object. Fields are pointers because a
// stream's message_delta carries only the counts that changed.
type wireUsage struct {
	InputTokens              *int `json:"input_tokens"`
	OutputTokens             *int `json:"output_tokens"`
	CacheCreationInputTokens *int `json:"cache_creation_input_tokens"`
	CacheReadInputTokens     *int `json:"cache_read_input_tokens"`
}

// merge overlays the counts set in later (message_delta usage is
// cumulative, so a later value replaces an earlier one).
func (u *wireUsage) merge(later wireUsage) {
	for _, f := range []struct{ dst, src **int }{
		{&u.InputTokens, &later.InputTokens},
		{&u.OutputTokens, &later.OutputTokens},
		{&u.CacheCreationInputTokens, &later.CacheCreationInputTokens},
		{&u.CacheReadInputTokens, &later.CacheReadInputTokens},
	} {
		if *f.src != nil {
			*f.dst = *f.src
		}
	}
}

// usage converts to OpenAI's counting: Anthropic's input_tokens excludes
// cached input, so prompt_tokens adds cache reads and cache writes back,
// and cached_tokens is the cache reads.
//
// Each count is clamped to [0, router.MaxUsageTokens] before the sums, so
// a negative or absurd count cannot lower the bill or overflow it.
func (u wireUsage) usage() *router.Usage {
	clamped := false
	v := func(p *int) int {
		if p == nil {
			return 0
		}
		n, bad := router.ClampCount(*p)
		clamped = clamped || bad
		return n
	}
	prompt := v(u.InputTokens) + v(u.CacheReadInputTokens) + v(u.CacheCreationInputTokens)
	out := v(u.OutputTokens)
	r := &router.Usage{PromptTokens: prompt, CompletionTokens: out, TotalTokens: prompt + out, CachedTokens: v(u.CacheReadInputTokens)}
	r.Clamp()
	r.Clamped = r.Clamped || clamped
	return r
}

// usageJSON is OpenAI's usage object.
type usageJSON struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
	PromptDetails    struct {
		CachedTokens int `json:"cached_tokens"`
	} `json:"prompt_tokens_details"`
}

func openaiUsage(u *router.Usage) *usageJSON {
	out := &usageJSON{PromptTokens: u.PromptTokens, CompletionTokens: u.CompletionTokens, TotalTokens: u.TotalTokens}
	out.PromptDetails.CachedTokens = u.CachedTokens
	return out
}

// finishReason maps stop_reason (Messages > Handling stop reasons). A
// tool_use stop of the response_format tool is a plain stop.
func finishReason(stop string, jsonTool bool) string {
	switch stop {
	case "max_tokens", "model_context_window_exceeded":
		return "length"
	case "tool_use":
		if jsonTool {
			return "stop"
		}
		return "tool_calls"
	case "refusal":
		return "content_filter"
	default: // end_turn, stop_sequence, pause_turn
		return "stop"
	}
}

// completionID is the OpenAI id of a reply: Anthropic's message id, so a
// request can still be traced with Anthropic support.
func completionID(msgID string) string { return "chatcmpl-" + msgID }

type completionJSON struct {
	ID      string       `json:"id"`
	Object  string       `json:"object"`
	Created int64        `json:"created"`
	Model   string       `json:"model"`
	Choices []choiceJSON `json:"choices"`
	Usage   *usageJSON   `json:"usage"`
}

type choiceJSON struct {
	Index        int         `json:"index"`
	Message      messageJSON `json:"message"`
	Logprobs     *struct{}   `json:"logprobs"`
	FinishReason string      `json:"finish_reason"`
}

type messageJSON struct {
	Role      string         `json:"role"`
	Content   *string        `json:"content"`
	Refusal   *string        `json:"refusal"`
	ToolCalls []toolCallJSON `json:"tool_calls,omitempty"`
}

type toolCallJSON struct {
	Index    *int         `json:"index,omitempty"` // stream deltas only
	ID       string       `json:"id,omitempty"`
	Type     string       `json:"type,omitempty"`
	Function functionJSON `json:"function"`
}

type functionJSON struct {
	Name      string `json:"name,omitempty"`
	Arguments string `json:"arguments"`
}

// errNoReply is returned for a 200 body that is neither a message nor an
// error object.
var errNoReply = errors.New("not a Messages reply")

// translateResponse turns a Messages reply into an OpenAI chat.completion
// body. Text blocks are joined, tool_use blocks become tool_calls (the
// response_format tool's input becomes the content), and thinking or
// server-tool blocks are dropped. An error object yields *wireErrorReply.
func translateResponse(body []byte, jsonTool bool, now time.Time) ([]byte, *router.Usage, string, error) {
	var r msgResponse
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, nil, "", err
	}
	if r.Type == "error" || (len(r.Error) > 0 && r.Error[0] == '{') {
		return nil, nil, "", &wireErrorReply{raw: r.Error}
	}
	if r.Type != "message" || r.ID == "" {
		return nil, nil, "", errNoReply
	}
	var text strings.Builder
	var calls []toolCallJSON
	for _, b := range r.Content {
		switch b.Type {
		case "text":
			text.WriteString(b.Text)
		case "tool_use":
			args := compactObject(b.Input)
			if jsonTool && b.Name == jsonToolName {
				text.WriteString(args)
				continue
			}
			calls = append(calls, toolCallJSON{ID: b.ID, Type: "function", Function: functionJSON{Name: b.Name, Arguments: args}})
		}
	}
	msg := messageJSON{Role: "assistant", ToolCalls: calls}
	// OpenAI sends content null when the message is only tool calls.
	if text.Len() > 0 || len(calls) == 0 {
		s := text.String()
		msg.Content = &s
	}
	u := r.Usage.usage()
	out := completionJSON{ID: completionID(r.ID), Object: "chat.completion", Created: now.Unix(), Model: r.Model,
		Choices: []choiceJSON{{Message: msg, FinishReason: finishReason(r.StopReason, jsonTool)}},
		Usage:   openaiUsage(u)}
	b, err := marshal(out)
	return b, u, r.Model, err
}

// compactObject renders a tool_use input as OpenAI arguments text.
func compactObject(raw json.RawMessage) string {
	if len(raw) == 0 || string(raw) == "null" {
		return "{}"
	}
	var buf bytes.Buffer
	if json.Compact(&buf, raw) != nil {
		return "{}"
	}
	return buf.String()
}
