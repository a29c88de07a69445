package budget

import (
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/dlclark/regexp2/v2"
	"github.com/tiktoken-go/tokenizer"
)

// splitPatterns are the split regexps of tiktoken-go's codecs
// (codec/o200k_base.go, codec/cl100k_base.go), compiled here to get the
// pieces they cut, which Count does not expose.
var splitPatterns = map[tokenizer.Encoding]string{
	tokenizer.O200kBase:  `[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+`,
	tokenizer.Cl100kBase: `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`,
}

var encodings = []tokenizer.Encoding{tokenizer.O200kBase, tokenizer.Cl100kBase}

// countCorpus covers what the split treats differently: words in every
// case with contractions, letters of every category (titlecase ǅ,
// modifier ʰ, other ª, marks alone and after spaces), numbers of every
// kind and length, punctuation runs before line breaks and slashes,
// every sort of space and line break, CJK, emoji with joiners, text
// outside the BMP, special-token strings (Count treats them as text) and
// invalid UTF-8.
var countCorpus = []string{
	"",
	"Hello, world! How are you doing today?",
	"I'm sure you're right, they've said we'll go and he'd've known it's Bob's.",
	"DON'T SHOUT, I'LL HEAR YOU'RE THERE. WE'VE I'M HE'D IT'S",
	"don'T Don'T dOn't 'S 'T 'RE 'Ve 'm 'Ll 'D 'x 'r 'rx 'l 'lx ' 's'",
	"'ſ ſ can'ſ Kelvin K",
	"camelCaseWord PascalCase HTTPServer iPhone ABCdef abcDEF McDonald'S",
	"ǅemal ǅ ǈ ʰʰa aʰ ʰA ªb Aª x\u0301y e\u0301 \u0301a \u0301 \u0301\u0301 A\u0301B",
	"12345678 1 22 333 4444 ½ ⅓ Ⅻ ٣٤٥ ۱۲۳۴ 𝟙𝟚𝟛𝟜 x1 1x 3.14159 -42 +7e10",
	"func main() {\n\tfmt.Println(\"hi\")\n\treturn x->y // c++ ;;\n}\n",
	"if (a && b || !c) { x += 1; } else if y != z: pass  # comment\n\n\n",
	`{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}],"n":1}`,
	"path/to/file.go https://example.com/a/b?c=d&e=f ../../x //\n/ /\r\n",
	"!!!\n\n??? \r\n... ---\r\r\n***/// ,,,\n/\n",
	"a  b   c    d\t\te\t \tf \n g  \n\n  h\r\n\r\n  i   ",
	"   leading and trailing   ",
	" ",
	"  ",
	"\n",
	"\r\n",
	" \n",
	"\n ",
	"x \n\n \t y",
	"\u00a0nbsp\u00a0\u00a0x\u2028line\u2029para\u3000ideo\u0085nel\v\fvt",
	"你好，世界！请用一句话介绍一下你自己。日本語のテキストも。한국어도 잘 됩니다",
	"这是一个很长的中文句子没有任何空格所以整个句子是一个片段并且超过了六十四个字节的缓存上限",
	"👩‍👩‍👧‍👦🏳️‍🌈🇯🇵 ok 😀😀😀 a😀b 😀's",
	"𝐀𝐁𝐂 𝐚𝐛𝐜 𝐀𝐚 𐐀𐐨",
	"<|endoftext|><|im_start|>x<|im_end|><|fim_prefix|><|endofprompt|>",
	"bad \xff\xfe\xfd bytes \xc3",
	"\xed\xa0\x80 surrogate \xf4\x90\x80\x80 too big \xc0\xaf overlong",
	"mixé\xffd 'S\xff s\xe2\x82",
	"\x00\x01\x1f\x7f control a\x7fb \x7f \x7f\x7f. .\x7f.",
	strings.Repeat("a", 300) + " " + strings.Repeat("ab ", 100),
	strings.Repeat(" ", 200) + "x" + strings.Repeat("\n", 50),
	strings.Repeat("9", 100),
	strings.Repeat("=", 150) + "\n",
}

