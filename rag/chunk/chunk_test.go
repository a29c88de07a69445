package chunk

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/tiktoken-go/tokenizer"
)

func codec(tb testing.TB) tokenizer.Codec {
	tb.Helper()
	cd, err := tokenizer.Get(tokenizer.Cl100kBase)
	if err != nil {
		tb.Fatal(err)
	}
	return cd
}

// prose is n sentences of plain ASCII that differ from each other, so an
// overlap can be found only where it was put.
func prose(n int) string {
	var b strings.Builder
	words := []string{"gateway", "token", "budget", "router", "provider", "stream", "ledger", "vector", "chunk", "embedding"}
	for i := range n {
		fmt.Fprintf(&b, "Sentence %d says the %s met the %s at %d o'clock. ", i, words[i%len(words)], words[(i*7+3)%len(words)], i%24)
		if i%9 == 8 {
			b.WriteString("\n\n")
		}
	}
	return b.String()
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		o    Options
		want string // "" means valid
	}{
		{Options{}, ""},
		{Options{MaxTokens: 100, OverlapTokens: 50}, ""},
		{Options{MaxTokens: 4096, OverlapTokens: 0}, ""},
		{Options{MaxTokens: 800, OverlapTokens: 400}, ""},
		{Options{MaxTokens: 99}, "max_chunk_size_tokens 99 is out of range"},
		{Options{MaxTokens: 4097}, "max_chunk_size_tokens 4097 is out of range"},
		{Options{MaxTokens: -5}, "out of range"},
		{Options{MaxTokens: 100, OverlapTokens: 51}, "chunk_overlap_tokens 51 is out of range"},
		{Options{MaxTokens: 500, OverlapTokens: -1}, "chunk_overlap_tokens -1"},
		{Options{OverlapTokens: 300}, "chunk_overlap_tokens 300"}, // with the default 500
	} {
		err := tc.o.Validate()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%+v.Validate() = %v; want nil", tc.o, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%+v.Validate() = %v; want an error with %q", tc.o, err, tc.want)
		}
	}
}

func TestDefaults(t *testing.T) {
	for _, tc := range []struct{ in, want Options }{
		{Options{}, Options{500, 50}},
		{Options{MaxTokens: 800}, Options{800, 0}}, // an explicit size keeps overlap 0
		{Options{OverlapTokens: 10}, Options{500, 10}},
		{Options{MaxTokens: 1, OverlapTokens: -3}, Options{100, 0}},
		{Options{MaxTokens: 9000, OverlapTokens: 9000}, Options{4096, 2048}},
	} {
		if got := tc.in.clamp(); got != tc.want {
			t.Errorf("%+v.clamp() = %+v; want %+v", tc.in, got, tc.want)
		}
	}
}

func TestSplitNothing(t *testing.T) {
	for _, s := range []string{"", " ", "\n\n\t  \r\n", strings.Repeat(" ", 10000)} {
		if got := Split(s, Options{}); got != nil {
			t.Errorf("Split(%q) = %d chunks; want none", s[:min(len(s), 10)], len(got))
		}
	}
}

func TestSplitShortText(t *testing.T) {
	text := "  Hello, world.\n"
	got := Split(text, Options{})
	want := []Chunk{{Index: 0, Text: text, Tokens: count(codec(t), text)}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Split(%q) = %+v; want %+v", text, got, want)
	}
}

// TestSplitBounds checks, on every kind of text, what must always hold:
// each chunk re-counts to at most MaxTokens, is valid UTF-8, and the
// chunks cover the text in order. The texts are a few windows long at
// the smallest size; prose is long enough for several of the largest.
func TestSplitBounds(t *testing.T) {
	texts := map[string]string{
		"prose":     prose(300),
		"cjk":       strings.Repeat("向量存储把文档切成块，每块嵌入一次。検索は速い。", 40),
		"emoji":     strings.Repeat("ok 👍🏽 family 👨‍👩‍👧‍👦 flag 🇺🇦 ", 40),
		"one word":  strings.Repeat("x", 3000),
		"digits":    strings.Repeat("1234567890", 150),
		"mixed":     strings.Repeat("naïve café — Ærø Ω≈ç √∫ ", 40) + prose(10),
		"newlines":  strings.Repeat("a\n\n\n\nb\r\n", 300),
		"invalid":   strings.Repeat("abc\xff\xfe def ", 200),
		"nul bytes": strings.Repeat("a\x00b ", 500),
	}
	for name, text := range texts {
		opts := []Options{{}, {100, 0}, {100, 50}, {137, 13}}
		if name == "prose" {
			opts = append(opts, Options{800, 400}, Options{4096, 2048})
		}
		for _, o := range opts {
			t.Run(fmt.Sprintf("%s/%d-%d", name, o.MaxTokens, o.OverlapTokens), func(t *testing.T) {
				if n := len(checkSplit(t, text, o)); o.MaxTokens == 100 && n < 3 {
					t.Errorf("%d chunks; want the text to be several windows long", n)
				}
			})
		}
	}
}

