package demo

import (
	"encoding/json"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"
)

// tool is one entry of the request's "tools".
type tool struct {
	Type     string `json:"type"`
	Function struct {
		Name       string          `json:"name"`
		Parameters json.RawMessage `json:"parameters"`
	} `json:"function"`
}

// toolWords trigger a tool call under tool_choice "auto": a stand-in for a
// model deciding that a tool would help.
var toolWords = []string{"weather", "forecast", "temperature"}

// pickTool returns the tool the demo calls, or nil for a text reply.
// tool_choice "none" never calls, "required" or a named function always
// does, and "auto" (the default) calls when the last user message mentions
// the weather.
func pickTool(tools []tool, choice []byte, last string) *tool {
	var fns []*tool
	for i := range tools {
		if tools[i].Type == "function" && tools[i].Function.Name != "" {
			fns = append(fns, &tools[i])
		}
	}
	if len(fns) == 0 {
		return nil
	}
	var mode string
	var named struct {
		Function struct {
			Name string `json:"name"`
		} `json:"function"`
	}
	if json.Unmarshal(choice, &mode) != nil && json.Unmarshal(choice, &named) == nil && named.Function.Name != "" {
		for _, t := range fns {
			if t.Function.Name == named.Function.Name {
				return t
			}
		}
		mode = "required"
	}
	switch mode {
	case "none":
		return nil
	case "required":
	default:
		if !mentions(last, toolWords) {
			return nil
		}
	}
	for _, t := range fns {
		if strings.Contains(strings.ToLower(t.Function.Name), "weather") {
			return t
		}
	}
	return fns[0]
}

func mentions(text string, ws []string) bool {
	lower := strings.ToLower(text)
	for _, w := range ws {
		if strings.Contains(lower, w) {
			return true
		}
	}
	return false
}

// place guesses the location in text: the capitalised words (at most three)
// after the last "in", "for" or "at", or the single word there if it is not
// capitalised. It falls back to San Francisco, as OpenAI's examples do.
func place(text string) string {
	ws := strings.Fields(text)
	for i := len(ws) - 2; i >= 0; i-- {
		switch strings.ToLower(ws[i]) {
		case "in", "for", "at":
		default:
			continue
		}
		var out []string
		for _, w := range ws[i+1:] {
			clean := strings.TrimRightFunc(w, unicode.IsPunct)
			r, _ := utf8.DecodeRuneInString(clean)
			if clean == "" || (len(out) > 0 && !unicode.IsUpper(r)) {
				break
			}
			out = append(out, clean)
			if len(out) == 3 || clean != w || !unicode.IsUpper(r) {
				break
			}
		}
		if len(out) > 0 {
			return strings.Join(out, " ")
		}
	}
	return "San Francisco"
}

// toolArguments fills the function's JSON Schema with plausible values: the
// place for strings, the first value of an enum, zero values otherwise. It
// fills the required properties, or all of them when none is required, in a
// fixed order so the reply is deterministic.
func toolArguments(params json.RawMessage, where string) string {
	var s struct {
		Properties map[string]struct {
			Type any               `json:"type"`
			Enum []json.RawMessage `json:"enum"`
		} `json:"properties"`
		Required []string `json:"required"`
	}
	if json.Unmarshal(params, &s) != nil || len(s.Properties) == 0 {
		return "{}"
	}
	keys := s.Required
	if len(keys) == 0 {
		for k := range s.Properties {
			keys = append(keys, k)
		}
		sort.Strings(keys)
	}
	b := []byte{'{'}
	for _, k := range keys {
		p, ok := s.Properties[k]
		if !ok {
			continue
		}
		if len(b) > 1 {
			b = append(b, ',')
		}
		b = appendString(b, k)
		b = append(b, ':')
		typ, _ := p.Type.(string)
		switch {
		case len(p.Enum) > 0:
			b = append(b, p.Enum[0]...)
		case typ == "number" || typ == "integer":
			b = append(b, '0')
		case typ == "boolean":
			b = append(b, "false"...)
		case typ == "array":
			b = append(b, "[]"...)
		case typ == "object":
			b = append(b, "{}"...)
		default:
			b = appendString(b, where)
		}
	}
	return string(append(b, '}'))
}

// fragments cuts s into pieces of about n bytes, never inside a UTF-8
// sequence, the way upstreams stream tool-call arguments.
func fragments(s string, n int) []string {
	var out []string
	for len(s) > n {
		i := n
		for i < len(s) && !utf8.RuneStart(s[i]) {
			i++
		}
		out = append(out, s[:i])
		s = s[i:]
	}
	if s != "" {
		out = append(out, s)
	}
	return out
}
