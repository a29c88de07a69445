package gemini

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"llmproxy/router"
)

// chatFields are the OpenAI request members the translation reads. Members
// Gemini has no equivalent for (logit_bias, user, parallel_tool_calls,
// reasoning_effort, logprobs, ...) are ignored, as Google's own
// OpenAI-compatible endpoint does.
type chatFields struct {
	Temperature      *float64        `json:"temperature"`
	TopP             *float64        `json:"top_p"`
	Stop             json.RawMessage `json:"stop"`
	N                int             `json:"n"`
	Seed             *int64          `json:"seed"`
	PresencePenalty  *float64        `json:"presence_penalty"`
	FrequencyPenalty *float64        `json:"frequency_penalty"`
	Tools            []struct {
		Type     string `json:"type"`
		Function struct {
			Name        string          `json:"name"`
			Description string          `json:"description"`
			Parameters  json.RawMessage `json:"parameters"`
		} `json:"function"`
	} `json:"tools"`
	ToolChoice     json.RawMessage `json:"tool_choice"`
	ResponseFormat *struct {
		Type       string `json:"type"`
		JSONSchema *struct {
			Schema json.RawMessage `json:"schema"`
		} `json:"json_schema"`
	} `json:"response_format"`
}

// translateRequest turns an OpenAI chat request into a generateContent
// body. It is a pure function of the request; errors are *router.Error of
// KindInvalidRequest naming what Gemini cannot take.
func translateRequest(req *router.ChatRequest) ([]byte, error) {
	msgs, err := req.Messages()
	if err != nil {
		return nil, err
	}
	var f chatFields
	if err := json.Unmarshal(req.Body, &f); err != nil {
		return nil, invalid("", "Invalid request body: "+err.Error())
	}
	g := genRequest{Contents: []content{}}
	if g.SystemInstruction, g.Contents, err = translateMessages(msgs); err != nil {
		return nil, err
	}
	if g.Tools, err = translateTools(f); err != nil {
		return nil, err
	}
	if len(g.Tools) > 0 {
		if g.ToolConfig, err = translateToolChoice(f.ToolChoice); err != nil {
			return nil, err
		}
	}
	if g.GenerationConfig, err = translateConfig(f, req.MaxTokens); err != nil {
		return nil, err
	}
	return marshal(g)
}

// translateMessages maps roles: system and developer messages become
// system_instruction, user stays user, assistant becomes model (its
// tool_calls become functionCall parts), and tool results become
// functionResponse parts in a user turn, named after the call they answer.
// Consecutive tool results share one turn, as Gemini wants for parallel
// calls.
func translateMessages(msgs []router.Message) (*content, []content, error) {
	var sys *content
	out := []content{}
	names := map[string]string{} // tool_call_id -> function name, latest wins
	prevTool := false
	for i, m := range msgs {
		path := fmt.Sprintf("messages[%d]", i)
		switch m.Role {
		case "system", "developer":
			if t := m.Text(); t != "" {
				if sys == nil {
					sys = &content{}
				}
				sys.Parts = append(sys.Parts, part{Text: t})
			}
		case "user":
			parts, err := userParts(m.Content, path)
			if err != nil {
				return nil, nil, err
			}
			out = append(out, content{Role: "user", Parts: parts})
		case "assistant":
			parts, err := assistantParts(m, names, path)
			if err != nil {
				return nil, nil, err
			}
			if len(parts) > 0 {
				out = append(out, content{Role: "model", Parts: parts})
			}
		case "tool", "function":
			name := names[m.ToolCallID]
			if name == "" {
				name = m.Name
			}
			if name == "" {
				return nil, nil, invalid("messages", fmt.Sprintf("Invalid '%s': tool_call_id %q matches no earlier assistant tool call.", path, m.ToolCallID))
			}
			p := part{FunctionResponse: &functionResponse{Name: name, Response: toolResponse(m)}}
			if prevTool {
				last := &out[len(out)-1]
				last.Parts = append(last.Parts, p)
			} else {
				out = append(out, content{Role: "user", Parts: []part{p}})
			}
		default:
			return nil, nil, invalid("messages", fmt.Sprintf("Invalid '%s.role': %q is not supported.", path, m.Role))
		}
		prevTool = m.Role == "tool" || m.Role == "function"
	}
	return sys, out, nil
}

// toolResponse is a tool result as Gemini's functionResponse.response,
// which must be a JSON object: an object result passes as is, anything else
// goes under "output", the key Google's docs suggest.
func toolResponse(m router.Message) json.RawMessage {
	t := m.Text()
	if tt := strings.TrimSpace(t); strings.HasPrefix(tt, "{") && json.Valid([]byte(tt)) {
		return json.RawMessage(tt)
	}
	b, _ := marshal(map[string]string{"output": t})
	return b
}

