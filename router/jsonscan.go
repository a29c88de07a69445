package router

import (
	"bytes"
	"encoding/json"
)

// field is one member of a top-level JSON object: the key and the byte
// range of its value in the body.
type field struct {
	key        string
	start, end int // value is body[start:end]
}

// topLevel lists the members of the JSON object in body without decoding
// their values. body must already be valid JSON (json.Valid); ok is false
// when it is not an object. It allocates only the key strings, which is what
// lets the proxy read the few fields it routes on and forward the rest
// untouched.
func topLevel(body []byte) (fields []field, ok bool) {
	i := skipSpace(body, 0)
	if i >= len(body) || body[i] != '{' {
		return nil, false
	}
	i++
	fields = make([]field, 0, 16) // a chat request with tools has 10 or so
	for {
		i = skipSpace(body, i)
		if i >= len(body) {
			return nil, false
		}
		if body[i] == '}' {
			return fields, true
		}
		if body[i] == ',' {
			i = skipSpace(body, i+1)
		}
		if i >= len(body) || body[i] != '"' {
			return nil, false
		}
		kEnd := skipString(body, i)
		if kEnd < 0 {
			return nil, false
		}
		key := unquoteKey(body[i:kEnd])
		i = skipSpace(body, kEnd)
		if i >= len(body) || body[i] != ':' {
			return nil, false
		}
		i = skipSpace(body, i+1)
		vEnd := skipValue(body, i)
		if vEnd < 0 {
			return nil, false
		}
		fields = append(fields, field{key: key, start: i, end: vEnd})
		i = vEnd
	}
}

func unquoteKey(q []byte) string {
	if bytes.IndexByte(q, '\\') < 0 {
		return knownKey(q[1 : len(q)-1])
	}
	var s string
	if json.Unmarshal(q, &s) != nil {
		return ""
	}
	return s
}

// knownKey returns k as a string, without allocating for the members of a
// chat-completions request: topLevel runs on every request.
func knownKey(k []byte) string {
	switch string(k) { // compiles to comparisons, no allocation
	case "model":
		return "model"
	case "messages":
		return "messages"
	case "stream":
		return "stream"
	case "stream_options":
		return "stream_options"
	case "max_tokens":
		return "max_tokens"
	case "max_completion_tokens":
		return "max_completion_tokens"
	case "temperature":
		return "temperature"
	case "top_p":
		return "top_p"
	case "n":
		return "n"
	case "stop":
		return "stop"
	case "seed":
		return "seed"
	case "user":
		return "user"
	case "tools":
		return "tools"
	case "tool_choice":
		return "tool_choice"
	case "parallel_tool_calls":
		return "parallel_tool_calls"
	case "response_format":
		return "response_format"
	case "presence_penalty":
		return "presence_penalty"
	case "frequency_penalty":
		return "frequency_penalty"
	case "logprobs":
		return "logprobs"
	case "top_logprobs":
		return "top_logprobs"
	case "logit_bias":
		return "logit_bias"
	case "metadata":
		return "metadata"
	case "store":
		return "store"
	case "reasoning_effort":
		return "reasoning_effort"
	case "service_tier":
		return "service_tier"
	}
	return string(k)
}

func skipSpace(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\r', '\n':
			i++
		default:
			return i
		}
	}
	return i
}

// skipString returns the index just past the string starting at b[i] == '"',
// or -1 when it is unterminated.
func skipString(b []byte, i int) int {
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			j++
		case '"':
			return j + 1
		}
	}
	return -1
}

// skipValue returns the index just past the JSON value starting at b[i], or
// -1 when the input ends first.
func skipValue(b []byte, i int) int {
	if i >= len(b) {
		return -1
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				j = skipString(b, j)
				if j < 0 {
					return -1
				}
				j--
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1
				}
			}
		}
		return -1
	default: // number, true, false, null
		j := i
		for j < len(b) {
			switch b[j] {
			case ',', '}', ']', ' ', '\t', '\r', '\n':
				return j
			}
			j++
		}
		return j
	}
}

