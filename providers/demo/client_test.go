package demo

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/tiktoken-go/tokenizer"
	"go.uber.org/goleak"

	"llmproxy/router"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var clock = func() time.Time { return time.Unix(1700000000, 0) }

func newClient() *Client { return New(Config{Name: "demo", Now: clock}) }

func mustCodec(t *testing.T) tokenizer.Codec {
	t.Helper()
	c, err := tokenizer.Get(tokenizer.O200kBase)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func count(t *testing.T, s string) int {
	t.Helper()
	n, err := mustCodec(t).Count(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func request(t *testing.T, body string) *router.ChatRequest {
	t.Helper()
	req, err := router.ParseChatRequest([]byte(body))
	if err != nil {
		t.Fatalf("ParseChatRequest(%s) error = %v", body, err)
	}
	req.Target = router.Target{Provider: "demo", Model: "demo-1"}
	return req
}

// chunkJSON is the client-side view of a chat.completion.chunk.
type chunkJSON struct {
	ID                string          `json:"id"`
	Object            string          `json:"object"`
	Created           int64           `json:"created"`
	Model             string          `json:"model"`
	SystemFingerprint json.RawMessage `json:"system_fingerprint"`
	Choices           []struct {
		Index int `json:"index"`
		Delta struct {
			Role      string  `json:"role"`
			Content   *string `json:"content"`
			ToolCalls []struct {
				Index    *int   `json:"index"`
				ID       string `json:"id"`
				Type     string `json:"type"`
				Function struct {
					Name      string `json:"name"`
					Arguments string `json:"arguments"`
				} `json:"function"`
			} `json:"tool_calls"`
		} `json:"delta"`
		Logprobs     json.RawMessage `json:"logprobs"`
		FinishReason *string         `json:"finish_reason"`
	} `json:"choices"`
	Usage *router.Usage `json:"usage"`
}

type streamed struct {
	raw    []*router.Chunk
	chunks []chunkJSON
	text   string // content deltas joined
	args   string // tool-call argument deltas joined
	finish string
}

func readStream(t *testing.T, c *Client, body string) streamed {
	t.Helper()
	s, err := c.Chat(context.Background(), request(t, body))
	if err != nil {
		t.Fatalf("Chat(%s) error = %v", body, err)
	}
	defer s.Close()
	var out streamed
	for {
		ch, err := s.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("Next() error = %v", err)
		}
		if !json.Valid(ch.Data) {
			t.Fatalf("chunk %d is not valid JSON: %s", len(out.raw), ch.Data)
		}
		var cj chunkJSON
		if err := json.Unmarshal(ch.Data, &cj); err != nil {
			t.Fatalf("chunk %d: %v", len(out.raw), err)
		}
		out.raw, out.chunks = append(out.raw, ch), append(out.chunks, cj)
		for _, choice := range cj.Choices {
			if d := choice.Delta.Content; d != nil {
				out.text += *d
			}
			for _, tc := range choice.Delta.ToolCalls {
				out.args += tc.Function.Arguments
			}
			if choice.FinishReason != nil {
				out.finish = *choice.FinishReason
			}
		}
	}
}

const hello = `{"model":"demo","stream":true,"messages":[{"role":"system","content":"Be nice."},{"role":"user","content":"Hello there, how are you today?"}]}`

func TestChatStreamShape(t *testing.T) {
	got := readStream(t, newClient(), hello)
	if n := len(got.chunks); n < 8 {
		t.Fatalf("Chat() streamed %d chunks; want at least 8", n)
	}
	first := got.chunks[0]
	if first.Object != "chat.completion.chunk" || !strings.HasPrefix(first.ID, "chatcmpl-demo-") || first.Created != 1700000000 || first.Model != "demo-1" {
		t.Errorf("first chunk = %q %q %d %q; want chat.completion.chunk chatcmpl-demo-… 1700000000 demo-1", first.Object, first.ID, first.Created, first.Model)
	}
	if d := first.Choices[0].Delta; d.Role != "assistant" || d.Content == nil || *d.Content != "" {
		t.Errorf("first delta = %+v; want role assistant and content \"\"", d)
	}
	for i, c := range got.chunks {
		if c.ID != first.ID || c.Created != first.Created || c.Model != first.Model || string(c.SystemFingerprint) != "null" {
			t.Errorf("chunk %d header = %q %d %q; want it equal to the first chunk's", i, c.ID, c.Created, c.Model)
		}
	}
	want := `This is llmproxy's offline demo model (not a real LLM). You said: "Hello there, how are you today?".`
	if !strings.HasPrefix(got.text, want) {
		t.Errorf("Chat() content = %q; want it to start with %q", got.text, want)
	}
	if got.finish != "stop" {
		t.Errorf("Chat() finish_reason = %q; want stop", got.finish)
	}
	fin := got.chunks[len(got.chunks)-2]
	if len(fin.Choices) != 1 || fin.Choices[0].FinishReason == nil || fin.Choices[0].Delta.Content != nil || string(fin.Choices[0].Logprobs) != "null" {
		t.Errorf("finish chunk = %s; want an empty delta with finish_reason", got.raw[len(got.raw)-2].Data)
	}
	last := got.raw[len(got.raw)-1]
	lastJSON := got.chunks[len(got.chunks)-1]
	if !last.UsageOnly || last.Usage == nil || lastJSON.Choices == nil || len(lastJSON.Choices) != 0 || lastJSON.Usage == nil {
		t.Fatalf("last chunk = %s (UsageOnly %v); want choices [] and usage", last.Data, last.UsageOnly)
	}
	if *lastJSON.Usage != *last.Usage {
		t.Errorf("usage chunk JSON = %+v; Chunk.Usage = %+v; want equal", *lastJSON.Usage, *last.Usage)
	}
}

func TestChatUsage(t *testing.T) {
	got := readStream(t, newClient(), hello)
	u := got.raw[len(got.raw)-1].Usage
	if want := count(t, got.text); u.CompletionTokens != want {
		t.Errorf("usage completion_tokens = %d; want %d (tokenizer count of %q)", u.CompletionTokens, want, got.text)
	}
	// 3 per message + role + content, and 3 to prime the reply.
	wantPrompt := 3 + (3 + count(t, "system") + count(t, "Be nice.")) + (3 + count(t, "user") + count(t, "Hello there, how are you today?"))
	if u.PromptTokens != wantPrompt {
		t.Errorf("usage prompt_tokens = %d; want %d", u.PromptTokens, wantPrompt)
	}
	if u.TotalTokens != u.PromptTokens+u.CompletionTokens {
		t.Errorf("usage total_tokens = %d; want %d", u.TotalTokens, u.PromptTokens+u.CompletionTokens)
	}
}

func TestChatDeterministic(t *testing.T) {
	a, b := readStream(t, newClient(), hello), readStream(t, newClient(), hello)
	if len(a.raw) != len(b.raw) {
		t.Fatalf("two runs streamed %d and %d chunks; want equal", len(a.raw), len(b.raw))
	}
	for i := range a.raw {
		if string(a.raw[i].Data) != string(b.raw[i].Data) {
			t.Errorf("chunk %d differs between runs:\n%s\n%s", i, a.raw[i].Data, b.raw[i].Data)
		}
	}
	other := readStream(t, newClient(), strings.Replace(hello, "Hello there", "Goodbye", 1))
	if other.text == a.text || other.chunks[0].ID == a.chunks[0].ID {
		t.Errorf("a different message gave the same reply %q or id %q", other.text, other.chunks[0].ID)
	}
}

func TestChatEcho(t *testing.T) {
	tests := []struct {
		name, content, want string
	}{
		{"long message is cut at 12 words", "one two three four five six seven eight nine ten eleven twelve thirteen fourteen",
			`You said: "one two three four five six seven eight nine ten eleven twelve ...".`},
		{"whitespace collapses", "  spaced \n\t out  ", `You said: "spaced out".`},
		{"quotes and unicode survive", `say "héllo" 日本 \ ok`, `You said: "say "héllo" 日本 \ ok".`},
		{"no user text", "", "You did not send a user message."},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q, _ := json.Marshal(tc.content)
			got := readStream(t, newClient(), `{"model":"demo","stream":true,"messages":[{"role":"user","content":`+string(q)+`}]}`)
			if !strings.Contains(got.text, tc.want) {
				t.Errorf("Chat() content = %q; want it to contain %q", got.text, tc.want)
			}
		})
	}
}

