package anthropic

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"llmproxy/router"
)

// jsonToolName is the tool a response_format request is answered through
// when the client sent no tools of its own (see doc.go).
const jsonToolName = "json_response"

// requestOptions are the inputs of translateRequest besides the body.
type requestOptions struct {
	Model            string // upstream model
	Stream           bool
	MaxTokens        int // the client's max_completion_tokens or max_tokens; 0 if absent
	DefaultMaxTokens int
}

// translated is an Anthropic request and what decoding its reply needs.
type translated struct {
	Body []byte
	// JSONTool reports that response_format is served by the forced
	// jsonToolName tool, whose input becomes the reply's content.
	JSONTool bool
}

// The OpenAI request members translateRequest reads. Everything else is
// dropped (see doc.go for the list).
type oaRequest struct {
	Messages          []oaMessage     `json:"messages"`
	Temperature       json.RawMessage `json:"temperature"`
	TopP              json.RawMessage `json:"top_p"`
	Stop              json.RawMessage `json:"stop"`
	N                 *int            `json:"n"`
	Tools             []oaTool        `json:"tools"`
	ToolChoice        json.RawMessage `json:"tool_choice"`
	ParallelToolCalls *bool           `json:"parallel_tool_calls"`
	ResponseFormat    *oaFormat       `json:"response_format"`
	User              string          `json:"user"`
	SafetyIdentifier  string          `json:"safety_identifier"`
	Functions         json.RawMessage `json:"functions"`
}

type oaMessage struct {
	Role       string          `json:"role"`
	Content    json.RawMessage `json:"content"`
	ToolCalls  []oaToolCall    `json:"tool_calls"`
	ToolCallID string          `json:"tool_call_id"`
}

type oaToolCall struct {
	ID       string `json:"id"`
	Type     string `json:"type"`
	Function struct {
		Name      string `json:"name"`
		Arguments string `json:"arguments"`
	} `json:"function"`
}

type oaPart struct {
	Type     string `json:"type"`
	Text     string `json:"text"`
	Refusal  string `json:"refusal"`
	ImageURL *struct {
		URL string `json:"url"`
	} `json:"image_url"`
	File *struct {
		FileData string `json:"file_data"`
	} `json:"file"`
}

type oaTool struct {
	Type     string `json:"type"`
	Function *struct {
		Name        string          `json:"name"`
		Description string          `json:"description"`
		Parameters  json.RawMessage `json:"parameters"`
	} `json:"function"`
}

type oaFormat struct {
	Type       string `json:"type"`
	JSONSchema *struct {
		Name        string          `json:"name"`
		Description string          `json:"description"`
		Schema      json.RawMessage `json:"schema"`
	} `json:"json_schema"`
}

// Anthropic Messages request (API reference > Messages > Create a Message).
type msgRequest struct {
	Model         string          `json:"model"`
	MaxTokens     int             `json:"max_tokens"`
	System        []block         `json:"system,omitempty"`
	Messages      []message       `json:"messages"`
	Tools         []tool          `json:"tools,omitempty"`
	ToolChoice    *toolChoice     `json:"tool_choice,omitempty"`
	StopSequences []string        `json:"stop_sequences,omitempty"`
	Temperature   json.RawMessage `json:"temperature,omitempty"`
	TopP          json.RawMessage `json:"top_p,omitempty"`
	Metadata      *metadata       `json:"metadata,omitempty"`
	Stream        bool            `json:"stream,omitempty"`
}

type message struct {
	Role    string  `json:"role"`
	Content []block `json:"content"`
}

// block is one content block of any type; unused fields stay empty.
type block struct {
	Type      string          `json:"type"`
	Text      string          `json:"text,omitempty"`
	Source    *source         `json:"source,omitempty"`
	ID        string          `json:"id,omitempty"`
	Name      string          `json:"name,omitempty"`
	Input     json.RawMessage `json:"input,omitempty"`
	ToolUseID string          `json:"tool_use_id,omitempty"`
	Content   []block         `json:"content,omitempty"`
}

type source struct {
	Type      string `json:"type"` // base64 or url
	MediaType string `json:"media_type,omitempty"`
	Data      string `json:"data,omitempty"`
	URL       string `json:"url,omitempty"`
}

