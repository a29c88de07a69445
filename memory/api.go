package memory

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"unicode/utf8"

	"llmproxy/router"
)

// The Conversations API in OpenAI's shapes. cmd/proxy decodes the HTTP
// request, calls these methods with the caller's team and encodes what
// they return. Every id is team-scoped: another team's is a 404.

// ConversationObject is OpenAI's conversation object.
type ConversationObject struct {
	ID        string            `json:"id"`
	Object    string            `json:"object"` // "conversation"
	CreatedAt int64             `json:"created_at"`
	Metadata  map[string]string `json:"metadata"`
	// Title and Model are extensions: the first user message and the alias
	// of the request that created it.
	Title string `json:"title,omitempty"`
	Model string `json:"model,omitempty"`
}

// Deleted answers a deleted conversation.
type Deleted struct {
	ID      string `json:"id"`
	Object  string `json:"object"` // "conversation.deleted"
	Deleted bool   `json:"deleted"`
}

// List is OpenAI's paginated list.
type List[T any] struct {
	Object  string  `json:"object"` // "list"
	Data    []T     `json:"data"`
	FirstID *string `json:"first_id"`
	LastID  *string `json:"last_id"`
	HasMore bool    `json:"has_more"`
}

// ListQuery holds a list's query parameters as received.
type ListQuery struct {
	Limit, After, Order string
}

const (
	defaultLimit = 20
	maxLimit     = 100
	maxItems     = 20 // items in one create or add call, OpenAI's limit
)

func (q ListQuery) page() (Page, error) {
	p := Page{After: q.After, Limit: defaultLimit, Desc: true}
	if q.Limit != "" {
		n, err := strconv.Atoi(q.Limit)
		if err != nil || n < 1 || n > maxLimit {
			return p, &router.Error{Kind: router.KindInvalidRequest, Param: "limit",
				Message: "Invalid 'limit': expected an integer from 1 to " + strconv.Itoa(maxLimit) + "."}
		}
		p.Limit = n
	}
	switch q.Order {
	case "", "desc":
	case "asc":
		p.Desc = false
	default:
		return p, &router.Error{Kind: router.KindInvalidRequest, Param: "order", Message: "Invalid 'order': expected 'asc' or 'desc'."}
	}
	return p, nil
}

func conversationObject(c *Conversation) ConversationObject {
	return ConversationObject{ID: c.ID, Object: "conversation", CreatedAt: c.CreatedAt.Unix(),
		Metadata: orEmpty(c.Metadata), Title: c.Title, Model: c.Model}
}

func orEmpty(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

// storeErr turns ErrNotFound into the client's 404.
func storeErr(err error, what, id string) error {
	if errors.Is(err, ErrNotFound) {
		return notFound(what, id)
	}
	return err
}

type createBody struct {
	Metadata map[string]string `json:"metadata"`
	Items    []json.RawMessage `json:"items"`
}

// CreateConversation is POST /v1/conversations.
func (m *Memory) CreateConversation(ctx context.Context, team string, body []byte) (*ConversationObject, error) {
	var b createBody
	if len(body) > 0 {
		if err := decode(body, &b); err != nil {
			return nil, err
		}
	}
	if err := checkMetadata(b.Metadata); err != nil {
		return nil, err
	}
	msgs, err := m.inputItems(b.Items, "")
	if err != nil {
		return nil, err
	}
	now := m.o.Now()
	c := &Conversation{ID: NewID("conv_"), Team: team, Metadata: b.Metadata, CreatedAt: now, UpdatedAt: now}
	for i := range msgs {
		msgs[i].CreatedAt = now
		if c.Title == "" && msgs[i].Role == "user" {
			c.Title = titleOf([]router.Message{{Role: "user", Content: msgs[i].Content}})
		}
	}
	if err := m.o.Store.CreateConversation(ctx, c, msgs); err != nil {
		return nil, fmt.Errorf("memory: create conversation: %w", err)
	}
	o := conversationObject(c)
	return &o, nil
}

// GetConversation is GET /v1/conversations/{id}.
func (m *Memory) GetConversation(ctx context.Context, team, id string) (*ConversationObject, error) {
	c, err := m.o.Store.GetConversation(ctx, team, id)
	if err != nil {
		return nil, storeErr(err, "conversation", id)
	}
	o := conversationObject(c)
	return &o, nil
}

// UpdateConversation is POST /v1/conversations/{id}: it replaces the
// metadata.
func (m *Memory) UpdateConversation(ctx context.Context, team, id string, body []byte) (*ConversationObject, error) {
	var b struct {
		Metadata *map[string]string `json:"metadata"`
	}
	if err := decode(body, &b); err != nil {
		return nil, err
	}
	if b.Metadata == nil {
		return nil, &router.Error{Kind: router.KindInvalidRequest, Param: "metadata", Message: "Missing required parameter: 'metadata'."}
	}
	if err := checkMetadata(*b.Metadata); err != nil {
		return nil, err
	}
	c, err := m.o.Store.UpdateConversation(ctx, team, id, *b.Metadata, m.o.Now())
	if err != nil {
		return nil, storeErr(err, "conversation", id)
	}
	o := conversationObject(c)
	return &o, nil
}

// DeleteConversation is DELETE /v1/conversations/{id}.
func (m *Memory) DeleteConversation(ctx context.Context, team, id string) (*Deleted, error) {
	if err := m.o.Store.DeleteConversation(ctx, team, id); err != nil {
		return nil, storeErr(err, "conversation", id)
	}
	return &Deleted{ID: id, Object: "conversation.deleted", Deleted: true}, nil
}

// ListConversations is GET /v1/conversations, an extension: the team's
// conversations, newest first by default.
func (m *Memory) ListConversations(ctx context.Context, team string, q ListQuery) (*List[ConversationObject], error) {
	p, err := q.page()
	if err != nil {
		return nil, err
	}
	want := p.Limit
	p.Limit++ // one more tells has_more
	cs, err := m.o.Store.ListConversations(ctx, team, p)
	if err != nil {
		return nil, err
	}
	out := &List[ConversationObject]{Object: "list", Data: []ConversationObject{}}
	if len(cs) > want {
		cs, out.HasMore = cs[:want], true
	}
	for i := range cs {
		out.Data = append(out.Data, conversationObject(&cs[i]))
	}
	if n := len(out.Data); n > 0 {
		out.FirstID, out.LastID = &out.Data[0].ID, &out.Data[n-1].ID
	}
	return out, nil
}

func decode(body []byte, v any) error {
	if err := json.Unmarshal(body, v); err != nil {
		return &router.Error{Kind: router.KindInvalidRequest, Message: "Invalid request body: " + router.Clip(err.Error())}
	}
	return nil
}

// checkMetadata applies OpenAI's limits: 16 pairs, keys up to 64
// characters, values up to 512.
func checkMetadata(md map[string]string) error {
	if len(md) > 16 {
		return &router.Error{Kind: router.KindInvalidRequest, Param: "metadata", Message: "Invalid 'metadata': at most 16 key-value pairs."}
	}
	for k, v := range md {
		if utf8.RuneCountInString(k) > 64 || utf8.RuneCountInString(v) > 512 {
			return &router.Error{Kind: router.KindInvalidRequest, Param: "metadata",
				Message: "Invalid 'metadata': keys are at most 64 characters and values at most 512."}
		}
	}
	return nil
}
