package memory

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	"llmproxy/router"
)

// Item is a conversation item in OpenAI's shape: a message with content
// parts, or a tool result as function_call_output.
type Item struct {
	Type   string `json:"type"`
	ID     string `json:"id"`
	Object string `json:"object"` // "conversation.item"
	Status string `json:"status,omitempty"`
	Role   string `json:"role,omitempty"`
	// Content is the message's parts (input_text for what the user, system
	// or developer said, output_text for the assistant).
	Content []json.RawMessage `json:"content,omitempty"`
	// ToolCalls (an extension) are the chat-completions tool calls an
	// assistant message made.
	ToolCalls json.RawMessage `json:"tool_calls,omitempty"`
	CallID    string          `json:"call_id,omitempty"`
	Output    *string         `json:"output,omitempty"`
	CreatedAt int64           `json:"created_at"`
}

func itemOf(msg *Message) Item {
	it := Item{Type: "message", ID: msg.ID, Object: "conversation.item", Status: "completed",
		Role: msg.Role, CreatedAt: msg.CreatedAt.Unix(), ToolCalls: msg.Meta.ToolCalls}
	if msg.Role == "tool" {
		out := router.Message{Content: msg.Content}.Text()
		return Item{Type: "function_call_output", ID: msg.ID, Object: "conversation.item", Status: "completed",
			CallID: msg.Meta.ToolCallID, Output: &out, CreatedAt: it.CreatedAt}
	}
	textType := "input_text"
	if msg.Role == "assistant" {
		textType = "output_text"
	}
	var s string
	if json.Unmarshal(msg.Content, &s) == nil {
		it.Content = []json.RawMessage{textPart(textType, s)}
		return it
	}
	var parts []json.RawMessage
	if json.Unmarshal(msg.Content, &parts) != nil {
		return it // null: a message with tool calls only
	}
	for _, p := range parts {
		var head struct {
			Type     string `json:"type"`
			Text     string `json:"text"`
			ImageURL struct {
				URL string `json:"url"`
			} `json:"image_url"`
		}
		_ = json.Unmarshal(p, &head)
		switch head.Type {
		case "text":
			p = textPart(textType, head.Text)
		case "image_url":
			p, _ = json.Marshal(map[string]string{"type": "input_image", "image_url": head.ImageURL.URL})
		}
		it.Content = append(it.Content, p)
	}
	return it
}

func textPart(typ, text string) json.RawMessage {
	b, _ := json.Marshal(struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}{typ, text})
	return b
}

// inputItem is an item as a client sends it: a message whose content is a
// string or parts, or a function_call_output.
type inputItem struct {
	Type    string          `json:"type"`
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
	CallID  string          `json:"call_id"`
	Output  string          `json:"output"`
}

// inputItems converts items to messages, counting tokens for model.
func (m *Memory) inputItems(raw []json.RawMessage, model string) ([]Message, error) {
	if len(raw) > maxItems {
		return nil, &router.Error{Kind: router.KindInvalidRequest, Param: "items",
			Message: "Invalid 'items': at most " + strconv.Itoa(maxItems) + " items per request."}
	}
	out := make([]Message, 0, len(raw))
	for i, r := range raw {
		var in inputItem
		bad := func(msg string) error {
			return &router.Error{Kind: router.KindInvalidRequest, Param: "items[" + strconv.Itoa(i) + "]", Message: "Invalid 'items[" + strconv.Itoa(i) + "]': " + msg}
		}
		if json.Unmarshal(r, &in) != nil {
			return nil, bad("expected an item object.")
		}
		msg := Message{ID: NewID("msg_")}
		switch in.Type {
		case "function_call_output":
			msg.Role, msg.Meta.ToolCallID = "tool", in.CallID
			msg.Content, _ = json.Marshal(in.Output)
		case "", "message":
			switch in.Role {
			case "user", "assistant", "system", "developer":
			default:
				return nil, bad("role must be user, assistant, system or developer.")
			}
			c, ok := chatContent(in.Content)
			if !ok {
				return nil, bad("content must be a string or an array of input_text, output_text or input_image parts.")
			}
			msg.Role, msg.Content = in.Role, c
		default:
			return nil, bad("unsupported item type '" + router.Clip(in.Type) + "'.")
		}
		msg.Tokens = m.o.Count(model, router.Message{Content: msg.Content}.Text())
		out = append(out, msg)
	}
	return out, nil
}

