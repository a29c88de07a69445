// Package memorytest is the suite every memory.Store passes (store/sqlite,
// store/postgres) and the benchmark of a memory turn on it.
package memorytest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"llmproxy/memory"
	"llmproxy/router"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func conv(team string) *memory.Conversation {
	return &memory.Conversation{ID: memory.NewID("conv_"), Team: team, CreatedAt: t0, UpdatedAt: t0,
		Metadata: map[string]string{"k": "v"}}
}

func text(role, s string) memory.Message {
	b, _ := json.Marshal(s)
	return memory.Message{ID: memory.NewID("msg_"), Role: role, Content: b, Tokens: len(strings.Fields(s)), CreatedAt: t0}
}

// Run checks st. Each subtest uses its own conversations, so a store may
// be shared.
func Run(t *testing.T, st memory.Store) {
	ctx := context.Background()
	t.Run("concurrent turns", func(t *testing.T) {
		c := conv("a")
		if err := st.CreateConversation(ctx, c, nil); err != nil {
			t.Fatal(err)
		}
		const n = 20
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				q := "q" + strconv.Itoa(i)
				turn := []memory.Message{text("user", q), text("assistant", "re "+q)}
				if err := st.AppendMessages(ctx, "a", c.ID, turn, t0.Add(time.Minute)); err != nil {
					t.Errorf("AppendMessages: %v", err)
				}
			})
		}
		wg.Wait()
		_, hist, err := st.LoadHistory(ctx, "a", c.ID)
		if err != nil || len(hist) != 2*n {
			t.Fatalf("LoadHistory = %d messages, %v; want %d", len(hist), err, 2*n)
		}
		seen := map[string]bool{}
		for i := 0; i < len(hist); i += 2 {
			q := textOf(hist[i].Content)
			if hist[i].Seq != int64(i+1) || hist[i+1].Seq != int64(i+2) || textOf(hist[i+1].Content) != "re "+q || seen[q] {
				t.Errorf("messages %d,%d = seq %d %q, seq %d %q; want each turn once, in one piece",
					i, i+1, hist[i].Seq, q, hist[i+1].Seq, textOf(hist[i+1].Content))
			}
			seen[q] = true
		}
	})
	t.Run("team scoping", func(t *testing.T) {
		c := conv("a")
		if err := st.CreateConversation(ctx, c, []memory.Message{text("user", "hi")}); err != nil {
			t.Fatal(err)
		}
		_, hist, _ := st.LoadHistory(ctx, "a", c.ID)
		checks := map[string]error{}
		_, checks["GetConversation"] = st.GetConversation(ctx, "b", c.ID)
		_, _, checks["LoadHistory"] = st.LoadHistory(ctx, "b", c.ID)
		checks["AppendMessages"] = st.AppendMessages(ctx, "b", c.ID, []memory.Message{text("user", "x")}, t0)
		_, checks["ListMessages"] = st.ListMessages(ctx, "b", c.ID, memory.Page{Limit: 10})
		_, checks["GetMessage"] = st.GetMessage(ctx, "b", c.ID, hist[0].ID)
		checks["DeleteMessage"] = st.DeleteMessage(ctx, "b", c.ID, hist[0].ID)
		_, checks["UpdateConversation"] = st.UpdateConversation(ctx, "b", c.ID, nil, t0)
		checks["DeleteConversation"] = st.DeleteConversation(ctx, "b", c.ID)
		for name, err := range checks {
			if !errors.Is(err, memory.ErrNotFound) {
				t.Errorf("%s as another team = %v; want ErrNotFound", name, err)
			}
		}
		if got, err := st.GetConversation(ctx, "a", c.ID); err != nil || got.Metadata["k"] != "v" {
			t.Errorf("GetConversation = %+v, %v; want it intact", got, err)
		}
	})
	t.Run("pages", func(t *testing.T) {
		c := conv("pages")
		var items []memory.Message
		for i := range 5 {
			items = append(items, text("user", strconv.Itoa(i)))
		}
		if err := st.CreateConversation(ctx, c, items); err != nil {
			t.Fatal(err)
		}
		asc, err := st.ListMessages(ctx, "pages", c.ID, memory.Page{After: items[1].ID, Limit: 2})
		if err != nil || len(asc) != 2 || asc[0].ID != items[2].ID || asc[1].ID != items[3].ID {
			t.Errorf("ListMessages after #1 = %d (%v); want #2, #3", len(asc), err)
		}
		desc, err := st.ListMessages(ctx, "pages", c.ID, memory.Page{After: items[1].ID, Limit: 9, Desc: true})
		if err != nil || len(desc) != 1 || desc[0].ID != items[0].ID {
			t.Errorf("ListMessages desc after #1 = %d (%v); want #0", len(desc), err)
		}
	})
	t.Run("delete idle", func(t *testing.T) {
		idle, active := conv("idle"), conv("idle")
		for _, c := range []*memory.Conversation{idle, active} {
			if err := st.CreateConversation(ctx, c, []memory.Message{text("user", "hi")}); err != nil {
				t.Fatal(err)
			}
		}
		if err := st.AppendMessages(ctx, "idle", active.ID, []memory.Message{text("user", "again")}, t0.Add(2*time.Hour)); err != nil {
			t.Fatal(err)
		}
		if _, err := st.DeleteIdle(ctx, t0.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if _, err := st.GetConversation(ctx, "idle", idle.ID); !errors.Is(err, memory.ErrNotFound) {
			t.Errorf("idle conversation: %v; want deleted", err)
		}
		if _, err := st.ListMessages(ctx, "idle", idle.ID, memory.Page{Limit: 1}); !errors.Is(err, memory.ErrNotFound) {
			t.Errorf("idle conversation's messages: %v; want deleted", err)
		}
		if _, err := st.GetConversation(ctx, "idle", active.ID); err != nil {
			t.Errorf("active conversation: %v; want kept", err)
		}
	})
}