// contentPart is one OpenAI content part.
type contentPart struct {
	Type     string `json:"type"`
	Text     string `json:"text"`
	ImageURL *struct {
		URL string `json:"url"`
	} `json:"image_url"`
	InputAudio *struct {
		Data   string `json:"data"`
		Format string `json:"format"`
	} `json:"input_audio"`
	File *struct {
		FileData string `json:"file_data"`
	} `json:"file"`
}

// userParts maps a user message's content: text parts to text, images and
// files given as base64 data URLs to inlineData, input_audio to inlineData
// audio/<format>. Gemini's generateContent cannot fetch arbitrary http
// URLs, so those are rejected instead of silently dropped.
func userParts(raw json.RawMessage, path string) ([]part, error) {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return []part{{Text: s}}, nil
	}
	var cps []contentPart
	if err := json.Unmarshal(raw, &cps); err != nil {
		return nil, invalid("messages", fmt.Sprintf("Invalid '%s.content': expected a string or an array of parts.", path))
	}
	out := make([]part, 0, len(cps))
	for j, cp := range cps {
		at := fmt.Sprintf("%s.content[%d]", path, j)
		switch {
		case cp.Type == "text":
			out = append(out, part{Text: cp.Text})
		case cp.Type == "image_url" && cp.ImageURL != nil:
			b, err := dataURL(cp.ImageURL.URL, at)
			if err != nil {
				return nil, err
			}
			out = append(out, part{InlineData: b})
		case cp.Type == "input_audio" && cp.InputAudio != nil:
			out = append(out, part{InlineData: &blob{MimeType: "audio/" + cp.InputAudio.Format, Data: cp.InputAudio.Data}})
		case cp.Type == "file" && cp.File != nil:
			b, err := dataURL(cp.File.FileData, at)
			if err != nil {
				return nil, err
			}
			out = append(out, part{InlineData: b})
		default:
			return nil, invalid("messages", fmt.Sprintf("Invalid '%s': content part type %q is not supported by Gemini.", at, cp.Type))
		}
	}
	return out, nil
}

// dataURL splits "data:<mime>;base64,<data>" into an inline blob.
func dataURL(u, at string) (*blob, error) {
	rest, ok := strings.CutPrefix(u, "data:")
	meta, data, found := strings.Cut(rest, ",")
	mime, isB64 := strings.CutSuffix(meta, ";base64")
	if !ok || !found || !isB64 || mime == "" {
		return nil, invalid("messages", fmt.Sprintf("Invalid '%s': Gemini takes images and files only as base64 data URLs (data:<mime>;base64,...).", at))
	}
	return &blob{MimeType: mime, Data: data}, nil
}

// assistantParts maps an assistant turn: its text, then one functionCall
// part per tool call. It records each call's name under its id so later
// tool results can be named.
func assistantParts(m router.Message, names map[string]string, path string) ([]part, error) {
	var out []part
	if t := m.Text(); t != "" {
		out = append(out, part{Text: t})
	}
	if len(m.ToolCalls) == 0 || string(m.ToolCalls) == "null" {
		return out, nil
	}
	var calls []struct {
		ID       string `json:"id"`
		Function struct {
			Name      string `json:"name"`
			Arguments string `json:"arguments"`
		} `json:"function"`
	}
	if err := json.Unmarshal(m.ToolCalls, &calls); err != nil {
		return nil, invalid("messages", fmt.Sprintf("Invalid '%s.tool_calls': %v", path, err))
	}
	for j, tc := range calls {
		args := []byte(strings.TrimSpace(tc.Function.Arguments))
		if len(args) == 0 {
			args = []byte("{}")
		}
		if args[0] != '{' || !json.Valid(args) {
			return nil, invalid("messages", fmt.Sprintf("Invalid '%s.tool_calls[%d].function.arguments': Gemini needs a JSON object.", path, j))
		}
		names[tc.ID] = tc.Function.Name
		out = append(out, part{FunctionCall: &functionCall{Name: tc.Function.Name, Args: compact(args)}})
	}
	return out, nil
}

