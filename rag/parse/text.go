package parse

import (
	"bytes"
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// plainText reads a text file (.txt, .md, source code): UTF-8 or UTF-16
// with a byte-order mark. Bytes that are not UTF-8 become U+FFFD, so a
// Latin-1 file loses its accents but not its words; a file that is mostly
// not text is unsupported_file.
func plainText(data []byte) (string, error) {
	s := decode(data)
	if mostlyBinary(s) {
		return "", unsupported("the file is binary, not text")
	}
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\r\n", "\n"), nil
}

// decode drops a UTF-8 byte-order mark and turns UTF-16 with one into
// UTF-8; anything else is returned as is.
func decode(data []byte) string {
	var order func([]byte) uint16
	switch {
	case bytes.HasPrefix(data, []byte("\xef\xbb\xbf")):
		return string(data[3:])
	case bytes.HasPrefix(data, []byte("\xff\xfe")):
		order = func(b []byte) uint16 { return uint16(b[0]) | uint16(b[1])<<8 }
	case bytes.HasPrefix(data, []byte("\xfe\xff")):
		order = func(b []byte) uint16 { return uint16(b[1]) | uint16(b[0])<<8 }
	default:
		return string(data)
	}
	units := make([]uint16, 0, len(data)/2)
	for b := data[2:]; len(b) >= 2; b = b[2:] {
		units = append(units, order(b))
	}
	return string(utf16.Decode(units))
}

// mostlyBinary reports whether more than one character in ten of s is
// not text: invalid UTF-8, NUL, or a control other than whitespace and
// ESC (terminal colours in logs).
func mostlyBinary(s string) bool {
	bad, n := 0, 0
	for _, r := range s {
		n++
		if r == utf8.RuneError || (r < 0x20 || r == 0x7f) && !unicode.IsSpace(r) && r != 0x1b {
			bad++
		}
	}
	return bad*10 > n
}

// binary reports whether data is not text in any encoding plainText reads.
func binary(data []byte) bool { return mostlyBinary(decode(data)) }

// textWriter builds extracted text from markup (HTML, DOCX, JSON): it
// collapses every run of whitespace to one space, turns pending breaks
// into at most two newlines, trims both ends, and stops past limit bytes.
type textWriter struct {
	limit  int
	b      strings.Builder
	space  bool // a space is due before the next word
	breaks int  // newlines due before the next word (0, 1 or 2)
	full   bool
}

// text adds s, collapsing its whitespace.
func (w *textWriter) text(s string) {
	for len(s) > 0 && !w.full {
		i := strings.IndexFunc(s, unicode.IsSpace)
		if i != 0 {
			if i < 0 {
				i = len(s)
			}
			w.word(s[:i])
			s = s[i:]
			continue
		}
		w.space = true
		s = strings.TrimLeftFunc(s, unicode.IsSpace)
	}
}

// brk asks for n newlines (1: a line break, 2: a new paragraph) before
// the next word.
func (w *textWriter) brk(n int) { w.breaks = max(w.breaks, min(n, 2)) }

func (w *textWriter) word(s string) {
	s = strings.Map(dropControls, s) // and invalid UTF-8 becomes U+FFFD
	if s == "" {
		return
	}
	sep := ""
	switch {
	case w.b.Len() == 0: // nothing before the first word
	case w.breaks > 0:
		sep = "\n\n"[:w.breaks]
	case w.space:
		sep = " "
	}
	w.space, w.breaks = false, 0
	if w.b.Len()+len(sep)+len(s) > w.limit {
		w.full = true
		return
	}
	w.b.WriteString(sep)
	w.b.WriteString(s)
}

func dropControls(r rune) rune {
	if r < 0x20 || r == 0x7f {
		return -1
	}
	return r
}

// result is the text, or errTooLong.
func (w *textWriter) result() (string, error) {
	if w.full {
		return "", errTooLong
	}
	return w.b.String(), nil
}
