package telemetry

import (
	"bytes"
	"encoding/json"
)

// The opt-in content attributes (CaptureContent) follow the conventions'
// message shape: [{"role", "parts": [{"type": "text", "content"}, ...]}].
// Parts that are not text or tool calls (images, audio, files) are
// recorded by type only: their data is not worth a span's size.

type message struct {
	Role         string `json:"role"`
	Parts        []part `json:"parts"`
	FinishReason string `json:"finish_reason,omitempty"`
}

type part struct {
	Type      string          `json:"type"`
	Content   string          `json:"content,omitempty"`
	ID        string          `json:"id,omitempty"`
	Name      string          `json:"name,omitempty"`
	Arguments json.RawMessage `json:"arguments,omitempty"`
	Response  string          `json:"response,omitempty"`
}

// chatMessage is the part of an OpenAI chat message the capture reads.
type chatMessage struct {
	Role       string          `json:"role"`
	Content    json.RawMessage `json:"content"`
	ToolCallID string          `json:"tool_call_id"`
	ToolCalls  []struct {
		ID       string `json:"id"`
		Function struct {
			Name      string `json:"name"`
			Arguments string `json:"arguments"`
		} `json:"function"`
	} `json:"tool_calls"`
}

// inputMessages renders a chat body's messages for gen_ai.input.messages;
// "[]" when the body has none that decode.
func inputMessages(body []byte) string {
	var req struct {
		Messages []chatMessage `json:"messages"`
	}
	_ = json.Unmarshal(body, &req)
	out := make([]message, 0, len(req.Messages))
	for _, m := range req.Messages {
		msg := message{Role: m.Role, Parts: []part{}}
		text, parts := contentParts(m.Content)
		if m.Role == "tool" {
			msg.Parts = append(msg.Parts, part{Type: "tool_call_response", ID: m.ToolCallID, Response: text})
		} else {
			msg.Parts = append(msg.Parts, parts...)
		}
		for _, tc := range m.ToolCalls {
			args := json.RawMessage(tc.Function.Arguments)
			if !json.Valid(args) {
				args, _ = json.Marshal(tc.Function.Arguments)
			}
			msg.Parts = append(msg.Parts, part{Type: "tool_call", ID: tc.ID, Name: tc.Function.Name, Arguments: args})
		}
		out = append(out, msg)
	}
	b, _ := json.Marshal(out)
	return string(b)
}

// contentParts turns a message's content (a string or an array of typed
// parts) into parts, and returns its text.
func contentParts(raw json.RawMessage) (string, []part) {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		if s == "" {
			return "", nil
		}
		return s, []part{{Type: "text", Content: s}}
	}
	var arr []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	if json.Unmarshal(raw, &arr) != nil {
		return "", nil
	}
	var all bytes.Buffer
	parts := make([]part, 0, len(arr))
	for _, p := range arr {
		if p.Type == "text" {
			parts = append(parts, part{Type: "text", Content: p.Text})
			all.WriteString(p.Text)
			continue
		}
		parts = append(parts, part{Type: p.Type})
	}
	return all.String(), parts
}

// outputMessages renders each choice's text for gen_ai.output.messages.
func outputMessages(out []bytes.Buffer, finish []string) string {
	msgs := make([]message, 0, len(out))
	for i := range out {
		m := message{Role: "assistant", Parts: []part{{Type: "text", Content: out[i].String()}}}
		if i < len(finish) {
			m.FinishReason = finish[i]
		}
		msgs = append(msgs, m)
	}
	b, _ := json.Marshal(msgs)
	return string(b)
}
