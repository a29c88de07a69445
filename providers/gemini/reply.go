package gemini

import (
	"encoding/json"
	"strconv"
	"strings"

	"llmproxy/router"
)

// The OpenAI shapes this adapter writes: "Chat Completions > The chat
// completion object" and "> The chat completion chunk object".

type oaCompletion struct {
	ID      string     `json:"id"`
	Object  string     `json:"object"`
	Created int64      `json:"created"`
	Model   string     `json:"model"`
	Choices []oaChoice `json:"choices"`
	Usage   *oaUsage   `json:"usage,omitempty"`
}

type oaChoice struct {
	Index        int             `json:"index"`
	Message      oaMessage       `json:"message"`
	Logprobs     json.RawMessage `json:"logprobs"`
	FinishReason string          `json:"finish_reason"`
}

type oaMessage struct {
	Role      string       `json:"role"`
	Content   *string      `json:"content"`
	Refusal   *string      `json:"refusal"`
	ToolCalls []oaToolCall `json:"tool_calls,omitempty"`
}

type oaToolCall struct {
	Index    *int       `json:"index,omitempty"` // deltas only
	ID       string     `json:"id"`
	Type     string     `json:"type"`
	Function oaFunction `json:"function"`
}

type oaFunction struct {
	Name      string `json:"name"`
	Arguments string `json:"arguments"`
}

type oaChunk struct {
	ID      string          `json:"id"`
	Object  string          `json:"object"`
	Created int64           `json:"created"`
	Model   string          `json:"model"`
	Choices []oaChunkChoice `json:"choices"`
	Usage   *oaUsage        `json:"usage,omitempty"`
}

type oaChunkChoice struct {
	Index        int             `json:"index"`
	Delta        oaDelta         `json:"delta"`
	Logprobs     json.RawMessage `json:"logprobs"`
	FinishReason *string         `json:"finish_reason"`
}

type oaDelta struct {
	Role      string       `json:"role,omitempty"`
	Content   *string      `json:"content,omitempty"`
	ToolCalls []oaToolCall `json:"tool_calls,omitempty"`
}

type oaUsage struct {
	PromptTokens        int `json:"prompt_tokens"`
	CompletionTokens    int `json:"completion_tokens"`
	TotalTokens         int `json:"total_tokens"`
	PromptTokensDetails struct {
		CachedTokens int `json:"cached_tokens"`
	} `json:"prompt_tokens_details"`
	CompletionTokensDetails struct {
		ReasoningTokens int `json:"reasoning_tokens"`
	} `json:"completion_tokens_details"`
}

// replyMeta is what every chunk of one reply shares.
type replyMeta struct {
	ID      string
	Created int64
	Model   string
}

// toUsage maps usageMetadata. promptTokenCount already includes the cached
// part; tool-use prompt tokens (code execution, grounding) are prompt too.
// Thinking tokens are billed as output, so completion = candidates +
// thoughts, with thoughts also reported as reasoning_tokens.
//
// Each count is clamped to [0, router.MaxUsageTokens] before the sums, so
// a negative or absurd count cannot lower the bill or overflow it.
func toUsage(m *usageMetadata) router.Usage {
	clamped := false
	v := func(n int) int {
		n, bad := router.ClampCount(n)
		clamped = clamped || bad
		return n
	}
	thoughts := v(m.ThoughtsTokenCount)
	u := router.Usage{
		PromptTokens:     v(m.PromptTokenCount) + v(m.ToolUsePromptTokenCount),
		CompletionTokens: v(m.CandidatesTokenCount) + thoughts,
		CachedTokens:     v(m.CachedContentTokenCount),
		ReasoningTokens:  thoughts,
	}
	u.TotalTokens = v(m.TotalTokenCount)
	if u.TotalTokens == 0 {
		u.TotalTokens = u.PromptTokens + u.CompletionTokens
	}
	u.Clamp()
	u.Clamped = u.Clamped || clamped
	return u
}

func wireUsage(u router.Usage) *oaUsage {
	w := &oaUsage{PromptTokens: u.PromptTokens, CompletionTokens: u.CompletionTokens, TotalTokens: u.TotalTokens}
	w.PromptTokensDetails.CachedTokens = u.CachedTokens
	w.CompletionTokensDetails.ReasoningTokens = u.ReasoningTokens
	return w
}

// finishReason maps Gemini's finishReason ("Generating content >
// FinishReason"). A candidate that called a function finishes with
// tool_calls, as OpenAI's does. Reasons without an OpenAI peer
// (MALFORMED_FUNCTION_CALL, LANGUAGE, OTHER, ...) read as stop.
func finishReason(reason string, calledTools bool) string {
	switch reason {
	case "MAX_TOKENS":
		return "length"
	case "SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY":
		return "content_filter"
	}
	if calledTools {
		return "tool_calls"
	}
	return "stop"
}

// callID is a tool call's id: Gemini's own when it sent one, else
// "call_<n>" with n counting the calls of this reply. The same reply always
// gets the same ids; tool results are matched to calls by walking the
// history forward, so ids repeating across turns do not confuse it.
func callID(fc *functionCall, n int) string {
	if fc.ID != "" {
		return fc.ID
	}
	return "call_" + strconv.Itoa(n)
}

func callArgs(fc *functionCall) string {
	if len(fc.Args) == 0 || string(fc.Args) == "null" {
		return "{}"
	}
	return string(compact(fc.Args))
}

// candidateText joins a candidate's text parts, skipping thought summaries.
func candidateText(c *content) string {
	if c == nil {
		return ""
	}
	var b strings.Builder
	for _, p := range c.Parts {
		if !p.Thought {
			b.WriteString(p.Text)
		}
	}
	return b.String()
}

// completion turns a plain generateContent reply into a chat.completion
// body. estimate counts the usage when Gemini reported none.
func completion(r *genResponse, meta replyMeta, estimate func(completion string) router.Usage) ([]byte, router.Usage, error) {
	if r.PromptFeedback != nil && r.PromptFeedback.BlockReason != "" && len(r.Candidates) == 0 {
		return nil, router.Usage{}, blocked(r.PromptFeedback.BlockReason)
	}
	out := oaCompletion{ID: meta.ID, Object: "chat.completion", Created: meta.Created, Model: meta.Model,
		Choices: make([]oaChoice, 0, len(r.Candidates))}
	var all strings.Builder
	n := 0
	for _, c := range r.Candidates {
		msg := oaMessage{Role: "assistant"}
		text := candidateText(c.Content)
		all.WriteString(text)
		if c.Content != nil {
			for _, p := range c.Content.Parts {
				if fc := p.FunctionCall; fc != nil {
					msg.ToolCalls = append(msg.ToolCalls, oaToolCall{ID: callID(fc, n), Type: "function",
						Function: oaFunction{Name: fc.Name, Arguments: callArgs(fc)}})
					all.WriteString(fc.Name + callArgs(fc))
					n++
				}
			}
		}
		if text != "" || len(msg.ToolCalls) == 0 {
			msg.Content = &text
		}
		out.Choices = append(out.Choices, oaChoice{Index: c.Index, Message: msg,
			FinishReason: finishReason(c.FinishReason, len(msg.ToolCalls) > 0)})
	}
	if len(out.Choices) == 0 {
		return nil, router.Usage{}, &router.Error{Kind: router.KindUpstream, Message: "Gemini sent a reply without candidates"}
	}
	var u router.Usage
	if r.UsageMetadata != nil {
		u = toUsage(r.UsageMetadata)
	} else {
		u = estimate(all.String())
	}
	out.Usage = wireUsage(u)
	b, err := marshal(out)
	return b, u, err
}
