package openai

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"

	"llmproxy/router"
)

// chatBody is the upstream body: the client's JSON with "model" rewritten
// (and include_usage asked for streams, see ChatRequest.UpstreamBody).
// Every other byte is forwarded as it came, except a completion cap the
// budget imposed on a body that had none (ChatRequest.CompletionCap).
func chatBody(req *router.ChatRequest) []byte {
	b := req.UpstreamBody(req.Target.Model)
	if req.CompletionCap > 0 && !hasCap(req) {
		b = router.SetField(b, capField(req.Target.Model), []byte(strconv.Itoa(req.CompletionCap)))
	}
	return b
}

// hasCap reports a non-null max_tokens or max_completion_tokens in the body.
func hasCap(req *router.ChatRequest) bool {
	for _, f := range []string{"max_completion_tokens", "max_tokens"} {
		if v := req.Field(f); len(v) > 0 && string(v) != "null" {
			return true
		}
	}
	return false
}

// capField is the completion-cap field for an upstream model. OpenAI's
// reasoning models (o1, o3, o4-mini, ...) and the gpt-5 family reject
// max_tokens and take only max_completion_tokens; every other
// OpenAI-compatible server (older OpenAI models, vLLM, Ollama, most
// gateways) reads max_tokens, which OpenAI itself still accepts for
// non-reasoning models. The rule: a name (after any "vendor/" prefix) that
// starts with "gpt-5", or with "o" and a digit, gets max_completion_tokens.
func capField(model string) string {
	m := strings.ToLower(model)
	if i := strings.LastIndexByte(m, '/'); i >= 0 {
		m = m[i+1:]
	}
	if strings.HasPrefix(m, "gpt-5") || (len(m) > 1 && m[0] == 'o' && m[1] >= '0' && m[1] <= '9') {
		return "max_completion_tokens"
	}
	return "max_tokens"
}

// embedBody rewrites only "model"; encoding_format, dimensions and the input
// stay exactly as the client sent them.
func embedBody(req *router.EmbedRequest) []byte {
	m, _ := json.Marshal(req.Target.Model) // a string always marshals
	return router.SetField(req.Body, "model", m)
}

// wireUsage is OpenAI's usage object, chat and embeddings alike.
type wireUsage struct {
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

// parseUsage decodes a usage value; nil when it is absent or null.
func parseUsage(raw []byte) (*router.Usage, error) {
	if !isObject(raw) {
		return nil, nil
	}
	var w wireUsage
	if err := json.Unmarshal(raw, &w); err != nil {
		return nil, err
	}
	u := &router.Usage{
		PromptTokens:     w.PromptTokens,
		CompletionTokens: w.CompletionTokens,
		TotalTokens:      w.TotalTokens,
		CachedTokens:     w.PromptTokensDetails.CachedTokens,
		ReasoningTokens:  w.CompletionTokensDetails.ReasoningTokens,
	}
	u.Clamp() // a negative or absurd count must not reach the budget
	return u, nil
}

// wholeChunk turns a plain chat.completion body into its one Chunk, reading
// only usage and model; Data is the upstream body verbatim.
func (c *Client) wholeChunk(body []byte) (*router.Chunk, error) {
	if !json.Valid(body) {
		return nil, c.up.Malformed("reply", nil)
	}
	if e := router.TopField(body, "error"); isObject(e) {
		return nil, c.eventError(e)
	}
	u, err := parseUsage(router.TopField(body, "usage"))
	if err != nil {
		return nil, c.up.Malformed("usage", err)
	}
	return &router.Chunk{Data: body, Whole: true, Usage: u, Model: modelName(router.TopField(body, "model"), "")}, nil
}

// embedUsage reads the usage of an embeddings list.
func (c *Client) embedUsage(body []byte) (router.Usage, error) {
	if !json.Valid(body) {
		return router.Usage{}, c.up.Malformed("embeddings reply", nil)
	}
	if e := router.TopField(body, "error"); isObject(e) {
		return router.Usage{}, c.eventError(e)
	}
	u, err := parseUsage(router.TopField(body, "usage"))
	if err != nil {
		return router.Usage{}, c.up.Malformed("usage", err)
	}
	if u == nil {
		return router.Usage{}, nil
	}
	return *u, nil
}

// modelName decodes a JSON string value, returning prev when it holds the
// same name so a stream of chunks shares one string.
func modelName(raw []byte, prev string) string {
	if len(raw) < 2 || raw[0] != '"' {
		return prev
	}
	if inner := raw[1 : len(raw)-1]; bytes.IndexByte(inner, '\\') < 0 {
		if string(inner) == prev {
			return prev
		}
		return string(inner)
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return prev
	}
	return s
}

func isObject(raw []byte) bool { return len(raw) > 0 && raw[0] == '{' }

// isEmptyArray reports whether raw is absent, null or "[]" (with any
// spacing).
func isEmptyArray(raw []byte) bool {
	if len(raw) == 0 || string(raw) == "null" {
		return true
	}
	return raw[0] == '[' && len(bytes.TrimSpace(raw[1:len(raw)-1])) == 0
}
