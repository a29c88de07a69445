package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
)

// Conversation memory end to end (issue 13): the official SDK sends only
// its newest message, the upstream gets the whole conversation, and the
// history survives a restart of the proxy on the same database.

// memoryConfig is e2eConfig with store, a line under server: (data_dir)
// or a database block.
func memoryConfig(server, extra string) string {
	return strings.Replace(e2eConfig, "  drain_timeout: 5s\n", "  drain_timeout: 5s\n"+server, 1) + extra
}

func TestMemoryE2ESQLite(t *testing.T) {
	dir := t.TempDir()
	runMemoryE2E(t, memoryConfig("  data_dir: "+dir+"\n", ""))
}

// runMemoryE2E runs two turns, checks the upstream and the items API,
// restarts the proxy on the same config and checks again.
func runMemoryE2E(t *testing.T, config string) {
	e := startE2EWith(t, config)
	var resp *http.Response
	first, err := e.noRetry().Chat.Completions.New(withTimeout(t), openai.ChatCompletionNewParams{
		Model:    "gpt-test",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("my name is Ada")},
	}, option.WithHeader(headerConversation, "new"), option.WithResponseInto(&resp))
	if err != nil {
		t.Fatalf("turn 1: %v", err)
	}
	conv := resp.Header.Get(headerConversation)
	if !strings.HasPrefix(conv, "conv_") {
		t.Fatalf("turn 1: %s = %q; want conv_…", headerConversation, conv)
	}
	// Turn 2 names the conversation in the body, as the SDK lets a client
	// add a field; the proxy removes it before the upstream.
	_, err = e.noRetry().Chat.Completions.New(withTimeout(t), openai.ChatCompletionNewParams{
		Model:    "gpt-test",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("what is my name?")},
	}, option.WithJSONSet("conversation", conv), option.WithResponseInto(&resp))
	if err != nil {
		t.Fatalf("turn 2: %v", err)
	}
	if got := resp.Header.Get(headerConversation); got != conv {
		t.Errorf("turn 2: %s = %q; want %q", headerConversation, got, conv)
	}
	sent := e.up.last(t).Body
	if strings.Contains(string(sent), `"conversation"`) {
		t.Errorf("upstream body has the conversation field: %s", sent)
	}
	want := []string{"user:my name is Ada", "assistant:" + first.Choices[0].Message.Content, "user:what is my name?"}
	if got := upstreamTurns(t, sent); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("upstream messages = %q; want %q", got, want)
	}
	checkItems(t, e, conv, 4)

	// Restart on the same database: the history is still there.
	if err := e.srv.Shutdown(5e9); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	e2 := startE2EWith(t, config)
	checkItems(t, e2, conv, 4)
	if _, err := e2.noRetry().Chat.Completions.New(withTimeout(t), openai.ChatCompletionNewParams{
		Model:    "gpt-test",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("still there?")},
	}, option.WithHeader(headerConversation, conv)); err != nil {
		t.Fatalf("turn 3: %v", err)
	}
	if got := upstreamTurns(t, e2.up.last(t).Body); len(got) != 5 || got[0] != "user:my name is Ada" {
		t.Errorf("after restart the upstream got %q; want the 4 stored messages and the new one", got)
	}
}

func upstreamTurns(t *testing.T, body []byte) []string {
	t.Helper()
	var b struct {
		Messages []struct {
			Role    string `json:"role"`
			Content string `json:"content"`
		} `json:"messages"`
	}
	if err := json.Unmarshal(body, &b); err != nil {
		t.Fatalf("upstream body: %v", err)
	}
	var out []string
	for _, m := range b.Messages {
		out = append(out, m.Role+":"+m.Content)
	}
	return out
}

func checkItems(t *testing.T, e *e2e, conv string, want int) {
	t.Helper()
	resp, body := e.do("GET", "/v1/conversations/"+conv+"/items?order=asc", "", authHeader(teamKeyDefault))
	var list struct {
		Object string `json:"object"`
		Data   []struct {
			ID, Type, Role string
		} `json:"data"`
		FirstID string `json:"first_id"`
		LastID  string `json:"last_id"`
		HasMore bool   `json:"has_more"`
	}
	if resp.StatusCode != 200 || json.Unmarshal(body, &list) != nil {
		t.Fatalf("GET items = %d %s", resp.StatusCode, body)
	}
	if list.Object != "list" || len(list.Data) != want || list.HasMore || list.FirstID != list.Data[0].ID ||
		list.LastID != list.Data[want-1].ID || list.Data[0].Role != "user" || !strings.HasPrefix(list.Data[0].ID, "msg_") {
		t.Errorf("items = %s; want a list of %d messages, the first the user's", body, want)
	}
}