func textOf(c json.RawMessage) string { return router.Message{Content: c}.Text() }

// Bench measures one memory turn through the middleware (load the history,
// fit it, rewrite the body, relay a one-chunk reply, save the user message
// and the reply) on a conversation of stored messages, against a request
// without a conversation. Each iteration gets a fresh conversation,
// filled with the timer stopped, so the size stays what it says.
func Bench(b *testing.B, st memory.Store) {
	m, err := memory.New(memory.Options{Store: st, Log: slog.New(slog.DiscardHandler),
		Count: func(_, s string) int { return len(strings.Fields(s)) }})
	if err != nil {
		b.Fatal(err)
	}
	h := router.Chain(router.HandlerFunc(reply), m.Middleware())
	ctx := router.WithIdentity(context.Background(), router.Identity{Team: "bench"})
	const body = `{"model":"chat","messages":[{"role":"user","content":"one more question about the plan"}]}`
	b.Run("none", func(b *testing.B) {
		for b.Loop() {
			serveOnce(b, h, ctx, body, "")
		}
	})
	for _, n := range []int{10, 200} {
		b.Run(fmt.Sprintf("stored=%d", n), func(b *testing.B) {
			hist := make([]memory.Message, n)
			for i := range hist {
				role := "user"
				if i%2 == 1 {
					role = "assistant"
				}
				hist[i] = text(role, strings.Repeat("lorem ipsum dolor sit amet ", 8))
			}
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				c := conv("bench")
				for j := range hist {
					hist[j].ID = memory.NewID("msg_")
				}
				if err := st.CreateConversation(ctx, c, hist); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				serveOnce(b, h, ctx, body, c.ID)
			}
		})
	}
}

func reply(context.Context, *router.ChatRequest) (router.Stream, error) {
	return &one{c: &router.Chunk{Whole: true,
		Data: []byte(`{"object":"chat.completion","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"Here is the answer."},"finish_reason":"stop"}]}`)}}, nil
}

type one struct{ c *router.Chunk }

func (o *one) Next() (*router.Chunk, error) {
	if o.c == nil {
		return nil, io.EOF
	}
	c := o.c
	o.c = nil
	return c, nil
}

func (o *one) Close() error { return nil }

func serveOnce(b *testing.B, h router.Handler, ctx context.Context, body, conv string) {
	req, err := router.ParseChatRequest([]byte(body))
	if err != nil {
		b.Fatal(err)
	}
	req.Conversation = conv
	s, err := h.Serve(ctx, req)
	if err != nil {
		b.Fatal(err)
	}
	for {
		if _, err := s.Next(); err != nil {
			break
		}
	}
	s.Close()
}
