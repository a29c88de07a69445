package budget

import (
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/tiktoken-go/tokenizer"
)

// Fast exact token counts (issue 15). tiktoken-go's Count runs the
// encoding's split regexp (dlclark/regexp2, on a []rune copy of the
// input, allocating a string per match) and then byte-pair encodes every
// piece; that was two thirds of exactPrompt's CPU. A tokenCounter gives
// the same count for a fraction of that:
//
//   - the split is hand-written for o200k_base and cl100k_base, the two
//     encodings encodingFor selects (splitO200k, splitCl100k): the same
//     pieces as the regexps, with their backtracking worked out below;
//   - a piece's token count is the codec's own Count of that piece alone,
//     memoised: the vocabulary is unexported, but the split of a piece is
//     the piece itself (the alternatives only look past a piece through
//     \s+(?!\S), and a piece it would cut differently alone is whitespace
//     that \s+ matches the same way), so Count(piece) is exactly the
//     piece's BPE. Pieces are words, numbers and punctuation runs that
//     repeat across prompts, so the cache answers most of them.
//
// fastcount_test.go checks the pieces against the regexps themselves and
// the counts against Count on a corpus and under fuzzing.

// text is what the counter reads: a Go string, or JSON string contents
// decoded into a byte slice (exactPrompt, the stream counter) without a
// copy into a string.
type text interface{ ~string | ~[]byte }

// tokenCounter counts tokens exactly as its codec's Count does.
type tokenCounter struct {
	cd tokenizer.Codec
	// split returns the end of the piece that starts at i in valid
	// UTF-8, or -1 when no piece starts there; nil means the encoding has
	// no hand-written split and every count goes to cd.Count.
	split func(s []byte, i int) int
	// splitStr is split for strings (Go has no generic methods, and a
	// string must not be copied into a []byte to be split).
	splitStr func(s string, i int) int
	cache    pieceCache
}

func newTokenCounter(enc tokenizer.Encoding, cd tokenizer.Codec) *tokenCounter {
	t := &tokenCounter{cd: cd}
	// Count keeps invalid UTF-8 as the regexp sees it (ErrorModeNone,
	// what Get returns); the other modes rewrite or reject the input
	// first, so those codecs are left to Count.
	if cd.ErrorMode() != tokenizer.ErrorModeNone {
		return t
	}
	switch enc {
	case tokenizer.O200kBase:
		t.split, t.splitStr = splitO200k[[]byte], splitO200k[string]
	case tokenizer.Cl100kBase:
		t.split, t.splitStr = splitCl100k[[]byte], splitCl100k[string]
	}
	return t
}

// Count is codec.Count(s) (it never fails: only Count's regexp timeout,
// which the codecs do not set, or ErrorModeStrict can make it).
func (t *tokenCounter) Count(s string) (int, error) {
	if t.splitStr == nil {
		return t.cd.Count(s)
	}
	return countText(t, s, t.splitStr), nil
}

// CountBytes is Count(string(b)) without the copy.
func (t *tokenCounter) CountBytes(b []byte) (int, error) {
	if t.split == nil {
		return t.cd.Count(string(b))
	}
	return countText(t, b, t.split), nil
}

func countText[T text](t *tokenCounter, s T, split func(T, int) int) int {
	if !validUTF8(s) {
		// regexp2 matches a []rune conversion of the input, where every
		// byte that is not part of a valid sequence is one U+FFFD, and
		// the pieces are strings of those runes.
		return countText(t, string([]rune(string(s))), t.splitStr)
	}
	c := &t.cache
	c.mu.RLock()
	n, batch := 0, 0
	for i := 0; i < len(s); {
		e := split(s, i)
		if e < 0 { // no alternative matches here: the regexp moves on a rune
			_, size := runeAt(s, i)
			i += size
			continue
		}
		p := s[i:e]
		i = e
		if k, ok := c.m[string(p)]; ok { // no copy for a lookup
			n += int(k)
		} else {
			c.mu.RUnlock()
			n += t.learn(string(p))
			c.mu.RLock()
		}
		// Let a waiting writer in now and then: RLock blocks behind it.
		if batch++; batch == readBatch {
			c.mu.RUnlock()
			c.mu.RLock()
			batch = 0
		}
	}
	c.mu.RUnlock()
	return n
}

