package budget

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"

	"llmproxy/router"
)

func TestCuts(t *testing.T) {
	for _, tc := range []struct {
		raw       string
		word, any int
	}{
		{"", 0, 0},
		{"a", 0, 0},
		{"ab cd", 2, 4},
		{`a\n b`, 0, 4},            // the space follows an escape, not a letter
		{`x\u00e9 y`, 0, 8},        // nor a \u escape's last hex digit
		{`ab\ud83d\ude00c`, 0, 14}, // never between the halves of a pair
		{"é ab", 0, 4},             // never inside a multi-byte character
		{`ab \\`, 2, 3},            // before an escape is a cut
		{"x" + strings.Repeat("é", 3), 0, 5},
	} {
		w, a := cuts([]byte(tc.raw))
		if w != tc.word || a != tc.any {
			t.Errorf("cuts(%q) = %d, %d; want %d, %d", tc.raw, w, a, tc.word, tc.any)
		}
	}
}

// sampleTexts are representative outputs: prose, code, CJK without
// spaces (as literal UTF-8 and as \u escapes after JSON encoding), emoji,
// and a text with no boundary at all.
func sampleTexts(r *rand.Rand, size int) map[string]string {
	words := []string{"the", "budget", "guard", "counts", "tokens", "as", "they", "arrive,", "and", "1234567", "don't",
		"stream", "ends.", "Hello", "world!", "naïve", "café", "(x)", "—", "\n", "\n\n", "  ", "\t"}
	code := []string{"func", "main()", "{", "}", "\n\t", "return", "err", "!=", "nil", ";", "x:=1", "//", "fmt.Println(\"hi\")", "\n"}
	cjk := []string{"你好", "世界", "，", "。", "预算", "守卫", "计数", "令牌", "\n", "🙂", "😀"}
	gen := func(vocab []string, sep string) string {
		var b strings.Builder
		for b.Len() < size {
			b.WriteString(vocab[r.IntN(len(vocab))])
			b.WriteString(sep)
		}
		return b.String()
	}
	return map[string]string{
		"prose":   gen(words, " "),
		"code":    gen(code, " "),
		"cjk":     gen(cjk, ""),
		"endless": strings.Repeat("a", size),
	}
}

// chunked splits s into deltas of 1 to 12 runes, as an upstream streams.
func chunked(r *rand.Rand, s string) []string {
	var out []string
	rs := []rune(s)
	for len(rs) > 0 {
		n := min(1+r.IntN(12), len(rs))
		out = append(out, string(rs[:n]))
		rs = rs[n:]
	}
	return out
}

// deltaChunks is the stream of a reply whose deltas are parts; ascii
// encodes non-ASCII as \u escapes, as Python servers do.
type deltaChunks struct {
	parts []string
	ascii bool
	i     int
}

func (d *deltaChunks) Next() (*router.Chunk, error) {
	if d.i >= len(d.parts) {
		return nil, io.EOF
	}
	q, _ := json.Marshal(d.parts[d.i])
	if d.ascii {
		q = []byte(asciiJSON(d.parts[d.i]))
	}
	d.i++
	return &router.Chunk{Data: fmt.Appendf(nil, `{"id":"c","choices":[{"index":0,"delta":{"content":%s}}]}`, q)}, nil
}

func (d *deltaChunks) Close() error { return nil }