// trickyRunes draws random text from the characters the split cares
// about.
var trickyRunes = []rune("aZeSsTtRrVvMmLlDd' ſKǅʰª\u0301\u0308你好世😀\u200d𝐀𝐚𝟙1234567890½Ⅻ٣.,!?-_/\\\"{}[]<|>:;\t\n\r\v\f\u00a0\u2028\u3000\u0085\ufffd#@*\x7f\x00")

func randSplitText(r *rand.Rand) string {
	var b strings.Builder
	for range r.IntN(40) {
		if r.IntN(30) == 0 {
			b.WriteByte(byte(0x80 + r.IntN(0x80))) // not UTF-8
			continue
		}
		b.WriteRune(trickyRunes[r.IntN(len(trickyRunes))])
	}
	return b.String()
}

// regexpPieces returns the pieces the encoding's split regexp cuts s into,
// as tiktoken-go's Count sees them.
func regexpPieces(t testing.TB, re *regexp2.Regexp, s string) []string {
	var out []string
	m, err := re.FindStringMatch(s)
	for ; m != nil && err == nil; m, err = re.FindNextMatch(m) {
		out = append(out, m.String())
	}
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// handPieces returns the pieces of the hand-written split.
func handPieces(enc tokenizer.Encoding, s string) []string {
	split := splitO200k[string]
	if enc == tokenizer.Cl100kBase {
		split = splitCl100k[string]
	}
	if !utf8.ValidString(s) {
		s = string([]rune(s))
	}
	var out []string
	for i := 0; i < len(s); {
		e := split(s, i)
		if e < 0 {
			_, n := utf8.DecodeRuneInString(s[i:])
			i += n
			continue
		}
		out = append(out, s[i:e])
		i = e
	}
	return out
}

type countPair struct {
	enc  tokenizer.Encoding
	re   *regexp2.Regexp
	ref  tokenizer.Codec
	fast *tokenCounter
}

func countPairs(t testing.TB) []countPair {
	var out []countPair
	for _, enc := range encodings {
		ref, err := tokenizer.Get(enc)
		if err != nil {
			t.Fatal(err)
		}
		fastCd, _ := tokenizer.Get(enc)
		re := regexp2.MustCompile(splitPatterns[enc], regexp2.None)
		out = append(out, countPair{enc, re, ref, newTokenCounter(enc, fastCd)})
	}
	return out
}

// check compares the hand split with the regexp's and the fast counts
// (string and []byte) with Count.
func (p countPair) check(t testing.TB, s string) {
	t.Helper()
	if want, got := regexpPieces(t, p.re, s), handPieces(p.enc, s); !slices.Equal(want, got) {
		t.Fatalf("%s split of %q:\n got %q\nwant %q", p.enc, s, got, want)
	}
	want, err := p.ref.Count(s)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := p.fast.Count(s); got != want {
		t.Fatalf("%s Count(%q) = %d, want %d", p.enc, s, got, want)
	}
	if got, _ := p.fast.CountBytes([]byte(s)); got != want {
		t.Fatalf("%s CountBytes(%q) = %d, want %d", p.enc, s, got, want)
	}
}

func TestFastCountCorpus(t *testing.T) {
	for _, p := range countPairs(t) {
		for _, s := range countCorpus {
			p.check(t, s)
		}
		// Twice: the second pass counts from the cache.
		for _, s := range countCorpus {
			p.check(t, s)
		}
	}
}

func TestFastCountRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(15, 15))
	pairs := countPairs(t)
	for range 3000 {
		s := randSplitText(r)
		for _, p := range pairs {
			p.check(t, s)
		}
	}
}

