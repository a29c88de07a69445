package anthropic

import (
	"encoding/json"
	"errors"
	"strconv"
	"time"

	"llmproxy/router"
)

// wireEvent is any Messages stream event (Messages API > Streaming
// Messages > Event types); each type fills its own fields.
type wireEvent struct {
	Type         string       `json:"type"`
	Message      *msgResponse `json:"message"`       // message_start
	Index        int          `json:"index"`         // content_block_*
	ContentBlock *replyBlock  `json:"content_block"` // content_block_start
	Delta        *struct {
		Type        string `json:"type"`         // text_delta, input_json_delta, thinking_delta...
		Text        string `json:"text"`         // text_delta
		PartialJSON string `json:"partial_json"` // input_json_delta
		StopReason  string `json:"stop_reason"`  // message_delta
	} `json:"delta"`
	Usage *wireUsage      `json:"usage"` // message_delta, cumulative
	Error json.RawMessage `json:"error"` // error
}

// blockKind is how a content block's deltas are forwarded.
type blockKind int

const (
	blockSkip blockKind = iota // thinking, server tools: not part of an OpenAI reply
	blockText
	blockTool // a client tool call: deltas are argument fragments
	blockJSON // the response_format tool: deltas are content
)

type blockState struct {
	kind blockKind
	tool int  // OpenAI tool-call index: counts tool calls, not blocks
	sent bool // some input reached the client
}

// decoder turns Anthropic stream events into OpenAI chunks. It is pure (no
// I/O) so it can be fuzzed; one decoder serves one stream.
type decoder struct {
	jsonTool bool
	now      func() time.Time
	started  bool
	head     []byte // `{"id":…,"object":…,"created":…,"model":…,"choices":`
	model    string
	usage    wireUsage
	blocks   map[int]*blockState
	tools    int
	finished bool // the finish_reason chunk went out
	done     bool // message_stop seen
}

var errBeforeStart = errors.New("event before message_start")

func newDecoder(jsonTool bool, now func() time.Time) *decoder {
	return &decoder{jsonTool: jsonTool, now: now, blocks: map[int]*blockState{}}
}

type deltaJSON struct {
	Role      string         `json:"role,omitempty"`
	Content   *string        `json:"content,omitempty"`
	ToolCalls []toolCallJSON `json:"tool_calls,omitempty"`
}

// event appends the chunks one event yields (usually none or one) to out.
// name is the SSE event name, used only when the data has no "type".
func (d *decoder) event(out []*router.Chunk, name string, data []byte) ([]*router.Chunk, error) {
	if d.done || len(data) == 0 {
		return out, nil
	}
	var ev wireEvent
	if err := json.Unmarshal(data, &ev); err != nil {
		return out, err
	}
	if ev.Type == "" {
		ev.Type = name
	}
	switch ev.Type {
	case "error":
		return out, &wireErrorReply{raw: ev.Error}
	case "ping":
		return out, nil
	case "message_start":
		if d.started || ev.Message == nil {
			return out, errors.New("unexpected message_start")
		}
		d.start(ev.Message)
		empty := ""
		return d.delta(out, deltaJSON{Role: "assistant", Content: &empty})
	}
	if !d.started {
		return out, errBeforeStart
	}
	switch ev.Type {
	case "content_block_start":
		return d.blockStart(out, ev.Index, ev.ContentBlock)
	case "content_block_delta":
		b := d.blocks[ev.Index]
		if b == nil || ev.Delta == nil {
			return out, nil
		}
		switch {
		case b.kind == blockText && ev.Delta.Type == "text_delta" && ev.Delta.Text != "":
			return d.delta(out, deltaJSON{Content: &ev.Delta.Text})
		case b.kind == blockTool && ev.Delta.Type == "input_json_delta" && ev.Delta.PartialJSON != "":
			b.sent = true
			return d.toolArgs(out, b.tool, ev.Delta.PartialJSON)
		case b.kind == blockJSON && ev.Delta.Type == "input_json_delta" && ev.Delta.PartialJSON != "":
			b.sent = true
			return d.delta(out, deltaJSON{Content: &ev.Delta.PartialJSON})
		}
	case "content_block_stop":
		b := d.blocks[ev.Index]
		if b == nil || b.sent {
			return out, nil
		}
		// A call without arguments streams no input_json_delta; clients
		// parse the arguments, so send the empty object.
		b.sent = true
		empty := "{}"
		switch b.kind {
		case blockTool:
			return d.toolArgs(out, b.tool, empty)
		case blockJSON:
			return d.delta(out, deltaJSON{Content: &empty})
		}
	case "message_delta":
		if ev.Usage != nil {
			d.usage.merge(*ev.Usage)
		}
		if ev.Delta != nil && ev.Delta.StopReason != "" && !d.finished {
			return d.finish(out, ev.Delta.StopReason)
		}
	case "message_stop":
		d.done = true
		if !d.finished {
			var err error
			if out, err = d.finish(out, "end_turn"); err != nil {
				return out, err
			}
		}
		return d.usageChunk(out)
	}
	// Unknown event types are skipped: Anthropic may add new ones
	// (Streaming Messages > Other events).
	return out, nil
}