func asciiJSON(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteString(`\` + string(r))
		case r < 0x20 || r > 0x7e:
			if r > 0xffff {
				r -= 0x10000
				fmt.Fprintf(&b, `\u%04x\u%04x`, 0xd800+(r>>10), 0xdc00+(r&0x3ff))
				continue
			}
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// TestIncrementalCount compares the incremental count of a stream without
// usage with the tokenizer's count of its whole text: never below it (the
// budget must not undercharge) and within 0.5 %.
func TestIncrementalCount(t *testing.T) {
	r := rand.New(rand.NewPCG(16, 2))
	g := mustGuard(t, GuardOptions{})
	for _, model := range []string{"gpt-4o", "gpt-4"} {
		size := 64 << 10
		if testing.Short() {
			size = 32 << 10 // two flushes at least
		}
		for name, text := range sampleTexts(r, size) {
			for _, ascii := range []bool{false, true} {
				s := &guardedStream{g: g, alias: model, buf: g.buffer(), prompt: &promptCount{}, req: &router.ChatRequest{Result: &router.Result{}},
					inner: &deltaChunks{parts: chunked(r, text), ascii: ascii}}
				for {
					if _, err := s.Next(); err != nil {
						break
					}
					if len(*s.buf) > flushAt+256 {
						t.Fatalf("%s/%s: buffer holds %d bytes; want at most about %d", model, name, len(*s.buf), flushAt)
					}
				}
				got := s.estimated().CompletionTokens
				exact := g.counter.Text(model, text)
				dev := float64(got-exact) / float64(exact) * 100
				t.Logf("%s/%s ascii=%v: incremental %d, whole %d (%+.3f%%)", model, name, ascii, got, exact, dev)
				if got < exact || dev > 0.5 {
					t.Errorf("%s/%s ascii=%v: incremental count %d; want ≥ %d and within 0.5%%", model, name, ascii, got, exact)
				}
			}
		}
	}
}

// endless is a fast upstream that never ends and never reports usage: it
// cycles through prebuilt chunks, so it allocates nothing per chunk but
// the Chunk itself.
type endless struct {
	chunks [][]byte
	texts  []string
	i      int
}

func newEndless(r *rand.Rand) *endless {
	e := &endless{}
	// Word-sized deltas, as upstreams stream about a token per chunk: the
	// guard's exact mode (after a budget cut nears) counts each chunk alone.
	words := strings.Fields("the budget guard counts tokens as they arrive, and 1234567 don't stream ends. Hello world! naïve café (x) —")
	for range 8000 {
		p := " " + words[r.IntN(len(words))]
		q, _ := json.Marshal(p)
		e.chunks = append(e.chunks, fmt.Appendf(nil, `{"id":"chatcmpl-1","object":"chat.completion.chunk","created":7,"model":"up","choices":[{"index":0,"delta":{"content":%s},"finish_reason":null}]}`, q))
		e.texts = append(e.texts, p)
	}
	return e
}

func (e *endless) Next() (*router.Chunk, error) {
	c := &router.Chunk{Data: e.chunks[e.i%len(e.chunks)]}
	e.i++
	return c, nil
}

func (e *endless) Close() error { return nil }

// text is what the first n chunks carried.
func (e *endless) text(n int) string {
	var b strings.Builder
	for i := range n {
		b.WriteString(e.texts[i%len(e.texts)])
	}
	return b.String()
}

func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// TestStreamCountBoundedMemory is issue 16's endless stream: an upstream
// streaming fast, with no usage report, until the client leaves or the
// budget cuts it. The guard's memory must not grow with the output, and
// the settled count must be the tokenizer's count of what was served.
func TestStreamCountBoundedMemory(t *testing.T) {
	// Bytes of text the client reads: twice the heap growth allowed
	// below, so keeping the output would fail; more only slows the test
	// (the race detector runs it at ~10 µs a chunk).
	output := 512 << 10
	for _, tc := range []struct {
		name   string
		budget *BudgetSpec // at $1 per million output tokens; nil: no cut
	}{
		{"client leaves", nil},
		// About a token per 5 bytes here: the cut lands at about 60 % of output.
		{"budget cut", &BudgetSpec{USD: float64(output) / 8e6, Period: Day}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(7, 7))
			up := newEndless(r)
			g := mustGuard(t, GuardOptions{
				Teams:  map[string]TeamPolicy{"t": {Budget: tc.budget}},
				Models: map[string]ModelPolicy{"m": outputOnly},
			})
			req := chatReq(t, `{"model":"m","stream":true,"max_tokens":3000000,"messages":[{"role":"user","content":"hi"}]}`)
			st, err := g.Middleware()(&fakeUpstream{make: func(*router.ChatRequest) router.Stream { return up }}).Serve(teamCtx("t", "k"), req)
			if err != nil {
				t.Fatal(err)
			}
			g.counter.Text("m", "warm up") // the codec's tables are built on first use
			before := heapInUse()
			read, served := 0, 0
			var peak uint64
			var end error
			for read < output {
				c, err := st.Next()
				if err != nil {
					end = err
					break
				}
				if c.UsageOnly || isFinish(c.Data) {
					continue
				}
				read += len(up.texts[served%len(up.texts)])
				served++
				if served%50000 == 0 {
					peak = max(peak, heapInUse())
				}
			}
			peak = max(peak, heapInUse())
			st.Close() // the client leaves, or the cut already ended it
			var re *router.Error
			if cut := errors.As(end, &re) && re.Kind == router.KindBudgetExceeded; cut != (tc.budget != nil) {
				t.Fatalf("stream ended with %v; want a budget cut: %v", end, tc.budget != nil)
			}
			grew := int64(peak) - int64(before)
			t.Logf("%s: served %d chunks, %d bytes of text; heap grew %d bytes", tc.name, served, read, grew)
			if grew > 256<<10 {
				t.Errorf("heap grew %d bytes over %d bytes of output; want under 256 KiB (O(chunk), not O(output))", grew, read)
			}
			exact := g.counter.Text("m", up.text(served))
			got := req.Result.Usage.CompletionTokens
			if !req.Result.Estimated || got < exact || float64(got-exact) > 0.005*float64(exact) {
				t.Errorf("settled %d completion tokens (estimated %v); want ≥ %d, within 0.5%%", got, req.Result.Estimated, exact)
			}
		})
	}
}