// TestConversationsAPI walks the API in OpenAI's shapes, and checks that
// another team's ids are 404.
func TestConversationsAPI(t *testing.T) {
	e := startE2E(t)
	key := authHeader(teamKeyDefault)
	resp, body := e.do("POST", "/v1/conversations", `{"metadata":{"topic":"demo"},"items":[{"type":"message","role":"user","content":"hello"}]}`, key)
	var conv struct {
		ID       string            `json:"id"`
		Object   string            `json:"object"`
		Metadata map[string]string `json:"metadata"`
	}
	if resp.StatusCode != 200 || json.Unmarshal(body, &conv) != nil || conv.Object != "conversation" || conv.Metadata["topic"] != "demo" {
		t.Fatalf("create = %d %s; want a conversation", resp.StatusCode, body)
	}
	path := "/v1/conversations/" + conv.ID
	resp, body = e.do("POST", path+"/items", `{"items":[{"type":"message","role":"assistant","content":[{"type":"output_text","text":"hi!"}]}]}`, key)
	var added struct {
		Data []struct {
			ID      string            `json:"id"`
			Content []json.RawMessage `json:"content"`
		} `json:"data"`
	}
	if resp.StatusCode != 200 || json.Unmarshal(body, &added) != nil || len(added.Data) != 1 {
		t.Fatalf("add items = %d %s", resp.StatusCode, body)
	}
	item := path + "/items/" + added.Data[0].ID
	if resp, body = e.do("GET", item, "", key); resp.StatusCode != 200 || !strings.Contains(string(body), `"output_text"`) {
		t.Errorf("get item = %d %s; want the assistant's output_text", resp.StatusCode, body)
	}
	checkItems(t, e, conv.ID, 2)
	if resp, body = e.do("GET", path+"/items?limit=1", "", key); !strings.Contains(string(body), `"has_more":true`) {
		t.Errorf("items?limit=1 = %d %s; want has_more", resp.StatusCode, body)
	}
	if resp, body = e.do("POST", path, `{"metadata":{"topic":"changed"}}`, key); resp.StatusCode != 200 || !strings.Contains(string(body), `"changed"`) {
		t.Errorf("update = %d %s", resp.StatusCode, body)
	}
	if resp, body = e.do("GET", "/v1/conversations", "", key); resp.StatusCode != 200 || !strings.Contains(string(body), conv.ID) {
		t.Errorf("list = %d %s; want the conversation", resp.StatusCode, body)
	}
	// The limited team sees none of it.
	other := authHeader(teamKeyLimited)
	for _, p := range []string{path, path + "/items", item} {
		if resp, body = e.do("GET", p, "", other); resp.StatusCode != 404 {
			t.Errorf("GET %s as another team = %d %s; want 404", p, resp.StatusCode, body)
		}
	}
	if resp, body = e.do("GET", "/v1/conversations", "", other); strings.Contains(string(body), conv.ID) {
		t.Errorf("another team's list = %s; want it empty", body)
	}
	resp, body = e.do("POST", "/v1/chat/completions", `{"model":"demo-chat","messages":[{"role":"user","content":"hi"}]}`,
		map[string]string{"Authorization": "Bearer " + teamKeyLimited, headerConversation: conv.ID})
	if msg, typ, _ := errorShape(t, body); resp.StatusCode != 404 || typ != "invalid_request_error" || msg == "" {
		t.Errorf("chat on another team's conversation = %d %s; want a 404 error", resp.StatusCode, body)
	}
	if resp, body = e.do("DELETE", item, "", key); resp.StatusCode != 200 {
		t.Errorf("delete item = %d %s", resp.StatusCode, body)
	}
	checkItems(t, e, conv.ID, 1)
	if resp, body = e.do("DELETE", path, "", key); resp.StatusCode != 200 || !strings.Contains(string(body), `"deleted":true`) {
		t.Errorf("delete = %d %s", resp.StatusCode, body)
	}
	if resp, _ = e.do("GET", path, "", key); resp.StatusCode != 404 {
		t.Errorf("GET after delete = %d; want 404", resp.StatusCode)
	}
}

