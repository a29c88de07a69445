package router

import (
	"strconv"
	"unicode/utf8"
)

// MaxEcho is how many bytes of a client-supplied string (a model name, a
// key) an error message or a log line repeats. A 5 MB model name used to
// come back as a 5 MB 404 body and a 5 MB access line (issue 16).
const MaxEcho = 256

// Clip returns s when it is at most MaxEcho bytes, else its first MaxEcho
// bytes (cut at a UTF-8 boundary) and a marker saying how much was left
// out.
func Clip(s string) string {
	if len(s) <= MaxEcho {
		return s
	}
	n := MaxEcho
	for n > 0 && n > MaxEcho-utf8.UTFMax && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…[" + strconv.Itoa(len(s)-n) + " more bytes]"
}