// checkSplit splits text and checks the result; it returns the chunks.
func checkSplit(t *testing.T, text string, o Options) []Chunk {
	t.Helper()
	cd := codec(t)
	eff := o.clamp()
	clean := strings.ToValidUTF8(text, "\uFFFD")
	chunks := Split(text, o)
	if strings.TrimSpace(clean) != "" && len(chunks) == 0 {
		t.Fatalf("Split gave no chunks for %d bytes of text", len(text))
	}
	for i, c := range chunks {
		if c.Index != i {
			t.Errorf("chunk %d: Index = %d", i, c.Index)
		}
		if n := count(cd, c.Text); n != c.Tokens || n > eff.MaxTokens {
			t.Errorf("chunk %d: re-counted %d tokens, Tokens = %d; want equal and at most %d", i, n, c.Tokens, eff.MaxTokens)
		}
		if !utf8.ValidString(c.Text) {
			t.Errorf("chunk %d is not valid UTF-8: %q", i, c.Text)
		}
		if strings.TrimSpace(c.Text) == "" {
			t.Errorf("chunk %d is only whitespace", i)
		}
	}
	if len(chunks) == 0 {
		return nil
	}
	sp := spans(cd, clean, eff)
	if len(sp) == 0 || sp[0].start != 0 || sp[len(sp)-1].end != len(clean) {
		t.Fatalf("spans do not cover the text: %+v (len %d)", sp, len(clean))
	}
	for i := 1; i < len(sp); i++ {
		if sp[i].start <= sp[i-1].start || sp[i].start > sp[i-1].end || sp[i].end <= sp[i-1].end {
			t.Fatalf("span %d %+v does not follow span %d %+v", i, sp[i], i-1, sp[i-1])
		}
	}
	return chunks
}

// TestSplitOverlap: on long ASCII text each chunk starts exactly
// OverlapTokens tokens (of the whole text's tokenization) before the
// previous one ends, and the chunks minus their overlaps are the text.
func TestSplitOverlap(t *testing.T) {
	cd := codec(t)
	text := prose(250)
	_, toks, _ := cd.Encode(text)
	bounds := map[int]int{0: 0} // byte offset → tokens before it
	off := 0
	for i, tok := range toks {
		off += len(tok)
		bounds[off] = i + 1
	}
	for _, o := range []Options{{}, {100, 0}, {100, 50}, {800, 400}, {250, 17}} {
		eff := o.clamp()
		sp := spans(cd, text, eff)
		chunks := Split(text, o)
		if len(chunks) != len(sp) || len(sp) < 3 {
			t.Fatalf("%+v: %d chunks, %d spans; want equal and at least 3", o, len(chunks), len(sp))
		}
		rebuilt := chunks[0].Text
		for i := 1; i < len(sp); i++ {
			a, b := sp[i-1], sp[i]
			if got := bounds[a.end] - bounds[b.start]; got != eff.OverlapTokens {
				t.Errorf("%+v: chunk %d overlaps the previous by %d tokens; want %d", o, i, got, eff.OverlapTokens)
			}
			if chunks[i].Text != text[b.start:b.end] {
				t.Fatalf("%+v: chunk %d text is not its span", o, i)
			}
			rebuilt += text[a.end:b.end]
		}
		if rebuilt != text {
			t.Errorf("%+v: chunks minus overlaps do not rebuild the text", o)
		}
		if got := Split(text, o); !reflect.DeepEqual(got, chunks) {
			t.Errorf("%+v: a second Split differs", o)
		}
	}
}

func FuzzSplit(f *testing.F) {
	f.Add(prose(30), 100, 50)
	f.Add("向量存储把文档切成块 👨‍👩‍👧‍👦 🇺🇦", 100, 10)
	f.Add("abc\xff\xfe def", 0, 0)
	f.Add(strings.Repeat("x", 1000), 120, 60)
	f.Add("", 500, 50)
	f.Fuzz(func(t *testing.T, text string, maxTokens, overlap int) {
		checkSplit(t, text, Options{MaxTokens: maxTokens, OverlapTokens: overlap})
	})
}

func BenchmarkSplit(b *testing.B) {
	text := prose(16500) // about 1 MB
	b.SetBytes(int64(len(text)))
	b.ResetTimer()
	for b.Loop() {
		Split(text, Options{})
	}
}