// translateTools maps function tools to one functionDeclarations tool, with
// each parameters schema cut down to what Gemini's Schema accepts
// (cleanSchema).
func translateTools(f chatFields) ([]tool, error) {
	if len(f.Tools) == 0 {
		return nil, nil
	}
	decls := make([]funcDecl, 0, len(f.Tools))
	for i, t := range f.Tools {
		if t.Type != "function" {
			return nil, invalid("tools", fmt.Sprintf("Invalid 'tools[%d].type': %q is not supported by Gemini; only function tools are.", i, t.Type))
		}
		params, err := cleanParameters(t.Function.Parameters)
		if err != nil {
			return nil, invalid("tools", fmt.Sprintf("Invalid 'tools[%d].function.parameters': %v", i, err))
		}
		decls = append(decls, funcDecl{Name: t.Function.Name, Description: t.Function.Description, Parameters: params})
	}
	return []tool{{FunctionDeclarations: decls}}, nil
}

// translateToolChoice maps tool_choice to functionCallingConfig: auto→AUTO,
// none→NONE, required→ANY, a named function→ANY limited to that name, and
// allowed_tools to AUTO or ANY limited to its names.
func translateToolChoice(raw json.RawMessage) (*toolConfig, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	mode := func(m string, names ...string) *toolConfig {
		return &toolConfig{FunctionCallingConfig: fcConfig{Mode: m, AllowedFunctionNames: names}}
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		switch s {
		case "auto":
			return mode("AUTO"), nil
		case "none":
			return mode("NONE"), nil
		case "required":
			return mode("ANY"), nil
		}
		return nil, invalid("tool_choice", fmt.Sprintf("Invalid 'tool_choice': %q.", s))
	}
	type named struct {
		Function struct {
			Name string `json:"name"`
		} `json:"function"`
	}
	var tc struct {
		Type         string                `json:"type"`
		Function     struct{ Name string } `json:"function"`
		AllowedTools struct {
			Mode  string  `json:"mode"`
			Tools []named `json:"tools"`
		} `json:"allowed_tools"`
	}
	if err := json.Unmarshal(raw, &tc); err != nil {
		return nil, invalid("tool_choice", "Invalid 'tool_choice': "+err.Error())
	}
	switch {
	case tc.Type == "function" && tc.Function.Name != "":
		return mode("ANY", tc.Function.Name), nil
	case tc.Type == "allowed_tools":
		names := make([]string, 0, len(tc.AllowedTools.Tools))
		for _, t := range tc.AllowedTools.Tools {
			names = append(names, t.Function.Name)
		}
		if tc.AllowedTools.Mode == "required" {
			return mode("ANY", names...), nil
		}
		// Gemini takes allowedFunctionNames only with ANY; AUTO over the
		// whole list is the closest it has.
		return mode("AUTO"), nil
	}
	return nil, invalid("tool_choice", "Invalid 'tool_choice': want auto, none, required or a function.")
}

// translateConfig fills generationConfig; nil when nothing is set.
func translateConfig(f chatFields, maxTokens int) (*genConfig, error) {
	gc := genConfig{Temperature: f.Temperature, TopP: f.TopP, MaxOutputTokens: maxTokens, Seed: f.Seed,
		PresencePenalty: f.PresencePenalty, FrequencyPenalty: f.FrequencyPenalty}
	if f.N > 1 {
		gc.CandidateCount = f.N
	}
	if len(f.Stop) > 0 && string(f.Stop) != "null" {
		var one string
		if json.Unmarshal(f.Stop, &one) == nil {
			gc.StopSequences = []string{one}
		} else if json.Unmarshal(f.Stop, &gc.StopSequences) != nil {
			return nil, invalid("stop", "Invalid 'stop': expected a string or an array of strings.")
		}
	}
	if rf := f.ResponseFormat; rf != nil {
		switch rf.Type {
		case "json_object":
			gc.ResponseMimeType = "application/json"
		case "json_schema":
			gc.ResponseMimeType = "application/json"
			if rf.JSONSchema != nil && len(rf.JSONSchema.Schema) > 0 {
				s, err := cleanSchemaJSON(rf.JSONSchema.Schema)
				if err != nil {
					return nil, invalid("response_format", "Invalid 'response_format.json_schema.schema': "+err.Error())
				}
				gc.ResponseSchema = s
			}
		}
	}
	if b, _ := json.Marshal(gc); string(b) == "{}" {
		return nil, nil
	}
	return &gc, nil
}

func invalid(param, msg string) *router.Error {
	return &router.Error{Kind: router.KindInvalidRequest, Message: msg, Param: param}
}

// marshal encodes v without HTML escaping, so "<" and "&" in prompts reach
// the upstream as written.
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

func compact(raw []byte) json.RawMessage {
	var buf bytes.Buffer
	if json.Compact(&buf, raw) != nil {
		return raw
	}
	return buf.Bytes()
}
