package memory_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"llmproxy/memory"
	"llmproxy/router"
	"llmproxy/store/sqlite"
)

// The middleware's tests run on a real SQLite store (store/sqlite imports
// memory, which an external test package may do) in front of a fake next
// stage that records the body it was given and answers with chunks.

func mustOpen(tb testing.TB) *sqlite.DB {
	tb.Helper()
	db, err := sqlite.OpenFile(context.Background(), filepath.Join(tb.TempDir(), "m.db"))
	if err != nil {
		tb.Fatalf("open sqlite: %v", err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

// words counts tokens as whitespace-separated words: predictable sizes.
func words(_, s string) int { return len(strings.Fields(s)) }

func newMemory(tb testing.TB, st memory.Store, o memory.Options) *memory.Memory {
	tb.Helper()
	o.Store, o.Count, o.Log = st, words, slog.New(slog.DiscardHandler)
	m, err := memory.New(o)
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

// upstream is the next stage: it records each body and replies with its
// chunks (a whole completion saying reply by default), then err (io.EOF
// when nil).
type upstream struct {
	mu     sync.Mutex
	bodies [][]byte
	chunks func(body []byte) []*router.Chunk
	err    error
}

func (u *upstream) Serve(_ context.Context, req *router.ChatRequest) (router.Stream, error) {
	u.mu.Lock()
	u.bodies = append(u.bodies, req.Body)
	u.mu.Unlock()
	var cs []*router.Chunk
	if u.chunks != nil {
		cs = u.chunks(req.Body)
	} else {
		cs = []*router.Chunk{whole("reply")}
	}
	end := u.err
	if end == nil {
		end = io.EOF
	}
	return &sliceStream{chunks: cs, end: end}, nil
}

func whole(text string) *router.Chunk {
	b, _ := json.Marshal(map[string]any{"object": "chat.completion", "model": "up-1",
		"choices": []any{map[string]any{"index": 0, "message": map[string]any{"role": "assistant", "content": text}, "finish_reason": "stop"}}})
	return &router.Chunk{Data: b, Whole: true}
}

type sliceStream struct {
	chunks []*router.Chunk
	end    error
}

func (s *sliceStream) Next() (*router.Chunk, error) {
	if len(s.chunks) == 0 {
		return nil, s.end
	}
	c := s.chunks[0]
	s.chunks = s.chunks[1:]
	return c, nil
}

func (s *sliceStream) Close() error { return nil }

var teamA = router.WithIdentity(context.Background(), router.Identity{Team: "a", KeyID: "k1"})

// turn sends one chat request through h and drains the reply.
func turn(t *testing.T, h router.Handler, ctx context.Context, body, header string) (*router.ChatRequest, error) {
	t.Helper()
	req, err := router.ParseChatRequest([]byte(body))
	if err != nil {
		t.Fatalf("ParseChatRequest: %v", err)
	}
	req.Conversation = header
	req.Result = &router.Result{} // what the caller reads back, as cmd/proxy attaches it
	st, err := h.Serve(ctx, req)
	if err != nil {
		return req, err
	}
	defer st.Close()
	for {
		if _, err := st.Next(); err != nil {
			if err == io.EOF {
				return req, nil
			}
			return req, err
		}
	}
}

func messagesOf(t *testing.T, body []byte) []router.Message {
	t.Helper()
	req := &router.ChatRequest{Body: body}
	ms, err := req.Messages()
	if err != nil {
		t.Fatal(err)
	}
	return ms
}

func TestMemoryRemembers(t *testing.T) {
	db := mustOpen(t)
	up := &upstream{}
	m := newMemory(t, db, memory.Options{})
	h := router.Chain(up, m.Middleware())

	req, err := turn(t, h, teamA, `{"model":"chat","conversation":"new","messages":[{"role":"system","content":"be brief"},{"role":"user","content":"my name is Ada"}]}`, "")
	if err != nil {
		t.Fatal(err)
	}
	id := req.Result.Conversation
	if !strings.HasPrefix(id, "conv_") {
		t.Fatalf("Result.Conversation = %q; want conv_…", id)
	}
	if router.TopField(up.bodies[0], "conversation") != nil {
		t.Errorf("upstream body still has conversation: %s", up.bodies[0])
	}
	if _, err := turn(t, h, teamA, `{"model":"chat","messages":[{"role":"user","content":"what is my name?"}]}`, id); err != nil {
		t.Fatal(err)
	}
	got := messagesOf(t, up.bodies[1])
	var roles []string
	for _, msg := range got {
		roles = append(roles, msg.Role+":"+msg.Text())
	}
	want := []string{"user:my name is Ada", "assistant:reply", "user:what is my name?"}
	if strings.Join(roles, "|") != strings.Join(want, "|") {
		t.Errorf("upstream messages = %q; want %q (system messages are not stored)", roles, want)
	}
	items, err := m.ListItems(teamA, "a", id, memory.ListQuery{Order: "asc"})
	if err != nil {
		t.Fatal(err)
	}
	if len(items.Data) != 4 || items.Data[3].Role != "assistant" || *items.FirstID != items.Data[0].ID {
		t.Errorf("items = %+v; want 4, the last the assistant's", items)
	}
	// Another team's id is a 404, as is an unknown one.
	teamB := router.WithIdentity(context.Background(), router.Identity{Team: "b"})
	for _, ctx := range []context.Context{teamB, teamA} {
		ref := id
		if ctx == teamA {
			ref = "conv_unknown"
		}
		_, err := turn(t, h, ctx, `{"model":"chat","messages":[{"role":"user","content":"hi"}]}`, ref)
		var re *router.Error
		if !errors.As(err, &re) || re.Kind != router.KindNotFound {
			t.Errorf("turn on %s = %v; want KindNotFound", ref, err)
		}
	}
}

func TestNoConversationPassesThrough(t *testing.T) {
	up := &upstream{}
	m := newMemory(t, mustOpen(t), memory.Options{})
	body := `{"model":"chat","messages":[{"role":"user","content":"hi"}]}`
	req, err := turn(t, router.Chain(up, m.Middleware()), teamA, body, "")
	if err != nil {
		t.Fatal(err)
	}
	if string(up.bodies[0]) != body || req.Result.Conversation != "" || req.Result.MemoryDropped != 0 {
		t.Errorf("body = %s, Result = %+v; want the body untouched and nothing reported", up.bodies[0], req.Result)
	}
}

func TestConcurrentTurns(t *testing.T) {
	db := mustOpen(t)
	m := newMemory(t, db, memory.Options{})
	h := router.Chain(&upstream{chunks: func(body []byte) []*router.Chunk {
		ms := (&router.ChatRequest{Body: body}).Messages
		got, _ := ms()
		return []*router.Chunk{whole("re: " + got[len(got)-1].Text())}
	}}, m.Middleware())
	conv, err := m.CreateConversation(teamA, "a", nil)
	if err != nil {
		t.Fatal(err)
	}
	const n = 20
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			q := "question " + string(rune('A'+i))
			if _, err := turn(t, h, teamA, `{"model":"chat","messages":[{"role":"user","content":"`+q+`"}]}`, conv.ID); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	_, hist, err := db.LoadHistory(teamA, "a", conv.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(hist) != 2*n {
		t.Fatalf("stored %d messages; want %d", len(hist), 2*n)
	}
	seen := map[string]bool{}
	for i := 0; i < len(hist); i += 2 {
		u, a := hist[i], hist[i+1]
		q := textOf(u.Content)
		if u.Role != "user" || a.Role != "assistant" || textOf(a.Content) != "re: "+q || seen[q] {
			t.Errorf("messages %d,%d = %s %q, %s %q; want each user turn once, followed by its own reply", i, i+1, u.Role, q, a.Role, a.Content)
		}
		seen[q] = true
		if u.Seq != int64(i+1) || a.Seq != int64(i+2) {
			t.Errorf("seqs %d,%d; want %d,%d", u.Seq, a.Seq, i+1, i+2)
		}
	}
}

func TestFailedReplySavesNothing(t *testing.T) {
	db := mustOpen(t)
	m := newMemory(t, db, memory.Options{})
	conv, err := m.CreateConversation(teamA, "a", nil)
	if err != nil {
		t.Fatal(err)
	}
	cut := &router.Error{Kind: router.KindUpstream, Message: "upstream cut the stream"}
	for _, tc := range []struct {
		name string
		err  error
	}{{"mid-stream error", cut}, {"client left", context.Canceled}} {
		t.Run(tc.name, func(t *testing.T) {
			up := &upstream{err: tc.err, chunks: func([]byte) []*router.Chunk {
				return []*router.Chunk{{Data: []byte(`{"object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"half"}}]}`)}}
			}}
			if _, err := turn(t, router.Chain(up, m.Middleware()), teamA, `{"model":"chat","stream":true,"messages":[{"role":"user","content":"hi"}]}`, conv.ID); err == nil {
				t.Fatal("turn succeeded; want the upstream's error")
			}
			items, err := m.ListItems(teamA, "a", conv.ID, memory.ListQuery{})
			if err != nil || len(items.Data) != 0 {
				t.Errorf("items = %d (%v); want none saved", len(items.Data), err)
			}
		})
	}
}

func TestStreamedReplyAssembled(t *testing.T) {
	db := mustOpen(t)
	m := newMemory(t, db, memory.Options{})
	chunk := func(delta string) *router.Chunk {
		return &router.Chunk{Data: []byte(`{"object":"chat.completion.chunk","model":"up-1","choices":[{"index":0,"delta":` + delta + `}]}`)}
	}
	up := &upstream{chunks: func([]byte) []*router.Chunk {
		return []*router.Chunk{
			chunk(`{"role":"assistant","content":"Let me "}`),
			chunk(`{"content":"check."}`),
			chunk(`{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"weather","arguments":"{\"ci"}}]}`),
			chunk(`{"tool_calls":[{"index":0,"function":{"arguments":"ty\":\"Oslo\"}"}}]}`),
			{Data: []byte(`{"object":"chat.completion.chunk","choices":[],"usage":{"prompt_tokens":3}}`), UsageOnly: true},
		}
	}}
	req, err := turn(t, router.Chain(up, m.Middleware()), teamA, `{"model":"chat","stream":true,"conversation":"new","messages":[{"role":"user","content":"weather?"}]}`, "")
	if err != nil {
		t.Fatal(err)
	}
	_, hist, err := db.LoadHistory(teamA, "a", req.Result.Conversation)
	if err != nil || len(hist) != 2 {
		t.Fatalf("history = %d messages (%v); want 2", len(hist), err)
	}
	a := hist[1]
	if string(a.Content) != `"Let me check."` || a.Meta.Model != "up-1" {
		t.Errorf("assistant content %s model %q; want \"Let me check.\" from up-1", a.Content, a.Meta.Model)
	}
	want := `[{"id":"call_1","type":"function","function":{"name":"weather","arguments":"{\"city\":\"Oslo\"}"}}]`
	if string(a.Meta.ToolCalls) != want {
		t.Errorf("tool calls = %s; want %s", a.Meta.ToolCalls, want)
	}
}

func TestRetention(t *testing.T) {
	db := mustOpen(t)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	now := t0
	m := newMemory(t, db, memory.Options{Now: func() time.Time { return now }})
	idle, _ := m.CreateConversation(teamA, "a", nil)
	active, _ := m.CreateConversation(teamA, "a", nil)
	now = t0.Add(2 * time.Hour)
	if _, err := turn(t, router.Chain(&upstream{}, m.Middleware()), teamA, `{"model":"chat","messages":[{"role":"user","content":"still here"}]}`, active.ID); err != nil {
		t.Fatal(err)
	}
	now = t0.Add(3 * time.Hour)
	n, err := m.Sweep(teamA, 90*time.Minute)
	if err != nil || n != 1 {
		t.Fatalf("Sweep = %d, %v; want 1 deleted", n, err)
	}
	var re *router.Error
	if _, err := m.GetConversation(teamA, "a", idle.ID); !errors.As(err, &re) || re.Kind != router.KindNotFound {
		t.Errorf("idle conversation: %v; want a 404", err)
	}
	if _, err := m.GetConversation(teamA, "a", active.ID); err != nil {
		t.Errorf("active conversation: %v; want it kept", err)
	}
}

func textOf(c json.RawMessage) string { return router.Message{Content: c}.Text() }