// SetField returns a copy of the JSON object body with the top-level member
// key set to the raw JSON value. Every other byte is kept as it was, so
// fields the proxy does not know are forwarded untouched. body must be a
// valid JSON object.
func SetField(body []byte, key string, value []byte) []byte {
	fields, ok := topLevel(body)
	if !ok {
		return body
	}
	for _, f := range fields {
		if f.key == key {
			out := make([]byte, 0, len(body)-(f.end-f.start)+len(value))
			out = append(out, body[:f.start]...)
			out = append(out, value...)
			return append(out, body[f.end:]...)
		}
	}
	end := bytes.LastIndexByte(body, '}')
	out := make([]byte, 0, len(body)+len(key)+len(value)+4)
	out = append(out, body[:end]...)
	if len(fields) > 0 {
		out = append(out, ',')
	}
	out = appendJSONString(out, key)
	out = append(out, ':')
	out = append(out, value...)
	return append(out, body[end:]...)
}

// setFields is SetField for several members in one pass and one
// allocation; fields is topLevel(body). Each value replaces the first
// member of its key, or is appended in order when there is none.
func setFields(body []byte, fields []field, keys []string, values [][]byte) []byte {
	size := len(body)
	for i := range keys {
		size += len(keys[i]) + len(values[i]) + 4
	}
	out := make([]byte, 0, size)
	var done [4]bool // callers set at most a few members
	pos := 0
	for _, f := range fields {
		for i, k := range keys {
			if !done[i] && f.key == k {
				out = append(out, body[pos:f.start]...)
				out = append(out, values[i]...)
				pos, done[i] = f.end, true
				break
			}
		}
	}
	end := bytes.LastIndexByte(body, '}')
	out = append(out, body[pos:end]...)
	n := len(fields)
	for i, k := range keys {
		if done[i] {
			continue
		}
		if n > 0 {
			out = append(out, ',')
		}
		n++
		out = appendJSONString(out, k)
		out = append(out, ':')
		out = append(out, values[i]...)
	}
	return append(out, body[end:]...)
}

// appendJSONString appends s as a JSON string literal.
func appendJSONString(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= 0x80 {
			q, _ := json.Marshal(s)
			return append(dst, q...)
		}
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"')
}

// TopField returns the raw JSON value of the top-level member key of the
// JSON object body, or nil when body is not an object or has no such member.
// Unlike topLevel it allocates nothing for plain keys, so adapters can call
// it on every streamed chunk. body must already be valid JSON (json.Valid).
func TopField(body []byte, key string) []byte {
	i := skipSpace(body, 0)
	if i >= len(body) || body[i] != '{' {
		return nil
	}
	i++
	for {
		i = skipSpace(body, i)
		if i >= len(body) || body[i] == '}' {
			return nil
		}
		if body[i] == ',' {
			i = skipSpace(body, i+1)
		}
		if i >= len(body) || body[i] != '"' {
			return nil
		}
		kEnd := skipString(body, i)
		if kEnd < 0 {
			return nil
		}
		k := body[i+1 : kEnd-1]
		match := string(k) == key // compiles to a comparison, no allocation
		if !match && bytes.IndexByte(k, '\\') >= 0 {
			match = unquoteKey(body[i:kEnd]) == key
		}
		i = skipSpace(body, kEnd)
		if i >= len(body) || body[i] != ':' {
			return nil
		}
		i = skipSpace(body, i+1)
		vEnd := skipValue(body, i)
		if vEnd < 0 {
			return nil
		}
		if match {
			return body[i:vEnd]
		}
		i = vEnd
	}
}

// SkipSpace returns the index of the first non-whitespace byte of b at or
// after i. With SkipValue it lets other packages walk JSON that is already
// valid without decoding it (budget counts tokens this way on every
// request and chunk).
func SkipSpace(b []byte, i int) int { return skipSpace(b, i) }

// SkipValue returns the index just past the JSON value starting at b[i], or
// -1 when the input ends first. b must be valid JSON from i on.
func SkipValue(b []byte, i int) int { return skipValue(b, i) }

