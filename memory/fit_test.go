package memory_test

import (
	"encoding/json"
	"strings"
	"testing"

	"llmproxy/memory"
	"llmproxy/router"
)

func msg(role string, tokens int) memory.Message {
	return memory.Message{Role: role, Tokens: tokens, Content: json.RawMessage(`"` + role + `"`)}
}

func roles(ms []memory.Message) string {
	var out []string
	for _, m := range ms {
		out = append(out, m.Role)
	}
	return strings.Join(out, ",")
}

func TestFit(t *testing.T) {
	// Each message costs Tokens + 4 (the template).
	hist := []memory.Message{
		msg("system", 6),                    // 10, always kept
		msg("user", 6), msg("assistant", 6), // turn 1: 20
		msg("user", 6), msg("assistant", 6), msg("tool", 6), msg("assistant", 6), // turn 2: 40, a tool pair
		msg("user", 6), msg("assistant", 6), // turn 3: 20
	}
	for _, tc := range []struct {
		name    string
		limit   int
		want    string
		dropped int
	}{
		{"no limit", -1, roles(hist), 0},
		{"everything fits", 90, roles(hist), 0},
		{"oldest turn goes", 89, "system,user,assistant,tool,assistant,user,assistant", 1},
		{"tool pair goes whole", 69, "system,user,assistant", 2},
		{"only system is left", 29, "system", 3},
		{"nothing fits", 0, "system", 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kept, dropped := memory.Fit(hist, tc.limit)
			if roles(kept) != tc.want || dropped != tc.dropped {
				t.Errorf("Fit(%d) = %s, %d dropped; want %s, %d", tc.limit, roles(kept), dropped, tc.want, tc.dropped)
			}
		})
	}
}

// TestHistoryFitsContextWindow drives a conversation longer than the
// model's window through the middleware: the upstream gets the newest
// turns that fit, the tool call with its result, and the header count.
func TestHistoryFitsContextWindow(t *testing.T) {
	db := mustOpen(t)
	m := newMemory(t, db, memory.Options{ContextWindow: func(string) int { return 400 }})
	conv, err := m.CreateConversation(teamA, "a", []byte(`{"items":[
		{"type":"message","role":"system","content":"sys"},
		{"type":"message","role":"user","content":"`+strings.Repeat("old ", 60)+`"},
		{"type":"message","role":"assistant","content":"`+strings.Repeat("older ", 60)+`"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	// A tool round trip, stored as the client sent it.
	h := router.Chain(&upstream{}, m.Middleware())
	if _, err := turn(t, h, teamA, `{"model":"chat","messages":[{"role":"user","content":"weather?"},
		{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"w","arguments":"{}"}}]},
		{"role":"tool","tool_call_id":"call_1","content":"`+strings.Repeat("sunny ", 40)+`"}]}`, conv.ID); err != nil {
		t.Fatal(err)
	}
	up := &upstream{}
	h = router.Chain(up, m.Middleware())
	// Window 400 - cap 100 - margin 256 - own 5 leaves 39 tokens: too few
	// for the tool turn (~60), so only the system message is kept...
	req, err := turn(t, h, teamA, `{"model":"chat","max_tokens":100,"messages":[{"role":"user","content":"and now?"}]}`, conv.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got := roleList(messagesOf(t, up.bodies[0])); got != "system,user" || req.Result.MemoryDropped != 2 {
		t.Errorf("upstream got %s, dropped %d; want system,user and 2 turns dropped", got, req.Result.MemoryDropped)
	}
	// ...and with a smaller cap the tool turn fits, whole; the oldest does not.
	req, err = turn(t, h, teamA, `{"model":"chat","max_tokens":40,"messages":[{"role":"user","content":"and now?"}]}`, conv.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := "system,user,assistant,tool,assistant,user,assistant,user"
	if got := roleList(messagesOf(t, up.bodies[1])); got != want || req.Result.MemoryDropped != 1 {
		t.Errorf("upstream got %s, dropped %d; want %s and 1 dropped", got, req.Result.MemoryDropped, want)
	}
	ms := messagesOf(t, up.bodies[1])
	if !strings.Contains(string(ms[2].ToolCalls), "call_1") || ms[3].ToolCallID != "call_1" {
		t.Errorf("tool pair = %s / %q; want call_1 with its result", ms[2].ToolCalls, ms[3].ToolCallID)
	}
}

func roleList(ms []router.Message) string {
	var out []string
	for _, m := range ms {
		out = append(out, m.Role)
	}
	return strings.Join(out, ",")
}
