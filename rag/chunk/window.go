package chunk

import (
	"unicode/utf8"

	"github.com/tiktoken-go/tokenizer"
)

// atom is a run of tokens that ends on a character boundary: one token
// for most text, or the two to four byte-level tokens of a character the
// encoding has no single token for. Chunks are cut between atoms.
type atom struct {
	end    int // byte offset where the atom ends; it starts where the previous one ends
	tokens int
}

// atoms tokenizes text (valid UTF-8) and groups the tokens into atoms.
func atoms(cd tokenizer.Codec, text string) []atom {
	_, toks, err := cd.Encode(text)
	if err != nil {
		return nil
	}
	out := make([]atom, 0, len(toks))
	off, pending := 0, 0
	for _, t := range toks {
		off += len(t)
		pending++
		if off >= len(text) || utf8.RuneStart(text[off]) {
			out = append(out, atom{end: min(off, len(text)), tokens: pending})
			pending = 0
		}
	}
	if n := len(out); n > 0 && out[n-1].end != len(text) {
		// The tokens do not add up to the text (they always do for valid
		// UTF-8): let the last atom take the rest rather than lose it.
		out[n-1].end = len(text)
	}
	return out
}

// span is a chunk as byte offsets into the text, with its token count.
type span struct {
	start, end, tokens int
}

// spans lays the windows over text. A window takes atoms while their
// tokens fit in MaxTokens, then is re-counted on its own: a cut can make
// the edge of a window tokenize differently than it did inside the whole
// text, so the re-count, not the sum, is what must fit (it is dropped an
// atom at a time until it does). The next window starts OverlapTokens
// tokens (of the whole text's tokenization) before this one's end.
func spans(cd tokenizer.Codec, text string, o Options) []span {
	ats := atoms(cd, text)
	startOf := func(i int) int {
		if i == 0 {
			return 0
		}
		return ats[i-1].end
	}
	var out []span
	for s := 0; s < len(ats); {
		e, sum := s, 0
		for e < len(ats) && sum+ats[e].tokens <= o.MaxTokens {
			sum += ats[e].tokens
			e++
		}
		e = max(e, s+1) // an atom is at most 4 tokens; MaxTokens is at least 100
		n := count(cd, text[startOf(s):ats[e-1].end])
		for n > o.MaxTokens && e > s+1 {
			e--
			n = count(cd, text[startOf(s):ats[e-1].end])
		}
		out = append(out, span{start: startOf(s), end: ats[e-1].end, tokens: n})
		if e == len(ats) {
			break
		}
		next, overlap := e, 0
		for next > s+1 && overlap+ats[next-1].tokens <= o.OverlapTokens {
			next--
			overlap += ats[next].tokens
		}
		s = next
	}
	return out
}

func count(cd tokenizer.Codec, s string) int {
	n, err := cd.Count(s)
	if err != nil {
		return len(s) // a token is at least one byte: an upper bound
	}
	return n
}
