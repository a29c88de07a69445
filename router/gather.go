package router

import (
	"bytes"
	"encoding/json"
	"io"
	"sort"
	"strings"
)

// Collect reads s to the end and returns one chat.completion body, for
// clients that did not ask to stream. Deltas are joined per choice index and
// tool calls reassembled per tool-call index; the usage chunk becomes the
// body's "usage". A Whole first chunk is returned verbatim. The usage is nil
// when the stream reported none.
//
// Collect does not close s. When Next fails with anything but io.EOF,
// Collect returns that error and the usage seen so far.
func Collect(s Stream) ([]byte, *Usage, error) {
	var g gatherer
	for first := true; ; first = false {
		c, err := s.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, g.usage, err
		}
		if c == nil {
			continue
		}
		if first && c.Whole {
			u := c.Usage
			if u == nil {
				var body struct {
					Usage json.RawMessage `json:"usage"`
				}
				if json.Unmarshal(c.Data, &body) == nil {
					u = decodeUsage(body.Usage)
				}
			}
			return c.Data, u, nil
		}
		if err := g.add(c); err != nil {
			return nil, g.usage, err
		}
	}
	if !g.seen {
		return nil, nil, &Error{Kind: KindUpstream, Message: "upstream sent an empty reply"}
	}
	return g.body()
}

// chunkJSON is the part of a chat.completion.chunk that Collect reads.
type chunkJSON struct {
	ID                string          `json:"id"`
	Created           int64           `json:"created"`
	Model             string          `json:"model"`
	SystemFingerprint json.RawMessage `json:"system_fingerprint"`
	ServiceTier       json.RawMessage `json:"service_tier"`
	Choices           []struct {
		Index int `json:"index"`
		Delta struct {
			Role         string            `json:"role"`
			Content      *string           `json:"content"`
			Refusal      *string           `json:"refusal"`
			ToolCalls    []toolCallDelta   `json:"tool_calls"`
			FunctionCall *functionJSON     `json:"function_call"`
			Annotations  []json.RawMessage `json:"annotations"`
		} `json:"delta"`
		Logprobs *struct {
			Content []json.RawMessage `json:"content"`
			Refusal []json.RawMessage `json:"refusal"`
		} `json:"logprobs"`
		FinishReason *string `json:"finish_reason"`
	} `json:"choices"`
	Usage json.RawMessage `json:"usage"`
}

type toolCallDelta struct {
	Index    int          `json:"index"`
	ID       string       `json:"id"`
	Type     string       `json:"type"`
	Function functionJSON `json:"function"`
}

type functionJSON struct {
	Name      string `json:"name"`
	Arguments string `json:"arguments"`
}

// gatherer accumulates chunks into a chat.completion.
type gatherer struct {
	seen        bool
	id, model   string
	created     int64
	fingerprint json.RawMessage
	serviceTier json.RawMessage
	choices     map[int]*choiceAcc
	usageJSON   json.RawMessage
	usage       *Usage
}

type choiceAcc struct {
	role        string
	content     strings.Builder
	hasContent  bool
	refusal     strings.Builder
	hasRefusal  bool
	calls       []*callAcc
	byIndex     map[int]*callAcc // the latest call seen at each index
	fn          *functionJSON
	annotations []json.RawMessage
	logprobs    bool
	lpContent   []json.RawMessage
	lpRefusal   []json.RawMessage
	finish      *string
}

type callAcc struct {
	id, typ, name string
	args          strings.Builder
}

func (g *gatherer) add(c *Chunk) error {
	var cj chunkJSON
	if err := json.Unmarshal(c.Data, &cj); err != nil {
		return &Error{Kind: KindUpstream, Message: "upstream sent an invalid chunk", Err: err}
	}
	g.seen = true
	if g.id == "" {
		g.id, g.created = cj.ID, cj.Created
	}
	if cj.Model != "" {
		g.model = cj.Model
	}
	if isSet(cj.SystemFingerprint) {
		g.fingerprint = cj.SystemFingerprint
	}
	if isSet(cj.ServiceTier) {
		g.serviceTier = cj.ServiceTier
	}
	if isSet(cj.Usage) {
		g.usageJSON = cj.Usage
		g.usage = decodeUsage(cj.Usage)
	}
	if c.Usage != nil {
		g.usage = c.Usage
	}
	if g.choices == nil {
		g.choices = make(map[int]*choiceAcc, 1)
	}
	for _, ch := range cj.Choices {
		a := g.choices[ch.Index]
		if a == nil {
			a = &choiceAcc{byIndex: map[int]*callAcc{}}
			g.choices[ch.Index] = a
		}
		d := ch.Delta
		if d.Role != "" {
			a.role = d.Role
		}
		if d.Content != nil {
			a.content.WriteString(*d.Content)
			a.hasContent = a.hasContent || *d.Content != ""
		}
		if d.Refusal != nil {
			a.refusal.WriteString(*d.Refusal)
			a.hasRefusal = true
		}
		for _, tc := range d.ToolCalls {
			a.addCall(tc)
		}
		if f := d.FunctionCall; f != nil {
			if a.fn == nil {
				a.fn = &functionJSON{}
			}
			a.fn.Name += f.Name
			a.fn.Arguments += f.Arguments
		}
		a.annotations = append(a.annotations, d.Annotations...)
		if lp := ch.Logprobs; lp != nil {
			a.logprobs = true
			a.lpContent = append(a.lpContent, lp.Content...)
			a.lpRefusal = append(a.lpRefusal, lp.Refusal...)
		}
		if ch.FinishReason != nil {
			a.finish = ch.FinishReason
		}
	}
	return nil
}