// TestFastCountOtherModes: a codec in another error mode is left to Count,
// which rewrites or rejects invalid UTF-8 before splitting.
func TestFastCountOtherModes(t *testing.T) {
	for _, mode := range []tokenizer.ErrorMode{tokenizer.ErrorModeReplace, tokenizer.ErrorModeIgnore, tokenizer.ErrorModeStrict} {
		ref, _ := tokenizer.Get(tokenizer.O200kBase)
		ref.SetErrorMode(mode)
		cd, _ := tokenizer.Get(tokenizer.O200kBase)
		cd.SetErrorMode(mode)
		fast := newTokenCounter(tokenizer.O200kBase, cd)
		for _, s := range countCorpus {
			want, wantErr := ref.Count(s)
			got, gotErr := fast.Count(s)
			if got != want || (gotErr == nil) != (wantErr == nil) {
				t.Fatalf("mode %d Count(%q) = %d, %v; want %d, %v", mode, s, got, gotErr, want, wantErr)
			}
		}
	}
}

// word is a distinct piece of letters for each i.
func word(i int) string {
	b := []byte{' '}
	for ; i > 0; i /= 26 {
		b = append(b, byte('a'+i%26))
	}
	return string(b)
}

// TestPieceCacheBounded: unique pieces never grow the cache past its
// bound, counts stay right across the resets, and long pieces stay out.
func TestPieceCacheBounded(t *testing.T) {
	p := countPairs(t)[0]
	resets := 0
	for i := range maxCachedPieces + 5000 {
		before := len(p.fast.cache.m)
		if i%1000 == 0 {
			p.check(t, word(i))
		} else {
			p.fast.Count(word(i))
		}
		if len(p.fast.cache.m) < before {
			resets++
		}
	}
	if resets != 1 {
		t.Errorf("%d resets, want 1", resets)
	}
	if n := len(p.fast.cache.m); n > maxCachedPieces {
		t.Fatalf("the cache holds %d pieces, over %d", n, maxCachedPieces)
	}
	long := strings.Repeat("x", maxCachedPiece+1)
	p.check(t, long)
	if _, ok := p.fast.cache.m[long]; ok {
		t.Fatalf("a piece of %d bytes was cached", len(long))
	}
}

// TestFastCountConcurrent runs counts from many goroutines on one counter
// (run it with -race): every count is right, hits, misses and resets
// alike.
func TestFastCountConcurrent(t *testing.T) {
	pairs := countPairs(t)
	want := make([][]int, len(pairs))
	for i, p := range pairs {
		for _, s := range countCorpus {
			n, _ := p.ref.Count(s)
			want[i] = append(want[i], n)
		}
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for round := range 40 {
				for i, p := range pairs {
					for j, s := range countCorpus {
						if got, _ := p.fast.Count(s); got != want[i][j] {
							t.Errorf("Count(%q) = %d, want %d", s, got, want[i][j])
							return
						}
					}
					// Unique pieces force resets under the readers.
					for k := range 400 {
						p.fast.Count(word(1e6*g + 1e3*round + k))
					}
				}
			}
		})
	}
	wg.Wait()
}

func TestASCIIClasses(t *testing.T) {
	for c := range asciiClasses {
		if asciiClasses[c] != bmpClasses()[c] {
			t.Errorf("class of %#x: %b, want %b", c, asciiClasses[c], bmpClasses()[c])
		}
	}
}

func FuzzFastCount(f *testing.F) {
	for _, s := range countCorpus {
		f.Add(s)
	}
	pairs := countPairs(f)
	f.Fuzz(func(t *testing.T, s string) {
		for _, p := range pairs {
			p.check(t, s)
		}
	})
}

func BenchmarkCount(b *testing.B) {
	s := strings.Repeat(countCorpus[1]+" "+countCorpus[2]+" "+countCorpus[9], 4)
	for _, p := range countPairs(b) {
		b.Run(string(p.enc)+"/codec", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				p.ref.Count(s)
			}
		})
		b.Run(string(p.enc)+"/fast", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				p.fast.Count(s)
			}
		})
	}
}
