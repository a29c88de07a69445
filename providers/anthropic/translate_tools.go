package anthropic

import (
	"bytes"
	"encoding/json"
	"fmt"

	"llmproxy/router"
)

// stopSequences maps stop, a string or an array of strings.
func stopSequences(raw json.RawMessage) ([]string, *router.Error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return []string{one}, nil
	}
	var many []string
	if json.Unmarshal(raw, &many) != nil {
		return nil, invalid("stop", "Invalid 'stop': expected a string or an array of strings.")
	}
	return many, nil
}

func translateTools(in []oaTool) ([]tool, *router.Error) {
	out := make([]tool, 0, len(in))
	for i, t := range in {
		if t.Type != "function" || t.Function == nil || t.Function.Name == "" {
			return nil, invalid(fmt.Sprintf("tools[%d]", i), "Only function tools with a name are supported by this model's provider.")
		}
		schema := t.Function.Parameters
		if len(schema) == 0 || string(schema) == "null" {
			schema = json.RawMessage(`{"type":"object","properties":{}}`)
		}
		out = append(out, tool{Name: t.Function.Name, Description: t.Function.Description, InputSchema: schema})
	}
	return out, nil
}

// translateToolChoice maps auto/none/required/{function} to Anthropic's
// auto/none/any/tool. parallel_tool_calls: false becomes
// disable_parallel_tool_use. "none" keeps the tools (and says none), since
// Anthropic rejects tool_use history in a request without tools.
func translateToolChoice(raw json.RawMessage, parallel *bool, hasTools bool) (*toolChoice, *router.Error) {
	if !hasTools {
		return nil, nil
	}
	tc := &toolChoice{Type: "auto"}
	if len(raw) > 0 && string(raw) != "null" {
		var s string
		var named struct {
			Type     string `json:"type"`
			Function struct {
				Name string `json:"name"`
			} `json:"function"`
		}
		switch {
		case json.Unmarshal(raw, &s) == nil:
			switch s {
			case "auto":
			case "none":
				return &toolChoice{Type: "none"}, nil
			case "required":
				tc.Type = "any"
			default:
				return nil, invalid("tool_choice", fmt.Sprintf("Invalid 'tool_choice': %q.", s))
			}
		case json.Unmarshal(raw, &named) == nil && named.Type == "function" && named.Function.Name != "":
			tc = &toolChoice{Type: "tool", Name: named.Function.Name}
		default:
			return nil, invalid("tool_choice", "Invalid 'tool_choice': expected auto, none, required or a named function.")
		}
	}
	tc.DisableParallelToolUse = parallel != nil && !*parallel
	return tc, nil
}

// applyResponseFormat maps json_object and json_schema. Without client
// tools it forces jsonToolName, whose input schema is the client's schema;
// with client tools it appends a system instruction. It reports whether the
// forced tool is used.
func applyResponseFormat(out *msgRequest, f *oaFormat) (bool, *router.Error) {
	if f == nil || f.Type == "" || f.Type == "text" {
		return false, nil
	}
	schema := json.RawMessage(`{"type":"object"}`)
	desc := "Respond with a JSON object."
	switch f.Type {
	case "json_object":
	case "json_schema":
		if f.JSONSchema == nil || len(f.JSONSchema.Schema) == 0 {
			return false, invalid("response_format.json_schema.schema", "Missing required parameter: 'response_format.json_schema.schema'.")
		}
		schema = f.JSONSchema.Schema
		desc = cmpOr(f.JSONSchema.Description, "Respond with a JSON object matching the input schema.")
		if f.JSONSchema.Name != "" {
			desc = f.JSONSchema.Name + ": " + desc
		}
	default:
		return false, invalid("response_format.type", fmt.Sprintf("Invalid 'response_format.type': %q.", f.Type))
	}
	if len(out.Tools) > 0 {
		instr := "Reply with only a JSON object, without code fences or any other text."
		if f.Type == "json_schema" {
			var buf bytes.Buffer
			_ = json.Compact(&buf, schema)
			instr = "Reply with only a JSON object that matches this JSON schema, without code fences or any other text: " + buf.String()
		}
		out.System = append(out.System, block{Type: "text", Text: instr})
		return false, nil
	}
	out.Tools = []tool{{Name: jsonToolName, Description: desc, InputSchema: schema}}
	out.ToolChoice = &toolChoice{Type: "tool", Name: jsonToolName}
	return true, nil
}