// DeleteField returns the JSON object body without its top-level member
// key (every one, should it repeat), or body itself when there is none.
// The other members' values keep their bytes; the object is written
// compactly around them. body must be a valid JSON object.
func DeleteField(body []byte, key string) []byte {
	fields, ok := topLevel(body)
	if !ok {
		return body
	}
	found := false
	for _, f := range fields {
		found = found || f.key == key
	}
	if !found {
		return body
	}
	out := make([]byte, 0, len(body))
	out = append(out, '{')
	n := 0
	for _, f := range fields {
		if f.key == key {
			continue
		}
		if n > 0 {
			out = append(out, ',')
		}
		n++
		out = appendJSONString(out, f.key)
		out = append(out, ':')
		out = append(out, body[f.start:f.end]...)
	}
	return append(out, '}')
}

// maxScanDepth is encoding/json's nesting limit (maxNestingDepth in its
// scanner.go): json.Valid rejects a document nested deeper, so ScanFields
// must too.
const maxScanDepth = 10000

// ScanFields reports whether body is valid JSON, accepting and rejecting
// exactly what encoding/json.Valid does, and in the same pass sets vals[i]
// to what TopField(body, keys[i]) returns: the raw value of the first
// top-level member named keys[i], or nil. It lets an adapter check an
// upstream reply and read the few members it needs in one scan instead of
// json.Valid plus one TopField per member (issue 15: that was 4 to 5 scans
// of every streamed event). vals must be at least as long as keys, and keys
// at most 64. When body is invalid, every val is nil.
//
// Like json.Valid it does not check that strings are valid UTF-8. It
// allocates only for a top-level key written with escapes, which no
// upstream sends, and for nesting deeper than 256 levels.
func ScanFields(body []byte, vals [][]byte, keys ...string) bool {
	if len(keys) > 64 {
		panic("router.ScanFields: more than 64 keys")
	}
	vals = vals[:len(keys)]
	clear(vals)
	if !scanFields(body, vals, keys) {
		clear(vals)
		return false
	}
	return true
}

// KeyIs reports whether the raw (quoted) member name names the field name
// the way encoding/json matches struct fields: exactly or
// case-insensitively (Unicode simple folding, so U+212A matches k and
// U+017F s), after unescaping. Scanners that must see the members
// json.Unmarshal would (the budget's prompt walk, the OpenAI adapter's
// usage) share it.
func KeyIs(raw []byte, name string) bool {
	k := raw[1 : len(raw)-1]
	if bytes.IndexByte(k, '\\') < 0 {
		return string(k) == name || bytes.EqualFold(k, []byte(name))
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return false
	}
	return s == name || bytes.EqualFold([]byte(s), []byte(name))
}

// ValidJSON is json.Valid(b), in ScanFields' one pass and without its
// allocations: the budget's prompt walker checks a body with it before
// reading it the way json.Unmarshal would.
func ValidJSON(b []byte) bool { return scanFields(b, nil, nil) }

