package providertest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"llmproxy/router"
)

// wireChunk is the part of a chat.completion.chunk the kit checks.
type wireChunk struct {
	Object  string `json:"object"`
	Choices []struct {
		Delta struct {
			Content   *string `json:"content"`
			ToolCalls []struct {
				Index    *int   `json:"index"`
				ID       string `json:"id"`
				Type     string `json:"type"`
				Function struct {
					Name      string `json:"name"`
					Arguments string `json:"arguments"`
				} `json:"function"`
			} `json:"tool_calls"`
		} `json:"delta"`
	} `json:"choices"`
}

// wholeReply is the part of a chat.completion the kit checks.
type wholeReply struct {
	Object  string `json:"object"`
	Choices []struct {
		Message struct {
			Content   *string `json:"content"`
			ToolCalls []struct {
				ID       string `json:"id"`
				Function struct {
					Name      string `json:"name"`
					Arguments string `json:"arguments"`
				} `json:"function"`
			} `json:"tool_calls"`
		} `json:"message"`
	} `json:"choices"`
}

// reassembly gathers a streamed reply the way an OpenAI client does.
type reassembly struct {
	text   strings.Builder
	tools  []ToolCall
	usage  []*router.Usage
	chunks []*router.Chunk
}

// add folds one chunk in; the error describes a wire-format violation.
func (ra *reassembly) add(c *router.Chunk) error {
	ra.chunks = append(ra.chunks, c)
	if c.Whole {
		return fmt.Errorf("chunk %d of a stream has Whole set", len(ra.chunks))
	}
	var wc wireChunk
	if err := json.Unmarshal(c.Data, &wc); err != nil {
		return fmt.Errorf("chunk %d is not JSON: %v: %s", len(ra.chunks), err, c.Data)
	}
	if wc.Object != "chat.completion.chunk" {
		return fmt.Errorf("chunk %d object = %q; want chat.completion.chunk", len(ra.chunks), wc.Object)
	}
	if c.Usage != nil {
		ra.usage = append(ra.usage, c.Usage)
	}
	if c.UsageOnly && len(wc.Choices) != 0 {
		return fmt.Errorf("chunk %d is UsageOnly but has %d choices", len(ra.chunks), len(wc.Choices))
	}
	for _, ch := range wc.Choices {
		if ch.Delta.Content != nil {
			ra.text.WriteString(*ch.Delta.Content)
		}
		for _, tc := range ch.Delta.ToolCalls {
			if tc.Index == nil {
				return fmt.Errorf("chunk %d: tool-call delta without index", len(ra.chunks))
			}
			i := *tc.Index
			switch {
			case i == len(ra.tools):
				// Clients create the call from its first delta, so that one
				// must carry id, type and name.
				if tc.ID == "" || tc.Type != "function" || tc.Function.Name == "" {
					return fmt.Errorf("chunk %d: first delta of tool call %d lacks id/type/name: %s", len(ra.chunks), i, c.Data)
				}
				ra.tools = append(ra.tools, ToolCall{ID: tc.ID, Name: tc.Function.Name})
			case i < 0 || i > len(ra.tools):
				return fmt.Errorf("chunk %d: tool-call index %d out of order", len(ra.chunks), i)
			}
			ra.tools[i].Arguments += tc.Function.Arguments
		}
	}
	return nil
}

// sameJSON reports whether two JSON texts are equal after compaction.
func sameJSON(a, b string) bool {
	var ca, cb bytes.Buffer
	if json.Compact(&ca, []byte(a)) != nil || json.Compact(&cb, []byte(b)) != nil {
		return a == b
	}
	return ca.String() == cb.String()
}

// checkTools compares reassembled calls with the wanted ones.
func checkTools(got, want []ToolCall) error {
	if len(got) != len(want) {
		return fmt.Errorf("got %d tool calls %+v; want %d", len(got), got, len(want))
	}
	seen := map[string]bool{}
	for i := range want {
		g := got[i]
		if g.ID == "" || seen[g.ID] {
			return fmt.Errorf("tool call %d ID %q is empty or repeated", i, g.ID)
		}
		seen[g.ID] = true
		if g.Name != want[i].Name || !sameJSON(g.Arguments, want[i].Arguments) {
			return fmt.Errorf("tool call %d = %s(%s); want %s(%s)", i, g.Name, g.Arguments, want[i].Name, want[i].Arguments)
		}
	}
	return nil
}

// sameUsage compares reported counts, ignoring Estimated.
func sameUsage(got *router.Usage, want router.Usage) bool {
	if got == nil {
		return false
	}
	g := *got
	g.Estimated = false
	return g == want
}
