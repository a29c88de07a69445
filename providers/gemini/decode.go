package gemini

import (
	"encoding/json"
	"strings"

	"llmproxy/router"
)

// decoder turns the events of streamGenerateContent?alt=sse into OpenAI
// chat.completion.chunk Chunks. Each event is a whole GenerateContentResponse
// holding the next parts of each candidate ("Generating content >
// streamGenerateContent"); the stream has no [DONE], so it ended normally
// only if every candidate sent a finishReason before the body ended.
//
// Per candidate (choice) the first chunk carries role "assistant"; text
// parts become content deltas; each functionCall part, which Gemini sends
// whole, becomes one tool-call delta with index, id, type, name and the
// complete arguments; the finishReason becomes a chunk with an empty delta.
// At the end one UsageOnly chunk (choices: []) carries the last
// usageMetadata seen, or a tokenizer estimate when there was none.
type decoder struct {
	meta     replyMeta
	cands    map[int]*candState
	usage    *usageMetadata
	calls    int // tool calls so far, for ids
	emitted  bool
	text     strings.Builder
	estimate func(completion string) router.Usage
	err      func(ge *googleError) error
}

type candState struct {
	started  bool
	calls    int // tool-call index within the choice
	finished bool
}

func newDecoder(meta replyMeta, estimate func(string) router.Usage, onError func(*googleError) error) *decoder {
	return &decoder{meta: meta, cands: map[int]*candState{}, estimate: estimate, err: onError}
}

// event decodes one event's data into zero or more chunks.
func (d *decoder) event(data []byte) ([]*router.Chunk, error) {
	var r genResponse
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, &router.Error{Kind: router.KindUpstream, Message: "Gemini sent a malformed stream event", Err: err}
	}
	if r.Error != nil {
		return nil, d.err(r.Error)
	}
	if r.PromptFeedback != nil && r.PromptFeedback.BlockReason != "" && len(r.Candidates) == 0 {
		return nil, blocked(r.PromptFeedback.BlockReason)
	}
	if r.ModelVersion != "" {
		d.meta.Model = r.ModelVersion
	}
	if r.ResponseID != "" && !d.emitted {
		d.meta.ID = "chatcmpl-" + r.ResponseID // clients reject an id that changes mid-stream
	}
	if r.UsageMetadata != nil {
		d.usage = r.UsageMetadata
	}
	var out []*router.Chunk
	var deltas, finishes []oaChunkChoice
	for _, c := range r.Candidates {
		st := d.cands[c.Index]
		if st == nil {
			st = &candState{}
			d.cands[c.Index] = st
		}
		text := candidateText(c.Content)
		if text != "" || !st.started {
			ch := oaChunkChoice{Index: c.Index, Delta: oaDelta{Content: &text}}
			if !st.started {
				ch.Delta.Role, st.started = "assistant", true
			}
			deltas = append(deltas, ch)
			d.text.WriteString(text)
		}
		if c.Content != nil {
			for _, p := range c.Content.Parts {
				if fc := p.FunctionCall; fc != nil {
					out = append(out, d.callChunk(c.Index, st, fc))
				}
			}
		}
		if c.FinishReason != "" && !st.finished {
			st.finished = true
			fr := finishReason(c.FinishReason, st.calls > 0)
			finishes = append(finishes, oaChunkChoice{Index: c.Index, FinishReason: &fr})
		}
	}
	if len(deltas) > 0 {
		// Text before tool calls, as the parts came.
		out = append([]*router.Chunk{d.chunk(deltas, nil)}, out...)
	}
	if len(finishes) > 0 {
		out = append(out, d.chunk(finishes, nil))
	}
	return out, nil
}

// callChunk is one complete tool-call delta.
func (d *decoder) callChunk(index int, st *candState, fc *functionCall) *router.Chunk {
	i := st.calls
	st.calls++
	args := callArgs(fc)
	d.text.WriteString(fc.Name + args)
	tc := oaToolCall{Index: &i, ID: callID(fc, d.calls), Type: "function", Function: oaFunction{Name: fc.Name, Arguments: args}}
	d.calls++
	return d.chunk([]oaChunkChoice{{Index: index, Delta: oaDelta{ToolCalls: []oaToolCall{tc}}}}, nil)
}

// end is called when the body ended cleanly: it returns the usage chunk,
// or an error when some candidate never finished (a truncated stream).
func (d *decoder) end() (*router.Chunk, error) {
	if !d.finished() {
		return nil, &router.Error{Kind: router.KindUpstream, Message: "upstream closed the stream early"}
	}
	var u router.Usage
	if d.usage != nil {
		u = toUsage(d.usage)
	} else {
		u = d.estimate(d.text.String())
	}
	ch := d.chunk([]oaChunkChoice{}, wireUsage(u))
	ch.Usage, ch.UsageOnly = &u, true
	return ch, nil
}

func (d *decoder) finished() bool {
	if len(d.cands) == 0 {
		return false
	}
	for _, st := range d.cands {
		if !st.finished {
			return false
		}
	}
	return true
}

func (d *decoder) chunk(choices []oaChunkChoice, u *oaUsage) *router.Chunk {
	d.emitted = true
	b, _ := marshal(oaChunk{ID: d.meta.ID, Object: "chat.completion.chunk", Created: d.meta.Created,
		Model: d.meta.Model, Choices: choices, Usage: u}) // plain structs always encode
	return &router.Chunk{Data: b, Model: d.meta.Model}
}