// scanFields is ScanFields' state machine. objs has a bit per open
// container, set for an object, so a closing bracket can be checked
// against its opener without recursion; the first 256 levels live on the
// stack.
func scanFields(b []byte, vals [][]byte, keys []string) bool {
	const (
		wantValue  = iota // a value starts at i, after optional space
		afterValue        // a value ended at i
		wantKey           // an object member starts at i, after optional space
	)
	var small [4]uint64
	objs := small[:]
	depth := 0      // open containers
	var want uint64 // keys whose value is the current top-level member's
	start := 0      // where that value starts
	state, i := wantValue, 0
	for {
		switch state {
		case wantValue:
			i = skipSpace(b, i)
			if i >= len(b) {
				return false
			}
			if want != 0 && depth == 1 {
				start = i
			}
			switch c := b[i]; c {
			case '{', '[':
				if depth == maxScanDepth {
					return false
				}
				w, bit := depth>>6, uint64(1)<<(depth&63)
				if w == len(objs) {
					objs = append(objs, 0)
				}
				if c == '{' {
					objs[w] |= bit
				} else {
					objs[w] &^= bit
				}
				depth++
				i = skipSpace(b, i+1)
				if i < len(b) && b[i] == c+2 { // '}' is '{'+2, ']' is '['+2
					i++
					depth--
					state = afterValue
				} else if c == '{' {
					state = wantKey
				}
				continue
			case '"':
				i = scanString(b, i)
			case 't':
				i = scanLiteral(b, i, "true")
			case 'f':
				i = scanLiteral(b, i, "false")
			case 'n':
				i = scanLiteral(b, i, "null")
			default:
				i = scanNumber(b, i)
			}
			if i < 0 {
				return false
			}
			state = afterValue
		case afterValue:
			if depth == 0 {
				return skipSpace(b, i) == len(b)
			}
			if depth == 1 && want != 0 {
				for k := range keys {
					if want&(1<<k) != 0 {
						vals[k] = b[start:i]
					}
				}
				want = 0
			}
			i = skipSpace(b, i)
			if i >= len(b) {
				return false
			}
			d := depth - 1
			inObject := objs[d>>6]&(1<<(d&63)) != 0
			switch b[i] {
			case ',':
				i++
				if inObject {
					state = wantKey
				} else {
					state = wantValue
				}
			case '}':
				if !inObject {
					return false
				}
				i++
				depth--
			case ']':
				if inObject {
					return false
				}
				i++
				depth--
			default:
				return false
			}
		case wantKey:
			i = skipSpace(b, i)
			if i >= len(b) || b[i] != '"' {
				return false
			}
			end := scanString(b, i)
			if end < 0 {
				return false
			}
			if depth == 1 {
				want = matchKeys(b[i:end], vals, keys)
			}
			i = skipSpace(b, end)
			if i >= len(b) || b[i] != ':' {
				return false
			}
			i++
			state = wantValue
		}
	}
}

// matchKeys returns a bit for each key that the quoted member name q
// matches and that has no value yet (the first member wins, as in
// TopField), matching as TopField does: the raw name, then the unescaped
// one.
func matchKeys(q []byte, vals [][]byte, keys []string) uint64 {
	var m uint64
	k := q[1 : len(q)-1]
	for j, key := range keys {
		if vals[j] == nil && string(k) == key {
			m |= 1 << j
		}
	}
	if bytes.IndexByte(k, '\\') < 0 {
		return m
	}
	u := unquoteKey(q)
	for j, key := range keys {
		if vals[j] == nil && u == key {
			m |= 1 << j
		}
	}
	return m
}

// scanString returns the index just past the string starting at b[i] ==
// '"', or -1 when it is unterminated or holds what encoding/json's scanner
// rejects: a control byte or a bad escape. Bytes from 0x80 up pass
// unchecked, as they do in json.Valid.
func scanString(b []byte, i int) int {
	for j := i + 1; j < len(b); j++ {
		c := b[j]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		if c == '"' {
			return j + 1
		}
		if c < 0x20 {
			return -1
		}
		j++
		if j >= len(b) {
			return -1
		}
		switch b[j] {
		case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		case 'u':
			if len(b)-j <= 4 {
				return -1
			}
			for _, h := range b[j+1 : j+5] {
				if !isHex(h) {
					return -1
				}
			}
			j += 4
		default:
			return -1
		}
	}
	return -1
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// scanNumber returns the index just past the JSON number starting at b[i],
// or -1 when there is none: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?.
// What follows it is the caller's to check ("01" is 0 then a stray 1).
func scanNumber(b []byte, i int) int {
	if b[i] == '-' {
		i++
	}
	switch {
	case i >= len(b):
		return -1
	case b[i] == '0':
		i++
	case '1' <= b[i] && b[i] <= '9':
		i = skipDigits(b, i+1)
	default:
		return -1
	}
	if i < len(b) && b[i] == '.' {
		if i++; i >= len(b) || b[i] < '0' || b[i] > '9' {
			return -1
		}
		i = skipDigits(b, i)
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) || b[i] < '0' || b[i] > '9' {
			return -1
		}
		i = skipDigits(b, i)
	}
	return i
}

func skipDigits(b []byte, i int) int {
	for i < len(b) && '0' <= b[i] && b[i] <= '9' {
		i++
	}
	return i
}

// scanLiteral returns the index just past lit at b[i], or -1.
func scanLiteral(b []byte, i int, lit string) int {
	if len(b)-i < len(lit) || string(b[i:i+len(lit)]) != lit {
		return -1
	}
	return i + len(lit)
}
