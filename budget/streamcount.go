package budget

// Incremental output counting (issue 16). A stream that ends without a
// usage report (the client left, a timeout, a budget cut) is counted with
// the tokenizer. Buffering the whole output for that held 26.6 GB on a
// fast endless upstream, so guardedStream.buf keeps only an unfinished
// tail: once it reaches flushAt bytes, the text up to a cut is counted
// into guardedStream.flushed and dropped. Memory per stream is O(flushAt +
// one chunk), whatever the output's length.
//
// Cuts are chosen so that counting the parts adds up to counting the
// whole:
//   - a word cut, before a space that follows an ASCII letter or digit,
//     is exact: no pre-tokenizer piece of o200k_base or cl100k_base spans
//     it (letter and number pieces end at the letter or digit, and the
//     space starts the next piece), and BPE runs within pieces;
//   - when the tail has no word cut near its end (text without spaces:
//     CJK, minified code, an endless "aaaa"), any cut between two complete
//     characters or escapes is taken and one token is added for the piece
//     it may split. Splitting a piece in two almost always costs tokens
//     rather than saving them, so the sum stays at or above the exact
//     count (TestIncrementalCount measures the deviation).
//
// A reply shorter than flushAt never runs the tokenizer before it ends, so
// the common case with an upstream usage report pays nothing.

// flushAt is the tail length, in raw bytes, at which finished text is
// counted and dropped.
const flushAt = 16 << 10

// flush counts the finished part of buf into flushed and keeps the rest.
func (s *guardedStream) flush() {
	b := *s.buf
	word, anyCut := cuts(b)
	cut, extra := word, 0
	if len(b)-word > flushAt/2 {
		cut, extra = anyCut, 1
	}
	if cut <= 0 {
		// No cut at all: only escapes or a single character, which valid
		// chunks never give at this size. The bound is safe.
		s.flushed += int64(litBytes(b))
		*s.buf = b[:0]
		return
	}
	s.flushed += int64(s.tokens(b[:cut]) + extra)
	*s.buf = b[:copy(b, b[cut:])]
}

// cuts returns the last word cut and the last cut of any kind in raw (JSON
// string contents), 0 when there is none. Any cut lies between complete
// characters and escapes and never inside a surrogate pair; a word cut is
// one just before a space that follows a literal ASCII letter or digit.
func cuts(raw []byte) (word, anyCut int) {
	alnum := false // raw[i-1] is a literal ASCII letter or digit
	for i := 0; i < len(raw); {
		c := raw[i]
		switch {
		case c == '\\':
			n := 2
			if i+1 < len(raw) && raw[i+1] == 'u' {
				n = 6
				if i+n <= len(raw) && lowSurrogate(raw[i+2:i+6]) {
					i += n // the second half of a pair: not a cut
					alnum = false
					continue
				}
			}
			if i+n > len(raw) {
				return word, anyCut // a truncated escape: stop before it
			}
			if i > 0 {
				anyCut = i
			}
			i += n
			alnum = false
			continue
		case c >= 0x80 && c < 0xC0:
			i++ // inside a multi-byte character
			continue
		}
		if i > 0 {
			anyCut = i
			if c == ' ' && alnum {
				word = i
			}
		}
		alnum = c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
		i++
	}
	return word, anyCut
}

// lowSurrogate reports four hex digits in DC00–DFFF.
func lowSurrogate(h []byte) bool {
	return (h[0] == 'd' || h[0] == 'D') && (h[1] >= 'c' && h[1] <= 'f' || h[1] >= 'C' && h[1] <= 'F')
}
