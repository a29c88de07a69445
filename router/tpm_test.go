package router

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestTPMCorrection: admission takes the estimate (prompt plus completion
// cap); when the stream ends the reported usage refunds or charges the
// difference, and without a report the estimate stands.
func TestTPMCorrection(t *testing.T) {
	withUsage := func(total int) *Chunk {
		c := contentChunk("x")
		c.Usage = &Usage{PromptTokens: total / 2, CompletionTokens: total - total/2, TotalTokens: total}
		return c
	}
	whole := wholeChunk("x")
	whole.Usage = &Usage{PromptTokens: 30, CompletionTokens: 10} // no total: prompt + completion
	tests := []struct {
		name   string
		chunks []*Chunk
		stream bool
		want   float64 // tokens left after one request
	}{
		{"refund: used less than the estimate", []*Chunk{withUsage(50)}, true, 1000 - 50},
		{"charge: used more than the estimate", []*Chunk{contentChunk("x"), withUsage(800)}, true, 1000 - 800},
		{"trailing usage-only chunk", []*Chunk{contentChunk("x"), {UsageOnly: true, Usage: &Usage{TotalTokens: 120}}}, true, 1000 - 120},
		{"whole reply, total from its parts", []*Chunk{whole}, false, 1000 - 40},
		{"no usage: the estimate stands", []*Chunk{contentChunk("x")}, true, 1000 - 500},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clk := &clock{t: time.Unix(1000, 0)} // frozen: no refill
			p := &fakeProvider{chat: answers(tc.chunks...)}
			r, _ := New(Options{Now: clk.Now, Tokens: func(string, []byte) int { return 100 },
				Routes: []Route{{Alias: "chat", Deployments: []Deployment{{Provider: "p", Model: "m", Client: p, TPM: 1000}}}}})
			s, err := r.Serve(context.Background(), &ChatRequest{Model: "chat", Stream: tc.stream, MaxTokens: 400})
			if err != nil {
				t.Fatalf("Serve() error = %v", err)
			}
			if got := r.states["p/m"].tpm.tokensAt(clk.Now()); got != 500 {
				t.Errorf("tokens left while streaming = %v; want 500 (the estimate, 100+400, taken)", got)
			}
			transcript(s)
			s.Close()
			if got := r.states["p/m"].tpm.tokensAt(clk.Now()); got != tc.want {
				t.Errorf("tokens left after Close = %v; want %v", got, tc.want)
			}
		})
	}
}

// TestTPMRefundAdmitsMore: refunds let requests through that the estimate
// alone would have sent elsewhere; a charge past the bucket sends the next
// one elsewhere.
func TestTPMRefundAdmitsMore(t *testing.T) {
	used := func(total int) func(context.Context, *ChatRequest) (Stream, error) {
		c := contentChunk("p1")
		c.Usage = &Usage{TotalTokens: total}
		return answers(c)
	}
	tests := []struct {
		name string
		used int
		want string
	}{
		{"refunded", 50, "p1 p1 p1"},            // 1000 - 3×50: each estimate of 500 fits
		{"charged into debt", 1500, "p1 p2 p2"}, // 1000 - 1500 < 0: nothing fits
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clk := &clock{t: time.Unix(1000, 0)}
			p1 := &fakeProvider{chat: used(tc.used)}
			p2 := &fakeProvider{chat: answers(contentChunk("p2"))}
			r, _ := New(Options{Now: clk.Now, Strategy: StrategyPriority, Tokens: func(string, []byte) int { return 100 },
				Routes: []Route{{Alias: "chat", Deployments: []Deployment{
					{Provider: "p1", Model: "m", Client: p1, TPM: 1000}, {Provider: "p2", Model: "m", Client: p2}}}}})
			var got []string
			for range 3 {
				s, err := r.Serve(context.Background(), &ChatRequest{Model: "chat", Stream: true, MaxTokens: 400})
				if err != nil {
					t.Fatalf("Serve() error = %v", err)
				}
				c, _ := s.Next()
				got = append(got, between(string(c.Data), `"content":"`, `"`))
				transcript(s)
				s.Close()
			}
			if g := joinSpace(got); g != tc.want {
				t.Errorf("answered by %q; want %q", g, tc.want)
			}
		})
	}
}

func joinSpace(s []string) string { return strings.Join(s, " ") }

func TestTokenBucket(t *testing.T) {
	now := time.Unix(1000, 0)
	b := newTokenBucket(600) // 10 per second
	if !b.take(now, 600) || b.take(now, 1) {
		t.Fatalf("take: a full bucket of 600 should grant 600, then nothing")
	}
	b.adjust(now, -2000)
	if got := b.tokensAt(now); got != -600 {
		t.Errorf("after a big charge tokens = %v; want -600 (debt capped at one burst)", got)
	}
	if got := b.tokensAt(now.Add(30 * time.Second)); got != -300 {
		t.Errorf("30s later tokens = %v; want -300 (refilled at 10/s)", got)
	}
	b.adjust(now.Add(30*time.Second), 5000)
	if got := b.tokensAt(now.Add(30 * time.Second)); got != 600 {
		t.Errorf("after a big refund tokens = %v; want 600 (capped at the burst)", got)
	}
}