func validUTF8[T text](s T) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			switch v := any(s).(type) {
			case string:
				return utf8.ValidString(v[i:])
			case []byte:
				return utf8.Valid(v[i:])
			default:
				return utf8.ValidString(string(s[i:]))
			}
		}
	}
	return true
}

// Piece cache. A count holds the read lock for up to readBatch pieces at
// a time rather than taking it per piece: the lock's atomic add per piece
// was a sixth of a warm count. A miss counts the piece with the codec
// outside the lock and adds it under the write lock.
//
// The cache is bounded at maxCachedPieces entries per encoding (a few
// MB: keys are at most maxCachedPiece bytes, most under ten) and is
// dropped whole when it reaches that, rather than tracking recency per
// entry, which would cost a write on every hit. Piece frequencies are
// Zipf-like, so after a reset the common words come back within a few
// requests at one Count each. Pieces longer than maxCachedPiece (a CJK
// sentence without spaces is one piece, and so is a long run of spaces or
// punctuation) rarely repeat and are never stored, so a prompt cannot fill
// the cache with large keys.
const (
	maxCachedPieces = 1 << 16
	maxCachedPiece  = 64
	readBatch       = 64
)

type pieceCache struct {
	mu sync.RWMutex
	m  map[string]int32
}

// learn counts a piece the cache does not hold, and adds it.
func (t *tokenCounter) learn(p string) int {
	if len(p) > maxCachedPiece {
		n, _ := t.cd.Count(p)
		return n
	}
	p = strings.Clone(p) // p may point into a request body
	n, _ := t.cd.Count(p)
	c := &t.cache
	c.mu.Lock()
	if c.m == nil || len(c.m) >= maxCachedPieces {
		c.m = make(map[string]int32, 1024)
	}
	c.m[p] = int32(n)
	c.mu.Unlock()
	return n
}

// Character classes of the split regexps. \s is unicode.IsSpace (regexp2's
// space class), \p{L}, \p{N} and the rest are Go's unicode tables, which
// regexp2 uses too.
const (
	clsL  = 1 << iota // \p{L}
	clsN              // \p{N}
	clsS              // \s
	clsU              // o200k's [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]
	clsW              // o200k's [\p{Ll}\p{Lm}\p{Lo}\p{M}]
	clsNL             // \r or \n
	// clsDEL marks U+007F, which the generated matchers (regexp2cg's
	// ASCII bitmaps for [^\r\n\p{L}\p{N}] and [^\s\p{L}\p{N}]) leave out
	// of both negated classes, so that no alternative matches it: the
	// regexp steps over it and Count never counts it.
	clsDEL
)

// bmpClasses holds the class bits of every rune below U+10000, built once
// from the unicode range tables (a few thousand ranges): a table lookup
// instead of up to five binary searches per character of CJK or accented
// text. It is never written after it is built.
var bmpClasses = sync.OnceValue(func() *[0x10000]uint8 {
	var tab [0x10000]uint8
	mark := func(rt *unicode.RangeTable, bit uint8) {
		for _, r := range rt.R16 {
			for c := uint32(r.Lo); c <= uint32(r.Hi); c += uint32(r.Stride) {
				tab[c] |= bit
			}
		}
	}
	mark(unicode.L, clsL)
	mark(unicode.N, clsN)
	for _, rt := range []*unicode.RangeTable{unicode.Lu, unicode.Lt, unicode.Lm, unicode.Lo, unicode.M} {
		mark(rt, clsU)
	}
	for _, rt := range []*unicode.RangeTable{unicode.Ll, unicode.Lm, unicode.Lo, unicode.M} {
		mark(rt, clsW)
	}
	for c := range tab {
		if unicode.IsSpace(rune(c)) {
			tab[c] |= clsS
		}
	}
	tab['\r'] |= clsNL
	tab['\n'] |= clsNL
	tab[0x7F] |= clsDEL
	return &tab
})

