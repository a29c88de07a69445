package demo

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"hash/fnv"
	"io"
	"strings"
	"time"

	"github.com/tiktoken-go/tokenizer"

	"llmproxy/router"
)

// Config configures the demo provider.
type Config struct {
	// Name is the provider's configured name (a metrics label).
	Name string
	// ChunkDelay is waited before each streamed chunk so the reply looks
	// typed; 0 sends every chunk at once.
	ChunkDelay time.Duration
	// Now is the clock behind "created"; nil means time.Now.
	Now func() time.Time
}

// Client is the demo provider. It is safe for concurrent use.
type Client struct {
	name  string
	delay time.Duration
	now   func() time.Time
	codec tokenizer.Codec
}

var (
	_ router.Provider = (*Client)(nil)
	_ router.Embedder = (*Client)(nil)
)

// echoWords is how much of the user's message the reply repeats.
const echoWords = 12

// New builds a demo Client. The o200k_base codec is built once here and
// shared by every request.
func New(cfg Config) *Client {
	codec, err := tokenizer.Get(tokenizer.O200kBase)
	if err != nil {
		panic("demo: o200k_base is built into the tokenizer: " + err.Error())
	}
	c := &Client{name: cfg.Name, delay: cfg.ChunkDelay, now: cfg.Now, codec: codec}
	if c.now == nil {
		c.now = time.Now
	}
	return c
}

// count is the o200k_base token count of s. The codec only fails when its
// regexp times out, and ours has no timeout.
func (c *Client) count(s string) int {
	n, _ := c.codec.Count(s)
	return n
}

// reply is everything one answer is made of, decided before the first chunk.
type reply struct {
	id      string
	created int64
	model   string
	// pieces are the content deltas, or the argument fragments of call.
	pieces []string
	call   *toolCall
	finish string
	usage  router.Usage
}

type toolCall struct {
	id, name string
}

// Chat answers req with a deterministic reply: streamed word by word when
// req.Stream is set, else as one Whole chat.completion chunk.
func (c *Client) Chat(ctx context.Context, req *router.ChatRequest) (router.Stream, error) {
	if err := ctx.Err(); err != nil {
		return nil, router.AsError(err)
	}
	msgs, err := req.Messages()
	if err != nil {
		return nil, err
	}
	r, err := c.plan(req, msgs)
	if err != nil {
		return nil, err
	}
	if !req.Stream {
		return &wholeStream{chunk: &router.Chunk{Data: r.completion(), Whole: true, Usage: &r.usage, Model: r.model}}, nil
	}
	return &stream{ctx: ctx, delay: c.delay, r: r, head: r.chunkHead()}, nil
}

func (c *Client) plan(req *router.ChatRequest, msgs []router.Message) (*reply, error) {
	model := req.Target.Model
	if model == "" {
		model = req.Model
	}
	h := fnv.New64a()
	h.Write([]byte(model))
	h.Write([]byte{0})
	h.Write(req.Body)
	sum := h.Sum(nil)
	r := &reply{
		id:      "chatcmpl-demo-" + hex.EncodeToString(sum),
		created: c.now().Unix(),
		model:   model,
		finish:  "stop",
	}
	last := lastUserText(msgs)
	tools, err := decodeTools(req)
	if err != nil {
		return nil, err
	}
	base := 0
	t := pickTool(tools, req.Field("tool_choice"), last)
	if t != nil && req.MaxTokens > 0 && c.count(t.Function.Name) > req.MaxTokens {
		t = nil // not even the name fits: answer in (truncated) text instead
	}
	if t != nil {
		r.call = &toolCall{id: "call_demo_" + hex.EncodeToString(sum[:6]), name: t.Function.Name}
		r.pieces = fragments(toolArguments(t.Function.Parameters, place(last)), 5)
		r.finish = "tool_calls"
		base = c.count(t.Function.Name)
	} else {
		r.pieces = words(replyText(last))
	}
	var n int
	var truncated bool
	r.pieces, n, truncated = c.fit(r.pieces, base, req.MaxTokens)
	if truncated {
		r.finish = "length"
	}
	r.usage.PromptTokens = c.promptTokens(msgs, req.Field("tools"))
	r.usage.CompletionTokens = base + n
	r.usage.TotalTokens = r.usage.PromptTokens + r.usage.CompletionTokens
	return r, nil
}

// fit keeps the longest prefix of pieces whose joined text, plus base
// tokens already spent, stays within max (0 means no limit). n is the token
// count of the kept text.
func (c *Client) fit(pieces []string, base, max int) (kept []string, n int, truncated bool) {
	var text strings.Builder
	for i, p := range pieces {
		m := c.count(text.String() + p)
		if max > 0 && base+m > max {
			return pieces[:i], n, true
		}
		text.WriteString(p)
		n = m
	}
	return pieces, n, false
}

// promptTokens counts msgs the way OpenAI's cookbook does for the gpt-4o
// family: 3 tokens of framing per message, 1 more for a name, the role and
// text, and 3 to prime the reply. Tool definitions and earlier tool calls are
// counted as their raw JSON, which is close to but not exactly what OpenAI
// bills for them.
func (c *Client) promptTokens(msgs []router.Message, tools []byte) int {
	n := 3
	for _, m := range msgs {
		n += 3 + c.count(m.Role) + c.count(m.Text())
		if m.Name != "" {
			n += 1 + c.count(m.Name)
		}
		if len(m.ToolCalls) > 0 {
			n += c.count(string(m.ToolCalls))
		}
	}
	if len(tools) > 0 && string(tools) != "null" {
		n += c.count(string(tools))
	}
	return n
}

func lastUserText(msgs []router.Message) string {
	for i := len(msgs) - 1; i >= 0; i-- {
		if msgs[i].Role == "user" {
			return msgs[i].Text()
		}
	}
	return ""
}

// replyText is the demo's whole answer to the user text last.
func replyText(last string) string {
	const intro = "This is llmproxy's offline demo model (not a real LLM). "
	const outro = " Point a route at a real provider in your config to get real answers."
	ws := strings.Fields(last)
	if len(ws) == 0 {
		return intro + "You did not send a user message." + outro
	}
	echo := strings.Join(ws[:min(len(ws), echoWords)], " ")
	if len(ws) > echoWords {
		echo += " ..."
	}
	return intro + `You said: "` + echo + `".` + outro
}

// words splits s at spaces, keeping each space with the word after it, the
// way tokenizers attach leading spaces.
func words(s string) []string {
	var out []string
	for s != "" {
		i := strings.IndexByte(s[1:], ' ')
		if i < 0 {
			out = append(out, s)
			break
		}
		out = append(out, s[:i+1])
		s = s[i+1:]
	}
	return out
}

// wholeStream is the one-chunk Stream of a non-streamed reply.
type wholeStream struct {
	chunk *router.Chunk
	done  bool
}

func (s *wholeStream) Next() (*router.Chunk, error) {
	if s.done {
		return nil, io.EOF
	}
	s.done = true
	return s.chunk, nil
}

func (s *wholeStream) Close() error { return nil }

// decodeTools reads the request's function tools, if any.
func decodeTools(req *router.ChatRequest) ([]tool, error) {
	raw := req.Field("tools")
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var ts []tool
	if err := json.Unmarshal(raw, &ts); err != nil {
		return nil, &router.Error{Kind: router.KindInvalidRequest, Param: "tools", Message: "Invalid 'tools': expected an array of tool objects."}
	}
	return ts, nil
}