func TestChatMaxTokens(t *testing.T) {
	full := readStream(t, newClient(), hello)
	fullTokens := count(t, full.text)
	tests := []struct {
		max        int
		wantFinish string
	}{
		{1, "length"}, {5, "length"}, {12, "length"}, {fullTokens, "stop"}, {1000, "stop"},
	}
	for _, tc := range tests {
		body := strings.Replace(hello, `"stream":true`, `"stream":true,"max_completion_tokens":`+itoa(tc.max), 1)
		got := readStream(t, newClient(), body)
		u := got.raw[len(got.raw)-1].Usage
		if got.finish != tc.wantFinish {
			t.Errorf("max_tokens %d: finish_reason = %q; want %q", tc.max, got.finish, tc.wantFinish)
		}
		if u.CompletionTokens > tc.max || u.CompletionTokens != count(t, got.text) {
			t.Errorf("max_tokens %d: completion_tokens = %d for %q; want ≤ %d and = %d", tc.max, u.CompletionTokens, got.text, tc.max, count(t, got.text))
		}
		if !strings.HasPrefix(full.text, got.text) {
			t.Errorf("max_tokens %d: content %q is not a prefix of %q", tc.max, got.text, full.text)
		}
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

func TestChatNonStreamMatchesCollect(t *testing.T) {
	c := newClient()
	plain := strings.Replace(hello, `"stream":true`, `"stream":false`, 1)
	s, err := c.Chat(context.Background(), request(t, plain))
	if err != nil {
		t.Fatal(err)
	}
	whole, err := s.Next()
	if err != nil || !whole.Whole || whole.Usage == nil {
		t.Fatalf("Next() = %+v, %v; want one Whole chunk with usage", whole, err)
	}
	if _, err := s.Next(); err != io.EOF {
		t.Errorf("second Next() error = %v; want io.EOF", err)
	}
	s.Close()
	var got struct {
		Object  string `json:"object"`
		Choices []struct {
			Message struct {
				Role    string          `json:"role"`
				Content string          `json:"content"`
				Refusal json.RawMessage `json:"refusal"`
			} `json:"message"`
			FinishReason string `json:"finish_reason"`
		} `json:"choices"`
		Usage router.Usage `json:"usage"`
	}
	if err := json.Unmarshal(whole.Data, &got); err != nil {
		t.Fatalf("Whole body %s: %v", whole.Data, err)
	}
	st, err := c.Chat(context.Background(), request(t, hello))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	_, usage, err := router.Collect(st)
	if err != nil {
		t.Fatal(err)
	}
	streamedText := readStream(t, c, hello).text
	m := got.Choices[0].Message
	if got.Object != "chat.completion" || m.Role != "assistant" || string(m.Refusal) != "null" || got.Choices[0].FinishReason != "stop" {
		t.Errorf("Whole body = %s; want a chat.completion with role assistant, refusal null, finish stop", whole.Data)
	}
	if m.Content != streamedText {
		t.Errorf("non-stream content = %q; want the streamed text %q", m.Content, streamedText)
	}
	if got.Usage != *whole.Usage || *usage != *whole.Usage {
		t.Errorf("usage: body %+v, Chunk %+v, streamed %+v; want all equal", got.Usage, *whole.Usage, *usage)
	}
}

func TestChatCanceled(t *testing.T) {
	c := New(Config{Now: clock, ChunkDelay: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	s, err := c.Chat(ctx, request(t, hello))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	cancel()
	if _, err := s.Next(); router.AsError(err).Kind != router.KindCanceled {
		t.Errorf("Next() after cancel error = %v; want KindCanceled", err)
	}
	if _, err := c.Chat(ctx, request(t, hello)); !errors.Is(err, context.Canceled) {
		t.Errorf("Chat(canceled ctx) error = %v; want context.Canceled", err)
	}
}

func TestChatDelay(t *testing.T) {
	c := New(Config{Now: clock, ChunkDelay: time.Millisecond})
	start := time.Now()
	got := readStream(t, c, hello)
	if min := time.Duration(len(got.raw)) * time.Millisecond; time.Since(start) < min {
		t.Errorf("stream of %d chunks took %v; want at least %v", len(got.raw), time.Since(start), min)
	}
}

func TestChatInvalidMessages(t *testing.T) {
	req := request(t, `{"model":"demo","messages":[{"role":1}]}`)
	if _, err := newClient().Chat(context.Background(), req); router.AsError(err).Kind != router.KindInvalidRequest {
		t.Errorf("Chat(bad messages) error = %v; want KindInvalidRequest", err)
	}
}
