package memory

import (
	"context"
	"encoding/json"
	"errors"
	"time"
)

// ErrNotFound is returned by a Store for a conversation or item that does
// not exist or belongs to another team: callers cannot tell the two apart.
var ErrNotFound = errors.New("memory: not found")

// Conversation is one stored conversation, owned by a team.
type Conversation struct {
	ID     string
	Team   string
	UserID string // the request's "user" or "safety_identifier"
	Title  string
	Model  string
	// Metadata is OpenAI's metadata: up to 16 string pairs.
	Metadata  map[string]string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Message is one stored chat message (a conversation item).
type Message struct {
	ID   string
	Seq  int64 // order within the conversation, assigned by the Store
	Role string
	// Content is the message's content as JSON: a string or an array of
	// parts, replayed to the upstream as it was sent.
	Content json.RawMessage
	// Tokens is the content's token count, counted once when saved so that
	// loading history never tokenizes.
	Tokens    int
	Meta      MessageMeta
	CreatedAt time.Time
}

// MessageMeta is what a message carries besides its content; stores keep
// it as one JSON column.
type MessageMeta struct {
	ToolCalls  json.RawMessage `json:"tool_calls,omitempty"`
	ToolCallID string          `json:"tool_call_id,omitempty"`
	Name       string          `json:"name,omitempty"`
	// Model is the upstream model that wrote an assistant message.
	Model string `json:"model,omitempty"`
	// Sources are the documents a reply cited (rag); the context itself
	// is never stored.
	Sources json.RawMessage `json:"sources,omitempty"`
}

// Page selects a slice of a list: after the row with id After (exclusive),
// at most Limit rows, newest first when Desc.
type Page struct {
	After string
	Limit int
	Desc  bool
}

// History is what the middleware needs from storage.
type History interface {
	// CreateConversation stores c (its ID set) with items as its first
	// messages, in one transaction.
	CreateConversation(ctx context.Context, c *Conversation, items []Message) error
	// LoadHistory returns team's conversation id and all its messages in
	// order; ErrNotFound when it is unknown or another team's.
	LoadHistory(ctx context.Context, team, id string) (*Conversation, []Message, error)
	// AppendMessages adds msgs after the conversation's last message and
	// sets its updated_at to at, in one transaction; concurrent calls on
	// one conversation are serialised, none lost. It fills in each
	// message's Seq. ErrNotFound as for LoadHistory.
	AppendMessages(ctx context.Context, team, id string, msgs []Message, at time.Time) error
}

// Conversations is what the Conversations API needs besides History.
type Conversations interface {
	// GetConversation returns team's conversation id, or ErrNotFound.
	GetConversation(ctx context.Context, team, id string) (*Conversation, error)
	// UpdateConversation replaces the metadata, or ErrNotFound.
	UpdateConversation(ctx context.Context, team, id string, metadata map[string]string, at time.Time) (*Conversation, error)
	// DeleteConversation deletes it and its messages, or ErrNotFound.
	DeleteConversation(ctx context.Context, team, id string) error
}

// Lists is the listing and item side of the Conversations API.
type Lists interface {
	// ListConversations lists team's conversations by creation time.
	ListConversations(ctx context.Context, team string, p Page) ([]Conversation, error)
	// ListMessages lists a conversation's messages by Seq; ErrNotFound
	// when the conversation is unknown or another team's.
	ListMessages(ctx context.Context, team, id string, p Page) ([]Message, error)
}

// Items reads and deletes single conversation items.
type Items interface {
	// GetMessage returns one message, or ErrNotFound.
	GetMessage(ctx context.Context, team, id, msgID string) (*Message, error)
	// DeleteMessage deletes one message, or ErrNotFound.
	DeleteMessage(ctx context.Context, team, id, msgID string) error
}

// Sweeper deletes idle conversations (retention.go).
type Sweeper interface {
	// DeleteIdle deletes the conversations not updated since before and
	// returns how many. With several replicas on one database, one runs
	// it at a time and the others return 0.
	DeleteIdle(ctx context.Context, before time.Time) (int64, error)
}

// Store is all of the above: what store/sqlite and store/postgres
// implement.
type Store interface {
	History
	Conversations
	Lists
	Items
	Sweeper
}