// asciiClasses is bmpClasses for ASCII, without the sync.Once check on
// the common path. Built at package initialisation (128 entries) and
// never written after.
var asciiClasses = func() (tab [0x80]uint8) {
	for c := range tab {
		r := rune(c)
		switch {
		case 'a' <= r && r <= 'z':
			tab[c] = clsL | clsW
		case 'A' <= r && r <= 'Z':
			tab[c] = clsL | clsU
		case '0' <= r && r <= '9':
			tab[c] = clsN
		case unicode.IsSpace(r):
			tab[c] = clsS
		}
	}
	tab['\r'] |= clsNL
	tab['\n'] |= clsNL
	tab[0x7F] = clsDEL
	return tab
}()

// classOf is the class bits of r.
func classOf(r rune) uint8 {
	if r < 0x10000 {
		return bmpClasses()[r]
	}
	var c uint8
	if unicode.Is(unicode.L, r) {
		c |= clsL
	}
	if unicode.Is(unicode.N, r) {
		c |= clsN
	}
	if unicode.IsSpace(r) {
		c |= clsS
	}
	if unicode.In(r, unicode.Lu, unicode.Lt, unicode.Lm, unicode.Lo, unicode.M) {
		c |= clsU
	}
	if unicode.In(r, unicode.Ll, unicode.Lm, unicode.Lo, unicode.M) {
		c |= clsW
	}
	return c
}

// runeAt decodes the rune at s[i] in valid UTF-8.
func runeAt[T text](s T, i int) (rune, int) {
	c := s[i]
	switch {
	case c < 0x80:
		return rune(c), 1
	case c < 0xE0:
		return rune(c&0x1F)<<6 | rune(s[i+1]&0x3F), 2
	case c < 0xF0:
		return rune(c&0x0F)<<12 | rune(s[i+1]&0x3F)<<6 | rune(s[i+2]&0x3F), 3
	}
	return rune(c&0x07)<<18 | rune(s[i+1]&0x3F)<<12 | rune(s[i+2]&0x3F)<<6 | rune(s[i+3]&0x3F), 4
}

// classAt returns the class bits and size of the rune at s[i], and 0, 0
// at the end of s.
func classAt[T text](s T, i int) (uint8, int) {
	if i >= len(s) {
		return 0, 0
	}
	if c := s[i]; c < 0x80 {
		return asciiClasses[c], 1
	}
	r, n := runeAt(s, i)
	return classOf(r), n
}

// A character is in [^\r\n\p{L}\p{N}], the optional one before a word,
// when it has none of notLNB, and in [^\s\p{L}\p{N}] when it has none of
// notSLN.
const (
	notLNB = clsL | clsN | clsNL | clsDEL
	notSLN = clsS | clsL | clsN | clsDEL
)

// runOf returns the end of the run of characters with any of bits from i.
func runOf[T text](s T, i int, bits uint8) int {
	for i < len(s) {
		c, n := classAt(s, i)
		if c&bits == 0 {
			break
		}
		i += n
	}
	return i
}

// splitO200k returns the end of o200k_base's piece at s[i] (valid UTF-8,
// i < len(s)), or -1 when none of its alternatives match there:
//
//	[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?
//	|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?
//	|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+
//
// The alternation takes the first alternative that matches, and within
// one the first match in backtracking order: the optional leading
// character is tried taken, then not.
func splitO200k[T text](s T, i int) int {
	c0, n0 := classAt(s, i)
	starts, k := [2]int{}, 0
	if c0&notLNB == 0 {
		starts[k] = i + n0
		k++
	}
	starts[k] = i
	k++
	for _, st := range starts[:k] {
		if e := lowerWord(s, st); e >= 0 {
			return contraction(s, e)
		}
	}
	for _, st := range starts[:k] {
		if e := runOf(s, st, clsU); e > st {
			return contraction(s, runOf(s, e, clsW))
		}
	}
	return splitTail(s, i, c0, true)
}