func (d *decoder) start(m *msgResponse) {
	d.started = true
	d.model = m.Model
	d.usage = m.Usage
	h := append([]byte(`{"id":`), quote(completionID(m.ID))...)
	h = append(h, `,"object":"chat.completion.chunk","created":`...)
	h = strconv.AppendInt(h, d.now().Unix(), 10)
	h = append(h, `,"model":`...)
	h = append(h, quote(m.Model)...)
	d.head = append(h, `,"choices":`...)
}

func (d *decoder) blockStart(out []*router.Chunk, index int, cb *replyBlock) ([]*router.Chunk, error) {
	if cb == nil {
		return out, errors.New("content_block_start without content_block")
	}
	b := &blockState{}
	d.blocks[index] = b
	switch cb.Type {
	case "text":
		b.kind = blockText
		if cb.Text != "" {
			return d.delta(out, deltaJSON{Content: &cb.Text})
		}
	case "tool_use":
		if d.jsonTool && cb.Name == jsonToolName {
			b.kind = blockJSON
			return out, nil
		}
		b.kind, b.tool = blockTool, d.tools
		d.tools++
		// The first delta of a call carries index, id, type and name, and
		// empty arguments: what OpenAI sends and SDK accumulators expect.
		// Anthropic starts tool_use with input {}; anything else is kept.
		args := ""
		if in := compactObject(cb.Input); in != "{}" {
			args, b.sent = in, true
		}
		i := b.tool
		return d.delta(out, deltaJSON{ToolCalls: []toolCallJSON{{Index: &i, ID: cb.ID, Type: "function",
			Function: functionJSON{Name: cb.Name, Arguments: args}}}})
	}
	return out, nil
}

func (d *decoder) toolArgs(out []*router.Chunk, index int, args string) ([]*router.Chunk, error) {
	return d.delta(out, deltaJSON{ToolCalls: []toolCallJSON{{Index: &index, Function: functionJSON{Arguments: args}}}})
}

// delta appends a chunk with one choice holding delta.
func (d *decoder) delta(out []*router.Chunk, delta deltaJSON) ([]*router.Chunk, error) {
	return d.choice(out, delta, "")
}

func (d *decoder) finish(out []*router.Chunk, stop string) ([]*router.Chunk, error) {
	d.finished = true
	return d.choice(out, deltaJSON{}, finishReason(stop, d.jsonTool))
}

func (d *decoder) choice(out []*router.Chunk, delta deltaJSON, finish string) ([]*router.Chunk, error) {
	db, err := marshal(delta)
	if err != nil {
		return out, err
	}
	b := make([]byte, 0, len(d.head)+len(db)+80)
	b = append(b, d.head...)
	b = append(b, `[{"index":0,"delta":`...)
	b = append(b, db...)
	b = append(b, `,"logprobs":null,"finish_reason":`...)
	if finish == "" {
		b = append(b, "null"...)
	} else {
		b = append(b, quote(finish)...)
	}
	b = append(b, "}]}"...)
	return append(out, &router.Chunk{Data: b, Model: d.model}), nil
}

// usageChunk is OpenAI's trailing choices: [] chunk; the router drops it
// when the client did not ask for include_usage.
func (d *decoder) usageChunk(out []*router.Chunk) ([]*router.Chunk, error) {
	u := d.usage.usage()
	ub, err := marshal(openaiUsage(u))
	if err != nil {
		return out, err
	}
	b := append(append([]byte(nil), d.head...), `[],"usage":`...)
	b = append(b, ub...)
	b = append(b, '}')
	return append(out, &router.Chunk{Data: b, Model: d.model, Usage: u, UsageOnly: true}), nil
}

func quote(s string) []byte {
	b, _ := marshal(s) // a string always marshals
	return b
}
