package budget

import (
	"bytes"
	"encoding/json"
	"unicode/utf8"

	"llmproxy/router"
)

// A small allocation-free scanner over JSON that is already valid (the
// router checked the request body with json.Valid; stream chunks come from
// adapters that marshalled them). It finds the string literals the token
// bounds add up without decoding them: the bound and the stream counters
// run on every request and chunk, where encoding/json's reflection was the
// cost.

// members walks the members of a JSON object.
type members struct {
	b []byte
	i int
}

// objectMembers starts a walk over v, which must be a JSON object; ok is
// false otherwise.
func objectMembers(v []byte) (m members, ok bool) {
	i := skipSpace(v, 0)
	if i >= len(v) || v[i] != '{' {
		return members{}, false
	}
	return members{b: v, i: i + 1}, true
}

// next returns the next member's raw key (with quotes) and raw value.
func (m *members) next() (key, val []byte, ok bool) {
	b, i := m.b, skipSpace(m.b, m.i)
	if i < len(b) && b[i] == ',' {
		i = skipSpace(b, i+1)
	}
	if i >= len(b) || b[i] != '"' {
		return nil, nil, false
	}
	kEnd := skipString(b, i)
	if kEnd < 0 {
		return nil, nil, false
	}
	key = b[i:kEnd]
	i = skipSpace(b, kEnd)
	if i >= len(b) || b[i] != ':' {
		return nil, nil, false
	}
	i = skipSpace(b, i+1)
	vEnd := skipValue(b, i)
	if vEnd < 0 {
		return nil, nil, false
	}
	m.i = vEnd
	return key, b[i:vEnd], true
}

// elems walks the elements of a JSON array.
type elems struct {
	b []byte
	i int
}

// arrayElems starts a walk over v, which must be a JSON array; ok is false
// otherwise (null included).
func arrayElems(v []byte) (e elems, ok bool) {
	i := skipSpace(v, 0)
	if i >= len(v) || v[i] != '[' {
		return elems{}, false
	}
	return elems{b: v, i: i + 1}, true
}

// next returns the next element's raw value.
func (e *elems) next() (val []byte, ok bool) {
	b, i := e.b, skipSpace(e.b, e.i)
	if i < len(b) && b[i] == ',' {
		i = skipSpace(b, i+1)
	}
	if i >= len(b) || b[i] == ']' {
		return nil, false
	}
	end := skipValue(b, i)
	if end < 0 {
		return nil, false
	}
	e.i = end
	return b[i:end], true
}

// isString reports a JSON string literal.
func isString(v []byte) bool { return len(v) >= 2 && v[0] == '"' }

// litBytes is an upper bound on the token count of the text a JSON value
// stands for. A token is at least one byte, and a string literal's escapes
// only make it longer than its text, so for valid UTF-8 its length is the
// bound. An invalid byte decodes to U+FFFD (three bytes), hence the factor
// three when the literal is not valid UTF-8.
func litBytes(v []byte) int {
	n := len(v)
	if isString(v) {
		n -= 2
	}
	if !utf8.Valid(v) {
		return 3 * n
	}
	return n
}

// strValue returns a string literal's text: a sub-slice of v when it has no
// escapes, else a decoded copy (an escape is rare in the values this is
// asked for: part types, ids, model names).
func strValue(v []byte) (string, bool) {
	if !isString(v) {
		return "", false
	}
	if bytes.IndexByte(v, '\\') < 0 {
		return string(v[1 : len(v)-1]), true
	}
	var s string
	if json.Unmarshal(v, &s) != nil {
		return "", false
	}
	return s, true
}

// The skips are the router's: one scanner for request bodies and chunks.
func skipSpace(b []byte, i int) int  { return router.SkipSpace(b, i) }
func skipString(b []byte, i int) int { return router.SkipValue(b, i) } // b[i] == '"'
func skipValue(b []byte, i int) int  { return router.SkipValue(b, i) }