// addCall folds one tool-call delta in. OpenAI sends id, type and name once
// and then argument fragments under the same index; some compatible servers
// repeat the id or name on every delta, or reuse index 0 for parallel calls
// with fresh ids, which start a new call here.
func (a *choiceAcc) addCall(tc toolCallDelta) {
	c := a.byIndex[tc.Index]
	if c == nil || (tc.ID != "" && c.id != "" && tc.ID != c.id) {
		c = &callAcc{}
		a.calls = append(a.calls, c)
		a.byIndex[tc.Index] = c
	}
	if c.id == "" {
		c.id = tc.ID
	}
	if c.typ == "" {
		c.typ = tc.Type
	}
	if n := tc.Function.Name; n != "" && n != c.name {
		c.name += n
	}
	c.args.WriteString(tc.Function.Arguments)
}

func isSet(raw json.RawMessage) bool { return len(raw) > 0 && string(raw) != "null" }

// decodeUsage reads an OpenAI usage object, or returns nil.
func decodeUsage(raw json.RawMessage) *Usage {
	if !isSet(raw) {
		return nil
	}
	var u struct {
		Usage
		Prompt struct {
			Cached int `json:"cached_tokens"`
		} `json:"prompt_tokens_details"`
		Completion struct {
			Reasoning int `json:"reasoning_tokens"`
		} `json:"completion_tokens_details"`
	}
	if json.Unmarshal(raw, &u) != nil {
		return nil
	}
	u.Usage.CachedTokens = u.Prompt.Cached
	u.Usage.ReasoningTokens = u.Completion.Reasoning
	u.Usage.Clamp()
	return &u.Usage
}

type completionJSON struct {
	ID                string          `json:"id"`
	Object            string          `json:"object"`
	Created           int64           `json:"created"`
	Model             string          `json:"model"`
	Choices           []choiceJSON    `json:"choices"`
	Usage             json.RawMessage `json:"usage,omitempty"`
	ServiceTier       json.RawMessage `json:"service_tier,omitempty"`
	SystemFingerprint json.RawMessage `json:"system_fingerprint,omitempty"`
}

type choiceJSON struct {
	Index        int           `json:"index"`
	Message      messageJSON   `json:"message"`
	Logprobs     *logprobsJSON `json:"logprobs"`
	FinishReason *string       `json:"finish_reason"`
}

type messageJSON struct {
	Role         string            `json:"role"`
	Content      *string           `json:"content"`
	Refusal      *string           `json:"refusal"`
	ToolCalls    []toolCallJSON    `json:"tool_calls,omitempty"`
	FunctionCall *functionJSON     `json:"function_call,omitempty"`
	Annotations  []json.RawMessage `json:"annotations,omitempty"`
}

type toolCallJSON struct {
	ID       string       `json:"id"`
	Type     string       `json:"type"`
	Function functionJSON `json:"function"`
}

type logprobsJSON struct {
	Content []json.RawMessage `json:"content"`
	Refusal []json.RawMessage `json:"refusal"`
}

func (g *gatherer) body() ([]byte, *Usage, error) {
	out := completionJSON{
		ID: g.id, Object: "chat.completion", Created: g.created, Model: g.model,
		Choices:     make([]choiceJSON, 0, len(g.choices)),
		Usage:       g.usageJSON,
		ServiceTier: g.serviceTier, SystemFingerprint: g.fingerprint,
	}
	if out.Usage == nil && g.usage != nil {
		out.Usage, _ = json.Marshal(g.usage)
	}
	idx := make([]int, 0, len(g.choices))
	for i := range g.choices {
		idx = append(idx, i)
	}
	sort.Ints(idx)
	for _, i := range idx {
		out.Choices = append(out.Choices, g.choices[i].choice(i))
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // keep "<" and "&" in the text as the upstream sent them
	if err := enc.Encode(out); err != nil {
		return nil, g.usage, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), g.usage, nil
}

func (a *choiceAcc) choice(index int) choiceJSON {
	m := messageJSON{Role: a.role, FunctionCall: a.fn, Annotations: a.annotations}
	if m.Role == "" {
		m.Role = "assistant"
	}
	// OpenAI sends content null when the message is only tool calls or a
	// refusal, and a string otherwise.
	if a.hasContent || (len(a.calls) == 0 && a.fn == nil && !a.hasRefusal) {
		s := a.content.String()
		m.Content = &s
	}
	if a.hasRefusal {
		s := a.refusal.String()
		m.Refusal = &s
	}
	for _, c := range a.calls {
		typ := c.typ
		if typ == "" {
			typ = "function"
		}
		m.ToolCalls = append(m.ToolCalls, toolCallJSON{ID: c.id, Type: typ, Function: functionJSON{Name: c.name, Arguments: c.args.String()}})
	}
	ch := choiceJSON{Index: index, Message: m, FinishReason: a.finish}
	if a.logprobs {
		ch.Logprobs = &logprobsJSON{Content: a.lpContent, Refusal: a.lpRefusal}
	}
	return ch
}