type tool struct {
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	InputSchema json.RawMessage `json:"input_schema"`
}

type toolChoice struct {
	Type                   string `json:"type"` // auto, any, tool, none
	Name                   string `json:"name,omitempty"`
	DisableParallelToolUse bool   `json:"disable_parallel_tool_use,omitempty"`
}

type metadata struct {
	UserID string `json:"user_id"`
}

// translateRequest turns an OpenAI chat-completions body into an Anthropic
// Messages body. Its errors are KindInvalidRequest naming the parameter.
func translateRequest(body []byte, opt requestOptions) (translated, *router.Error) {
	var in oaRequest
	if err := json.Unmarshal(body, &in); err != nil {
		return translated{}, invalid("", "Invalid request body: "+err.Error())
	}
	if in.N != nil && *in.N > 1 {
		return translated{}, invalid("n", "n > 1 is not supported by this model's provider (Anthropic returns one choice).")
	}
	if len(in.Functions) > 0 && string(in.Functions) != "null" {
		return translated{}, invalid("functions", "'functions' is not supported by this model's provider; use 'tools'.")
	}
	out := msgRequest{Model: opt.Model, MaxTokens: opt.MaxTokens, Stream: opt.Stream,
		Temperature: number(in.Temperature), TopP: number(in.TopP)}
	if out.MaxTokens <= 0 {
		out.MaxTokens = opt.DefaultMaxTokens
	}
	var err *router.Error
	if out.System, out.Messages, err = translateMessages(in.Messages); err != nil {
		return translated{}, err
	}
	if out.StopSequences, err = stopSequences(in.Stop); err != nil {
		return translated{}, err
	}
	if out.Tools, err = translateTools(in.Tools); err != nil {
		return translated{}, err
	}
	if out.ToolChoice, err = translateToolChoice(in.ToolChoice, in.ParallelToolCalls, len(out.Tools) > 0); err != nil {
		return translated{}, err
	}
	if u := cmpOr(in.User, in.SafetyIdentifier); u != "" {
		out.Metadata = &metadata{UserID: u}
	}
	jsonTool, err := applyResponseFormat(&out, in.ResponseFormat)
	if err != nil {
		return translated{}, err
	}
	b, mErr := marshal(out)
	if mErr != nil {
		return translated{}, invalid("", "Invalid request body: "+mErr.Error())
	}
	return translated{Body: b, JSONTool: jsonTool}, nil
}

// translateMessages splits system and developer messages into system
// blocks and maps the rest to alternating user/assistant turns: tool
// results become tool_result blocks of a user turn, and consecutive turns of
// one role are merged, as Anthropic requires.
func translateMessages(in []oaMessage) ([]block, []message, *router.Error) {
	var system []block
	var out []message
	add := func(role string, blocks []block) {
		if len(blocks) == 0 {
			return
		}
		if n := len(out); n > 0 && out[n-1].Role == role {
			out[n-1].Content = append(out[n-1].Content, blocks...)
			return
		}
		out = append(out, message{Role: role, Content: blocks})
	}
	for i, m := range in {
		param := fmt.Sprintf("messages[%d]", i)
		switch m.Role {
		case "system", "developer":
			blocks, err := contentBlocks(m.Content, param, false)
			if err != nil {
				return nil, nil, err
			}
			system = append(system, blocks...)
		case "user":
			blocks, err := contentBlocks(m.Content, param, true)
			if err != nil {
				return nil, nil, err
			}
			add("user", blocks) // an empty turn is dropped: Anthropic rejects it
		case "assistant":
			blocks, err := contentBlocks(m.Content, param, false)
			if err != nil {
				return nil, nil, err
			}
			for j, tc := range m.ToolCalls {
				in, err := toolInput(tc.Function.Arguments, fmt.Sprintf("%s.tool_calls[%d].function.arguments", param, j))
				if err != nil {
					return nil, nil, err
				}
				blocks = append(blocks, block{Type: "tool_use", ID: tc.ID, Name: tc.Function.Name, Input: in})
			}
			add("assistant", blocks)
		case "tool":
			res, err := contentBlocks(m.Content, param, false)
			if err != nil {
				return nil, nil, err
			}
			// tool_result blocks must open the user turn: results that
			// follow user text start a new turn instead of merging.
			b := block{Type: "tool_result", ToolUseID: m.ToolCallID, Content: res}
			if n := len(out); n > 0 && out[n-1].Role == "user" && out[n-1].Content[len(out[n-1].Content)-1].Type != "tool_result" {
				out = append(out, message{Role: "user", Content: []block{b}})
				continue
			}
			add("user", []block{b})
		default:
			return nil, nil, invalid(param+".role", fmt.Sprintf("Unsupported role %q for this model's provider.", m.Role))
		}
	}
	return system, out, nil
}