// TestMemoryE2EStreamAndFailure: a streamed reply is stored assembled, and
// a failed upstream reply stores nothing (the client may retry).
func TestMemoryE2EStreamAndFailure(t *testing.T) {
	e := startE2E(t)
	hdr := map[string]string{"Authorization": "Bearer " + teamKeyDefault, headerConversation: "new"}
	resp, body := e.do("POST", "/v1/chat/completions", `{"model":"gpt-test","stream":true,"messages":[{"role":"user","content":"hi"}]}`, hdr)
	conv := resp.Header.Get(headerConversation)
	if resp.StatusCode != 200 || !strings.HasPrefix(conv, "conv_") || !strings.Contains(string(body), "[DONE]") {
		t.Fatalf("stream = %d %s, conversation %q", resp.StatusCode, body, conv)
	}
	_, items := e.do("GET", "/v1/conversations/"+conv+"/items?order=asc", "", authHeader(teamKeyDefault))
	if !strings.Contains(string(items), `"text":"Hello there, `+completionCanary+`!"`) {
		t.Errorf("items = %s; want the streamed reply assembled", items)
	}
	e.up.handle(func(w http.ResponseWriter, r *http.Request, body []byte) {
		writeUpstreamError(w, http.StatusInternalServerError, `{"error":{"message":"boom","type":"server_error","param":null,"code":null}}`)
	})
	hdr[headerConversation] = conv
	if resp, body = e.do("POST", "/v1/chat/completions", `{"model":"gpt-test","messages":[{"role":"user","content":"again"}]}`, hdr); resp.StatusCode < 500 {
		t.Fatalf("failed upstream = %d %s; want a 5xx", resp.StatusCode, body)
	}
	checkItems(t, e, conv, 2)
}

// TestMemoryRetentionE2E runs the retention job on river with a short
// period: the idle conversation goes (404), the one in use stays.
func TestMemoryRetentionE2E(t *testing.T) {
	runRetentionE2E(t, memoryConfig("", "\nmemory: {retention: 400ms, cleanup_every: 100ms}\n"))
}

func runRetentionE2E(t *testing.T, config string) {
	e := startE2EWith(t, config)
	key := authHeader(teamKeyDefault)
	ids := make([]string, 2)
	for i := range ids {
		resp, body := e.do("POST", "/v1/conversations", `{}`, key)
		var c struct{ ID string }
		if resp.StatusCode != 200 || json.Unmarshal(body, &c) != nil {
			t.Fatalf("create = %d %s", resp.StatusCode, body)
		}
		ids[i] = c.ID
	}
	idle, active := ids[0], ids[1]
	gone := eventually(10*time.Second, func() bool {
		// Each poll is a turn on the active one, which keeps it fresh.
		if resp, body := e.do("POST", "/v1/conversations/"+active+"/items", `{"items":[{"role":"user","content":"still here"}]}`, key); resp.StatusCode != 200 {
			t.Fatalf("add item = %d %s", resp.StatusCode, body)
		}
		resp, _ := e.do("GET", "/v1/conversations/"+idle, "", key)
		return resp.StatusCode == 404
	})
	if !gone {
		t.Fatalf("idle conversation still there after 10s; logs:\n%s", e.logs.String())
	}
	if resp, body := e.do("GET", "/v1/conversations/"+active, "", key); resp.StatusCode != 200 {
		t.Errorf("active conversation = %d %s; want kept", resp.StatusCode, body)
	}
	if !strings.Contains(e.logs.String(), `"memory retention sweep"`) {
		t.Errorf("no retention log line")
	}
}

// TestMemoryBudgetCountsHistory: memory runs before the budget guard, so
// admission counts the history it adds. A short request fits the team's
// token budget on its own and not with a long stored conversation.
func TestMemoryBudgetCountsHistory(t *testing.T) {
	e := startE2EWith(t, memoryConfig("", "  - name: tight\n    api_keys: [sk-tight]\n    budget: {tokens: 600, period: day}\n"))
	key := authHeader("sk-tight")
	long := strings.Repeat("lorem ", 1000)
	resp, body := e.do("POST", "/v1/conversations", `{"items":[{"role":"user","content":"`+long+`"}]}`, key)
	var c struct{ ID string }
	if resp.StatusCode != 200 || json.Unmarshal(body, &c) != nil {
		t.Fatalf("create = %d %s", resp.StatusCode, body)
	}
	chat := `{"model":"gpt-test","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}`
	hdr := map[string]string{"Authorization": "Bearer sk-tight", headerConversation: c.ID}
	resp, body = e.do("POST", "/v1/chat/completions", chat, hdr)
	if _, typ, _ := errorShape(t, body); resp.StatusCode != 429 || typ != "insufficient_quota" {
		t.Errorf("with 1000 tokens of history = %d %s; want 429 insufficient_quota", resp.StatusCode, body)
	}
	if resp, body = e.do("POST", "/v1/chat/completions", chat, key); resp.StatusCode != 200 {
		t.Errorf("without the conversation = %d %s; want 200", resp.StatusCode, body)
	}
}
