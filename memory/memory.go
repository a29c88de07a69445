package memory

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"llmproxy/router"
	"llmproxy/telemetry"
)

// Options configure a Memory.
type Options struct {
	// Store holds the conversations. Required.
	Store Store
	// Count returns the token count of text for the alias model; cmd/proxy
	// passes the budget's tokenizer. Required.
	Count func(model, text string) int
	// ContextWindow returns the alias's context window in tokens, 0 when
	// unknown (history is then not trimmed unless MaxHistoryTokens is set).
	ContextWindow func(alias string) int
	// MaxHistoryTokens, when positive, is the most tokens of stored history
	// put in front of a request, whatever the model's window.
	MaxHistoryTokens int
	// Log receives save failures. Required.
	Log *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Registerer, when set, exports memory's metrics
	// (llmproxy_memory_*).
	Registerer prometheus.Registerer
}

// Memory is the conversation middleware and the Conversations API logic.
type Memory struct {
	o Options
	m *metrics
}

// New checks o and returns a Memory.
func New(o Options) (*Memory, error) {
	if o.Store == nil || o.Count == nil || o.Log == nil {
		return nil, errors.New("memory: Store, Count and Log are required")
	}
	if o.MaxHistoryTokens < 0 {
		return nil, fmt.Errorf("memory: negative MaxHistoryTokens %d", o.MaxHistoryTokens)
	}
	if o.ContextWindow == nil {
		o.ContextWindow = func(string) int { return 0 }
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Memory{o: o, m: newMetrics(o.Registerer)}, nil
}

// Middleware returns the chain stage. It serves chat only; router.Chain
// passes embeddings to the stage inside it.
func (m *Memory) Middleware() router.Middleware {
	return func(next router.Handler) router.Handler {
		return router.HandlerFunc(func(ctx context.Context, req *router.ChatRequest) (router.Stream, error) {
			return m.serve(ctx, req, next)
		})
	}
}

// NewRef is the conversation reference that asks for a new conversation.
const NewRef = "new"

func (m *Memory) serve(ctx context.Context, req *router.ChatRequest, next router.Handler) (router.Stream, error) {
	ref, err := reference(req)
	if err != nil || ref == "" {
		if err != nil {
			return nil, err
		}
		return next.Serve(ctx, req)
	}
	id, _ := router.IdentityFrom(ctx)
	msgs, err := req.Messages()
	if err != nil {
		return nil, err
	}
	turn := m.newMessages(req.Model, msgs)
	if req.DryRun && ref == NewRef {
		req.Result.Note("memory", "would create a conversation; no history to add")
		return next.Serve(ctx, req)
	}
	lctx, sp := telemetry.Start(ctx, "memory.load")
	began := time.Now()
	conv, hist, err := m.open(lctx, id.Team, ref, req, msgs)
	m.m.observe("load", began, err)
	if err != nil {
		sp.End(err)
		return nil, err
	}
	sp.SetString(telemetry.AttrConversation, conv.ID)
	sp.SetInt("llmproxy.memory.messages", len(hist))
	sp.End(nil)
	req, res := req.WithResult()
	res.Conversation = conv.ID
	limit := m.historyLimit(req, turn)
	kept, dropped := Fit(hist, limit)
	res.MemoryDropped = dropped
	if !req.DryRun {
		m.m.dropped.Add(float64(dropped))
	}
	if req.DryRun {
		req.Result.Note("memory", fmt.Sprintf("would add %d stored messages of %s (%d oldest turns dropped to fit)", len(kept), conv.ID, dropped))
	}
	if len(kept) > 0 {
		all := make([]json.RawMessage, 0, len(kept)+len(msgs))
		for i := range kept {
			all = append(all, wireMessage(&kept[i]))
		}
		for i := range msgs {
			b, _ := json.Marshal(msgs[i])
			all = append(all, b)
		}
		b, err := json.Marshal(all)
		if err != nil {
			return nil, fmt.Errorf("memory: encode messages: %w", err)
		}
		req.Body = router.SetField(req.Body, "messages", b)
		// The guard counts the prompt again, history included.
		req.PromptTokens, req.PromptTokensExact = 0, nil
	}
	st, err := next.Serve(ctx, req)
	if err != nil || req.DryRun {
		return st, err // a dry run saves nothing
	}
	return &turnStream{inner: st, m: m, ctx: ctx, team: id.Team, conv: conv.ID, alias: req.Model, turn: turn}, nil
}

// reference returns the conversation the request names, "" for none, and
// removes the body field: it is ours, not the upstream's.
func reference(req *router.ChatRequest) (string, error) {
	ref := req.Conversation
	v := router.TopField(req.Body, "conversation")
	if v == nil {
		return ref, nil
	}
	req.Body = router.DeleteField(req.Body, "conversation")
	var s string
	if string(v) == "null" {
		return ref, nil
	}
	if json.Unmarshal(v, &s) != nil {
		// The Responses API's shape: {"id": "conv_…"}.
		var o struct {
			ID string `json:"id"`
		}
		if json.Unmarshal(v, &o) != nil || o.ID == "" {
			return "", &router.Error{Kind: router.KindInvalidRequest, Param: "conversation",
				Message: "Invalid type for 'conversation': expected a conversation id string."}
		}
		s = o.ID
	}
	if ref != "" && s != ref {
		return "", &router.Error{Kind: router.KindInvalidRequest, Param: "conversation",
			Message: "The conversation in the body differs from the x-llmproxy-conversation header."}
	}
	return s, nil
}

// open creates the conversation for "new", else loads it with its
// history. An unknown or foreign id is a 404.
func (m *Memory) open(ctx context.Context, team, ref string, req *router.ChatRequest, msgs []router.Message) (*Conversation, []Message, error) {
	if ref == NewRef {
		now := m.o.Now()
		c := &Conversation{ID: NewID("conv_"), Team: team, UserID: userOf(req), Model: req.Model,
			Title: titleOf(msgs), CreatedAt: now, UpdatedAt: now}
		if err := m.o.Store.CreateConversation(ctx, c, nil); err != nil {
			return nil, nil, fmt.Errorf("memory: create conversation: %w", err)
		}
		return c, nil, nil
	}
	c, hist, err := m.o.Store.LoadHistory(ctx, team, ref)
	if errors.Is(err, ErrNotFound) {
		return nil, nil, notFound("conversation", ref)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("memory: load history: %w", err)
	}
	return c, hist, nil
}

func notFound(what, id string) *router.Error {
	return &router.Error{Kind: router.KindNotFound, Param: what,
		Message: fmt.Sprintf("No %s found with id '%s'.", what, router.Clip(id))}
}

// historyLimit is how many tokens of history fit: memory.max_history_tokens
// when set, else the model's window less the completion cap, a margin and
// the request's own messages; -1 means no limit (window unknown).
func (m *Memory) historyLimit(req *router.ChatRequest, turn []Message) int {
	if m.o.MaxHistoryTokens > 0 {
		return m.o.MaxHistoryTokens
	}
	w := m.o.ContextWindow(req.Model)
	if w <= 0 {
		return -1
	}
	reply := req.MaxTokens
	if reply <= 0 {
		reply = min(defaultReplyReserve, w/4)
	}
	own := 0
	for i := range turn {
		own += turn[i].Tokens + perMessageTokens
	}
	return max(w-reply*max(req.N, 1)-margin-own, 0)
}

const (
	// defaultReplyReserve is the room kept for a reply when the request
	// sets no cap.
	defaultReplyReserve = 4096
	// margin covers the chat template and counting differences between
	// our tokenizer and the upstream's.
	margin = 256
	// perMessageTokens is the template's cost of one message.
	perMessageTokens = 4
)

// newMessages are the request's messages that become part of the
// conversation: all but system and developer instructions, which the
// client resends each turn.
func (m *Memory) newMessages(model string, msgs []router.Message) []Message {
	var out []Message
	for _, msg := range msgs {
		if msg.Role == "system" || msg.Role == "developer" {
			continue
		}
		content := msg.Content
		if len(content) == 0 {
			content = json.RawMessage("null")
		}
		out = append(out, Message{Role: msg.Role, Content: content,
			Tokens: m.o.Count(model, msg.Text()) + len(msg.ToolCalls)/4,
			Meta:   MessageMeta{ToolCalls: msg.ToolCalls, ToolCallID: msg.ToolCallID, Name: msg.Name}})
	}
	return out
}

// wireMessage is msg as a chat-completions message.
func wireMessage(msg *Message) json.RawMessage {
	w := router.Message{Role: msg.Role, Content: msg.Content, Name: msg.Meta.Name,
		ToolCalls: msg.Meta.ToolCalls, ToolCallID: msg.Meta.ToolCallID}
	if string(w.Content) == "null" && len(w.ToolCalls) == 0 {
		w.Content = json.RawMessage(`""`)
	}
	b, _ := json.Marshal(w)
	return b
}

func userOf(req *router.ChatRequest) string {
	for _, k := range []string{"user", "safety_identifier"} {
		var s string
		if v := req.Field(k); v != nil && json.Unmarshal(v, &s) == nil && s != "" {
			return router.Clip(s)
		}
	}
	return ""
}

// titleOf is the first user message's text, clipped.
func titleOf(msgs []router.Message) string {
	for _, m := range msgs {
		if m.Role == "user" {
			t := []rune(m.Text())
			if len(t) > 80 {
				t = append(t[:79], '…')
			}
			return string(t)
		}
	}
	return ""
}

// NewID returns prefix followed by 24 random bytes in hex, like OpenAI's
// conv_… and msg_… ids.
func NewID(prefix string) string {
	var b [24]byte
	_, _ = rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}
