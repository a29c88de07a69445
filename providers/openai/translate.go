package openai

import (
	"bytes"
	"encoding/json"
	"math"
	"reflect"
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

// parseUsage decodes a usage value; nil when it is absent or null. raw
// must be valid JSON (a member of a body router.ScanFields accepted).
//
// It reads the object by hand, with the results and errors that
// json.Unmarshal into wireUsage gives (usage_test.go keeps that decoder as
// the oracle): member names match case-insensitively, the last of a
// repeated member wins, null leaves a count as it was, and a count that is
// not an integer in int's range is an *json.UnmarshalTypeError naming the
// same field. encoding/json was half of wholeChunk's time (issue 15).
func parseUsage(raw []byte) (*router.Usage, error) {
	if !isObject(raw) {
		return nil, nil
	}
	var w wireUsage
	for it := (members{b: raw}); it.next(); {
		var err error
		switch usageField(it.key) {
		case 0:
			err = setCount(&w.PromptTokens, it.val, "wireUsage", "", "prompt_tokens")
		case 1:
			err = setCount(&w.CompletionTokens, it.val, "wireUsage", "", "completion_tokens")
		case 2:
			err = setCount(&w.TotalTokens, it.val, "wireUsage", "", "total_tokens")
		case 3:
			err = setDetail(&w.PromptTokensDetails.CachedTokens, it.val, "prompt_tokens_details", "cached_tokens",
				reflect.TypeOf(w.PromptTokensDetails))
		case 4:
			err = setDetail(&w.CompletionTokensDetails.ReasoningTokens, it.val, "completion_tokens_details", "reasoning_tokens",
				reflect.TypeOf(w.CompletionTokensDetails))
		}
		if err != nil {
			return nil, err
		}
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

// members walks the members of the valid JSON object b, keys quoted.
type members struct {
	b        []byte
	i        int // 0 before the first member
	key, val []byte
}

func (m *members) next() bool {
	var i int
	if m.i == 0 {
		if i = router.SkipSpace(m.b, 1); m.b[i] == '}' {
			return false
		}
	} else {
		if i = router.SkipSpace(m.b, m.i); m.b[i] != ',' {
			return false // '}'
		}
		i = router.SkipSpace(m.b, i+1)
	}
	kEnd := router.SkipValue(m.b, i)
	m.key = m.b[i:kEnd]
	i = router.SkipSpace(m.b, router.SkipSpace(m.b, kEnd)+1) // past ':'
	m.i = router.SkipValue(m.b, i)
	m.val = m.b[i:m.i]
	return true
}

// usageField is the index of the wireUsage member the quoted name q
// decodes into, in the order prompt_tokens, completion_tokens,
// total_tokens, prompt_tokens_details, completion_tokens_details; -1 for
// none.
func usageField(q []byte) int {
	switch string(q[1 : len(q)-1]) { // compiles to comparisons, no allocation
	case "prompt_tokens":
		return 0
	case "completion_tokens":
		return 1
	case "total_tokens":
		return 2
	case "prompt_tokens_details":
		return 3
	case "completion_tokens_details":
		return 4
	}
	for i, name := range [...]string{"prompt_tokens", "completion_tokens", "total_tokens", "prompt_tokens_details", "completion_tokens_details"} {
		if router.KeyIs(q, name) {
			return i
		}
	}
	return -1
}

// setCount stores the JSON integer val in *dst as json.Unmarshal into an
// int field would: null keeps *dst, anything but an integer in range is an
// *json.UnmarshalTypeError. The error names the field parent.name, or name
// at the top, joined only when there is an error.
func setCount(dst *int, val []byte, structName, parent, name string) error {
	what := ""
	switch val[0] {
	case 'n':
		return nil
	case '"':
		what = "string"
	case 't', 'f':
		what = "bool"
	case '{':
		what = "object"
	case '[':
		what = "array"
	default:
		if n, ok := parseInt(val); ok {
			*dst = n
			return nil
		}
		what = "number " + string(val)
	}
	if parent != "" {
		name = parent + "." + name
	}
	return &json.UnmarshalTypeError{Value: what, Type: reflect.TypeFor[int](), Struct: structName, Field: name}
}

// setDetail decodes a *_tokens_details object, of which only the count
// name is read, into *dst as json.Unmarshal into its struct t would.
func setDetail(dst *int, val []byte, field, name string, t reflect.Type) error {
	what := ""
	switch val[0] {
	case 'n':
		return nil
	case '{':
		for it := (members{b: val}); it.next(); {
			if router.KeyIs(it.key, name) {
				// encoding/json names the anonymous struct "" here.
				if err := setCount(dst, it.val, "", field, name); err != nil {
					return err
				}
			}
		}
		return nil
	case '"':
		what = "string"
	case 't', 'f':
		what = "bool"
	case '[':
		what = "array"
	default:
		what = "number"
	}
	return &json.UnmarshalTypeError{Value: what, Type: t, Struct: "wireUsage", Field: field}
}

// parseInt is strconv.ParseInt(string(num), 10, 64) for a valid JSON
// number, without the string, and false when the value is not an int.
func parseInt(num []byte) (int, bool) {
	neg := num[0] == '-'
	digits := num
	if neg {
		digits = num[1:]
	}
	limit := uint64(math.MaxInt64)
	if neg {
		limit++
	}
	var u uint64
	for _, c := range digits {
		if c < '0' || c > '9' {
			return 0, false // a fraction or an exponent
		}
		d := uint64(c - '0')
		if u > (limit-d)/10 {
			return 0, false
		}
		u = u*10 + d
	}
	n := int64(u)
	if neg {
		n = -n
	}
	if int64(int(n)) != n {
		return 0, false // int is 32 bits here
	}
	return int(n), true
}

// wholeChunk turns a plain chat.completion body into its one Chunk, reading
// only usage and model; Data is the upstream body verbatim.
func (c *Client) wholeChunk(body []byte) (*router.Chunk, error) {
	var v [3][]byte
	if !router.ScanFields(body, v[:], "error", "usage", "model") {
		return nil, c.up.Malformed("reply", nil)
	}
	if isObject(v[0]) {
		return nil, c.eventError(v[0])
	}
	u, err := parseUsage(v[1])
	if err != nil {
		return nil, c.up.Malformed("usage", err)
	}
	return &router.Chunk{Data: body, Whole: true, Usage: u, Model: modelName(v[2], "")}, nil
}

// embedUsage reads the usage of an embeddings list.
func (c *Client) embedUsage(body []byte) (router.Usage, error) {
	var v [2][]byte
	if !router.ScanFields(body, v[:], "error", "usage") {
		return router.Usage{}, c.up.Malformed("embeddings reply", nil)
	}
	if isObject(v[0]) {
		return router.Usage{}, c.eventError(v[0])
	}
	u, err := parseUsage(v[1])
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