// lowerWord matches [U]*[W]+ at st (U and W as in splitO200k), or -1. U*
// takes the longest run, then gives back characters until W+ can start:
// at the run's end if the next character is in W (an Ll), else at the
// last character of the run that is also in W (an Lm, Lo or M), where W+
// ends after that one character, since the rest of the run is not in W.
func lowerWord[T text](s T, st int) int {
	lastW, lastN := -1, 0
	j := st
	for j < len(s) {
		c, n := classAt(s, j)
		if c&clsU == 0 {
			if c&clsW != 0 {
				return runOf(s, j, clsW)
			}
			break
		}
		if c&clsW != 0 {
			lastW, lastN = j, n
		}
		j += n
	}
	if lastW < 0 {
		return -1
	}
	return lastW + lastN
}

// contraction extends a word ending at e by (?i:'s|'t|'re|'ve|'m|'ll|'d),
// when one follows. Case folding adds ſ (U+017F) to s.
func contraction[T text](s T, e int) int {
	if e+1 >= len(s) || s[e] != '\'' {
		return e
	}
	two := func(a byte) bool { return e+2 < len(s) && s[e+2]|0x20 == a }
	switch s[e+1] | 0x20 {
	case 's', 't', 'm', 'd':
		return e + 2
	case 'r', 'v':
		if two('e') {
			return e + 3
		}
	case 'l':
		if two('l') {
			return e + 3
		}
	}
	if s[e+1] == 0xC5 && e+2 < len(s) && s[e+2] == 0xBF { // ſ
		return e + 3
	}
	return e
}

// splitCl100k is splitO200k for cl100k_base:
//
//	(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
func splitCl100k[T text](s T, i int) int {
	if e := contraction(s, i); e > i {
		return e
	}
	c0, n0 := classAt(s, i)
	if c0&clsL != 0 {
		return runOf(s, i, clsL)
	}
	if c0&notLNB == 0 {
		if c1, _ := classAt(s, i+n0); c1&clsL != 0 {
			return runOf(s, i+n0, clsL)
		}
	}
	return splitTail(s, i, c0, false)
}

// splitTail matches the alternatives the two encodings share after their
// words: \p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+,
// with o200k_base's [\r\n/]* in place of [\r\n]* when slash is set.
func splitTail[T text](s T, i int, c0 uint8, slash bool) int {
	if c0&clsN != 0 {
		j := i
		for range 3 {
			c, n := classAt(s, j)
			if c&clsN == 0 {
				break
			}
			j += n
		}
		return j
	}
	// " ?" and both loops are atomic: no giving back.
	j := i
	if s[i] == ' ' {
		j++
	}
	if e := runOfNot(s, j, notSLN); e > j {
		for e < len(s) && (s[e] == '\r' || s[e] == '\n' || slash && s[e] == '/') {
			e++
		}
		return e
	}
	if c0&clsS == 0 {
		return -1
	}
	// \s*[\r\n]+: \s* takes the whole run, which no line break follows,
	// and gives back. regexp2cg's generated backtrack jumps to the
	// run's first \r or \n (IndexOfAny, where .NET takes the last), and
	// [\r\n]+ takes the breaks from there: the piece ends after the
	// first group of line breaks, so "\n \n" is "\n", " \n". Then
	// \s+(?!\S) is the run, or the run but its last character when a
	// non-space follows; \s+ is a lone space before a non-space.
	j, last, runes := i, i, 0
	for j < len(s) {
		c, n := classAt(s, j)
		if c&clsS == 0 {
			break
		}
		if c&clsNL != 0 {
			for j < len(s) && (s[j] == '\r' || s[j] == '\n') {
				j++
			}
			return j
		}
		last, runes = j, runes+1
		j += n
	}
	if j == len(s) || runes == 1 {
		return j
	}
	return last
}

// runOfNot returns the end of the run of characters with none of bits.
func runOfNot[T text](s T, i int, bits uint8) int {
	for i < len(s) {
		c, n := classAt(s, i)
		if c&bits != 0 {
			break
		}
		i += n
	}
	return i
}
