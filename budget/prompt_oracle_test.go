package budget

// The struct-based prompt count that exactPrompt replaced (issue 15): an
// oracle for it. It decodes the body with encoding/json into the shape of
// the prompt and counts with tiktoken-go's Count, as tokens.go did before.

import (
	"encoding/json"
	"strings"

	"github.com/tiktoken-go/tokenizer"
)

func oldCountWith(cd tokenizer.Codec, s string) int {
	if s == "" {
		return 0
	}
	if cd != nil {
		if n, err := cd.Count(s); err == nil {
			return n
		}
	}
	return (len(s) + 3) / 4 // about four bytes per token for English
}

// oldPayloadTokens is payloadTokens on a decoded string.
func oldPayloadTokens(s string) int {
	if rest, ok := strings.CutPrefix(s, "data:"); ok {
		if _, data, found := strings.Cut(rest, ","); found {
			s = data
		}
	}
	return base64Tokens(len(s))
}

// oldPromptShape is the part of a chat body that costs prompt tokens.
type oldPromptShape struct {
	Messages       []oldPromptMessage `json:"messages"`
	Tools          []json.RawMessage  `json:"tools"`
	Functions      []json.RawMessage  `json:"functions"`
	ResponseFormat struct {
		Type string `json:"type"`
	} `json:"response_format"`
}

type oldPromptMessage struct {
	Role       string          `json:"role"`
	Content    json.RawMessage `json:"content"`
	Name       string          `json:"name"`
	ToolCalls  []oldPromptCall `json:"tool_calls"`
	ToolCallID string          `json:"tool_call_id"`
}

type oldPromptCall struct {
	Function struct {
		Name      string `json:"name"`
		Arguments string `json:"arguments"`
	} `json:"function"`
}

type oldContentPart struct {
	Type     string `json:"type"`
	Text     string `json:"text"`
	Refusal  string `json:"refusal"`
	ImageURL struct {
		Detail string `json:"detail"`
	} `json:"image_url"`
	File struct {
		FileData string `json:"file_data"`
		Filename string `json:"filename"`
	} `json:"file"`
	InputAudio struct {
		Data string `json:"data"`
	} `json:"input_audio"`
}

func oldExactPrompt(cd tokenizer.Codec, body []byte) int {
	var p oldPromptShape
	if err := json.Unmarshal(body, &p); err != nil {
		return (len(body) + 3) / 4
	}
	n := tokensReplyPrimer
	for _, m := range p.Messages {
		n += tokensPerMessage + oldCountWith(cd, m.Role)
		if m.Name != "" {
			n += tokensPerName + oldCountWith(cd, m.Name)
		}
		t, _ := oldContentTokens(cd, m.Content)
		n += t
		for _, tc := range m.ToolCalls {
			n += tokensPerToolCall + oldCountWith(cd, tc.Function.Name) + oldCountWith(cd, tc.Function.Arguments)
		}
		if m.ToolCallID != "" {
			n += oldCountWith(cd, m.ToolCallID)
		}
	}
	defs := append(p.Tools, p.Functions...)
	if len(defs) > 0 {
		n += tokensToolsPreamble
		for _, d := range defs {
			// The JSON of a definition is a slight overestimate of the
			// TypeScript-like text OpenAI renders it into: fine for a
			// reservation that is settled to the real count.
			n += tokensPerTool + oldCountWith(cd, string(d))
		}
	}
	return n
}

// oldContentTokens counts a message's content and reports image parts.
func oldContentTokens(cd tokenizer.Codec, raw json.RawMessage) (n int, image bool) {
	if len(raw) == 0 || string(raw) == "null" {
		return 0, false
	}
	if raw[0] == '"' {
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return oldCountWith(cd, s), false
		}
		return (len(raw) + 3) / 4, false
	}
	var parts []oldContentPart
	if json.Unmarshal(raw, &parts) != nil {
		return (len(raw) + 3) / 4, false
	}
	for _, p := range parts {
		switch p.Type {
		case "text":
			n += oldCountWith(cd, p.Text)
		case "refusal":
			n += oldCountWith(cd, p.Refusal)
		case "image_url", "input_image":
			image = true
			if p.ImageURL.Detail == "low" {
				n += ImageTokensLow
			} else {
				n += ImageTokens
			}
		case "file":
			if p.File.FileData == "" {
				n += FileRefTokens
			} else {
				n += oldPayloadTokens(p.File.FileData)
			}
			n += oldCountWith(cd, p.File.Filename)
		case "input_audio":
			n += oldPayloadTokens(p.InputAudio.Data)
		default: // unknown part types: a flat cost rather than nothing
			n += ImageTokens
		}
	}
	return n, image
}
