package memory

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"time"

	"llmproxy/router"
	"llmproxy/telemetry"
)

// saveTimeout bounds saving a turn; it runs after the request's context
// may have ended.
const saveTimeout = 10 * time.Second

// turnStream relays the reply and saves the turn when it completed.
type turnStream struct {
	inner      router.Stream
	m          *Memory
	ctx        context.Context
	team, conv string
	alias      string
	turn       []Message // the request's new messages
	reply      reply
	done       bool
}

// Next relays a chunk. The reply is complete at the first io.EOF, or at a
// whole (non-streamed) completion, which router.Collect reads no further
// than; the turn is saved before that is returned, so a streamed reply's
// [DONE] (and a plain reply's body) reaches the client only after the turn
// is stored, and a client that sends its next turn at once finds this
// one. A failed or cancelled reply never gets there and saves nothing, so
// the client can retry.
func (t *turnStream) Next() (*router.Chunk, error) {
	c, err := t.inner.Next()
	if err == nil {
		t.reply.add(c)
		if c != nil && c.Whole && !t.done {
			t.done = true
			t.save()
		}
		return c, nil
	}
	if err == io.EOF && !t.done {
		t.done = true
		t.save()
	}
	return c, err
}

// Close closes the inner stream; safe to call twice.
func (t *turnStream) Close() error { return t.inner.Close() }

func (t *turnStream) save() {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(t.ctx), saveTimeout)
	defer cancel()
	now := t.m.o.Now()
	msgs := make([]Message, 0, len(t.turn)+1)
	msgs = append(msgs, t.turn...)
	msgs = append(msgs, t.reply.message(t.m.o.Count, t.alias))
	for i := range msgs {
		msgs[i].ID = NewID("msg_")
		msgs[i].CreatedAt = now
	}
	ctx, sp := telemetry.Start(ctx, "memory.save")
	sp.SetString(telemetry.AttrConversation, t.conv)
	sp.SetInt("llmproxy.memory.messages", len(msgs))
	began := time.Now()
	err := t.m.o.Store.AppendMessages(ctx, t.team, t.conv, msgs, now)
	t.m.m.observe("save", began, err)
	if err != nil {
		// The reply went out; the client is told nothing, the operator is.
		t.m.o.Log.ErrorContext(t.ctx, "memory: save turn", slog.String("request_id", router.RequestID(t.ctx)),
			slog.Int("messages", len(msgs)), slog.Any("err", err))
	}
	sp.End(err)
}

// reply assembles the assistant message of choice 0 from a whole
// chat.completion or from streamed deltas.
type reply struct {
	content strings.Builder
	hasText bool
	calls   []toolCall
	model   string
}

type toolCall struct {
	Index    int    `json:"index"`
	ID       string `json:"id,omitempty"`
	Type     string `json:"type,omitempty"`
	Function struct {
		Name      string `json:"name,omitempty"`
		Arguments string `json:"arguments"`
	} `json:"function"`
}

type wireDelta struct {
	Content   *string    `json:"content"`
	ToolCalls []toolCall `json:"tool_calls"`
}

func (r *reply) add(c *router.Chunk) {
	if c == nil || c.UsageOnly {
		return
	}
	var body struct {
		Model   string `json:"model"`
		Choices []struct {
			Index   int        `json:"index"`
			Delta   *wireDelta `json:"delta"`
			Message *wireDelta `json:"message"`
		} `json:"choices"`
	}
	if json.Unmarshal(c.Data, &body) != nil {
		return
	}
	if r.model == "" {
		r.model = body.Model
	}
	for _, ch := range body.Choices {
		if ch.Index != 0 {
			continue
		}
		d := ch.Delta
		if c.Whole || d == nil {
			d = ch.Message
		}
		if d == nil {
			continue
		}
		if d.Content != nil {
			r.content.WriteString(*d.Content)
			r.hasText = true
		}
		for _, tc := range d.ToolCalls {
			r.addCall(tc, c.Whole)
		}
	}
}

// addCall merges a streamed tool-call delta into the call at its index
// (the first delta has id and name, later ones append arguments).
func (r *reply) addCall(tc toolCall, whole bool) {
	if whole {
		tc.Index = len(r.calls)
	}
	for i := range r.calls {
		if r.calls[i].Index == tc.Index {
			c := &r.calls[i]
			c.Function.Arguments += tc.Function.Arguments
			if c.ID == "" {
				c.ID = tc.ID
			}
			if c.Function.Name == "" {
				c.Function.Name = tc.Function.Name
			}
			return
		}
	}
	if tc.Type == "" {
		tc.Type = "function"
	}
	r.calls = append(r.calls, tc)
}

// message is the assembled assistant message.
func (r *reply) message(count func(model, text string) int, alias string) Message {
	text := r.content.String()
	content := json.RawMessage("null")
	if r.hasText || len(r.calls) == 0 {
		content, _ = json.Marshal(text)
	}
	m := Message{Role: "assistant", Content: content, Tokens: count(alias, text), Meta: MessageMeta{Model: r.model}}
	if len(r.calls) > 0 {
		type call struct {
			ID       string `json:"id"`
			Type     string `json:"type"`
			Function struct {
				Name      string `json:"name"`
				Arguments string `json:"arguments"`
			} `json:"function"`
		}
		calls := make([]call, len(r.calls))
		for i, c := range r.calls {
			calls[i].ID, calls[i].Type = c.ID, c.Type
			calls[i].Function.Name, calls[i].Function.Arguments = c.Function.Name, c.Function.Arguments
			m.Tokens += count(alias, c.Function.Name+c.Function.Arguments)
		}
		m.Meta.ToolCalls, _ = json.Marshal(calls)
	}
	return m
}