// chatContent turns item content into chat-completions content: a string
// stays one, text parts become text parts, input_image image_url parts.
func chatContent(c json.RawMessage) (json.RawMessage, bool) {
	var s string
	if json.Unmarshal(c, &s) == nil {
		return c, true
	}
	var parts []struct {
		Type     string `json:"type"`
		Text     string `json:"text"`
		ImageURL string `json:"image_url"`
	}
	if json.Unmarshal(c, &parts) != nil || len(parts) == 0 {
		return nil, false
	}
	out := make([]map[string]any, 0, len(parts))
	for _, p := range parts {
		switch p.Type {
		case "input_text", "output_text", "text":
			out = append(out, map[string]any{"type": "text", "text": p.Text})
		case "input_image":
			out = append(out, map[string]any{"type": "image_url", "image_url": map[string]string{"url": p.ImageURL}})
		default:
			return nil, false
		}
	}
	b, _ := json.Marshal(out)
	return b, true
}

// ListItems is GET /v1/conversations/{id}/items.
func (m *Memory) ListItems(ctx context.Context, team, id string, q ListQuery) (*List[Item], error) {
	p, err := q.page()
	if err != nil {
		return nil, err
	}
	want := p.Limit
	p.Limit++
	ms, err := m.o.Store.ListMessages(ctx, team, id, p)
	if err != nil {
		return nil, storeErr(err, "conversation", id)
	}
	out := &List[Item]{Object: "list", Data: []Item{}}
	if len(ms) > want {
		ms, out.HasMore = ms[:want], true
	}
	for i := range ms {
		out.Data = append(out.Data, itemOf(&ms[i]))
	}
	if n := len(out.Data); n > 0 {
		out.FirstID, out.LastID = &out.Data[0].ID, &out.Data[n-1].ID
	}
	return out, nil
}

// AddItems is POST /v1/conversations/{id}/items: body {"items": [...]}.
func (m *Memory) AddItems(ctx context.Context, team, id string, body []byte) (*List[Item], error) {
	var b struct {
		Items []json.RawMessage `json:"items"`
	}
	if err := decode(body, &b); err != nil {
		return nil, err
	}
	if len(b.Items) == 0 {
		return nil, &router.Error{Kind: router.KindInvalidRequest, Param: "items", Message: "Missing required parameter: 'items'."}
	}
	c, err := m.o.Store.GetConversation(ctx, team, id)
	if err != nil {
		return nil, storeErr(err, "conversation", id)
	}
	msgs, err := m.inputItems(b.Items, c.Model)
	if err != nil {
		return nil, err
	}
	now := m.o.Now()
	for i := range msgs {
		msgs[i].CreatedAt = now
	}
	if err := m.o.Store.AppendMessages(ctx, team, id, msgs, now); err != nil {
		return nil, storeErr(err, "conversation", id)
	}
	out := &List[Item]{Object: "list", Data: make([]Item, 0, len(msgs))}
	for i := range msgs {
		out.Data = append(out.Data, itemOf(&msgs[i]))
	}
	out.FirstID, out.LastID = &out.Data[0].ID, &out.Data[len(msgs)-1].ID
	return out, nil
}

// GetItem is GET /v1/conversations/{id}/items/{item_id}.
func (m *Memory) GetItem(ctx context.Context, team, id, itemID string) (*Item, error) {
	msg, err := m.o.Store.GetMessage(ctx, team, id, itemID)
	if err != nil {
		return nil, storeErr(err, "item", itemID)
	}
	it := itemOf(msg)
	return &it, nil
}

// DeleteItem is DELETE /v1/conversations/{id}/items/{item_id}; it answers
// the conversation, as OpenAI does.
func (m *Memory) DeleteItem(ctx context.Context, team, id, itemID string) (*ConversationObject, error) {
	if err := m.o.Store.DeleteMessage(ctx, team, id, itemID); err != nil {
		return nil, storeErr(err, "item", itemID)
	}
	c, err := m.o.Store.GetConversation(ctx, team, id)
	if err != nil {
		return nil, fmt.Errorf("memory: read conversation: %w", storeErr(err, "conversation", id))
	}
	o := conversationObject(c)
	return &o, nil
}