// contentBlocks maps a message's content, a string or an array of parts.
// Empty text is dropped: Anthropic rejects empty text blocks.
func contentBlocks(raw json.RawMessage, param string, media bool) ([]block, *router.Error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		if s == "" {
			return nil, nil
		}
		return []block{{Type: "text", Text: s}}, nil
	}
	var parts []oaPart
	if err := json.Unmarshal(raw, &parts); err != nil {
		return nil, invalid(param+".content", "Invalid content: expected a string or an array of content parts.")
	}
	var out []block
	for j, p := range parts {
		pp := fmt.Sprintf("%s.content[%d]", param, j)
		switch {
		case p.Type == "text" || p.Type == "refusal":
			if t := p.Text + p.Refusal; t != "" {
				out = append(out, block{Type: "text", Text: t})
			}
		case p.Type == "image_url" && media && p.ImageURL != nil:
			src, err := mediaSource(p.ImageURL.URL, pp+".image_url.url", true)
			if err != nil {
				return nil, err
			}
			out = append(out, block{Type: "image", Source: src})
		case p.Type == "file" && media && p.File != nil && p.File.FileData != "":
			src, err := mediaSource(p.File.FileData, pp+".file.file_data", false)
			if err != nil {
				return nil, err
			}
			out = append(out, block{Type: "document", Source: src})
		default:
			return nil, invalid(pp+".type", fmt.Sprintf("Content part type %q is not supported here by this model's provider.", p.Type))
		}
	}
	return out, nil
}

// mediaSource maps a data URL to a base64 source and, for images, an
// http(s) URL to a url source.
func mediaSource(u, param string, allowURL bool) (*source, *router.Error) {
	if rest, ok := strings.CutPrefix(u, "data:"); ok {
		meta, data, ok := strings.Cut(rest, ",")
		mediaType, isB64 := strings.CutSuffix(meta, ";base64")
		if !ok || !isB64 || mediaType == "" || data == "" {
			return nil, invalid(param, "Invalid data URL: expected data:<media type>;base64,<data>.")
		}
		return &source{Type: "base64", MediaType: mediaType, Data: data}, nil
	}
	if allowURL && (strings.HasPrefix(u, "https://") || strings.HasPrefix(u, "http://")) {
		return &source{Type: "url", URL: u}, nil
	}
	return nil, invalid(param, "Expected a base64 data URL or an http(s) URL.")
}

// toolInput is an assistant tool call's arguments as a tool_use input,
// which must be a JSON object; "" (a call without arguments) is {}.
func toolInput(args, param string) (json.RawMessage, *router.Error) {
	a := bytes.TrimSpace([]byte(args))
	if len(a) == 0 {
		return json.RawMessage("{}"), nil
	}
	if !json.Valid(a) || a[0] != '{' {
		return nil, invalid(param, "Tool call arguments must be a JSON object.")
	}
	var buf bytes.Buffer
	_ = json.Compact(&buf, a) // valid JSON always compacts
	return buf.Bytes(), nil
}

// number keeps a numeric parameter's exact text; null or absent is dropped.
func number(raw json.RawMessage) json.RawMessage {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	return raw
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func invalid(param, msg string) *router.Error {
	return &router.Error{Kind: router.KindInvalidRequest, Message: msg, Param: param}
}

// marshal encodes v without HTML escaping, so "<" and "&" in prompts and
// replies travel as written.
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}
