package budget

import (
	"bytes"
	"slices"
	"unicode/utf16"
	"unicode/utf8"

	"llmproxy/router"
)

// The exact prompt count without encoding/json (issue 15). Decoding the
// body into a struct with reflection was a fifth of exactPrompt's CPU, and
// copied every string of the prompt. exactPrompt now checks the body the
// way json.Unmarshal does (router.ValidJSON), walks it with the scanner of
// jsonscan.go, and decodes a string only to count it, into one scratch
// buffer. It gives the count the decode did for every input, which
// prompt_oracle_test.go checks against that implementation, so it follows
// encoding/json where it is surprising:
//
//   - a body that is not valid JSON, or whose messages, tools, functions
//     or response_format (or the fields inside them that were decoded)
//     have the wrong JSON type, fails the decode and counts by size;
//   - keys match struct fields case-insensitively (Unicode folding, after
//     unescaping: keyIs), a repeated key is decoded again over the first,
//     and null leaves a string or struct field as it was;
//   - an array decoded over an earlier one (a repeated "messages" or
//     "tool_calls" key) decodes its elements into the slice's existing
//     elements, which keep the fields the new ones lack, including those
//     past the current length that an earlier, longer array left in the
//     backing array. The walk keeps those elements as slots (msgSlot,
//     callSlot) and counts at the end.
//
// Content is decoded on its own (a json.RawMessage): a content of the
// wrong type counts by its size, not the whole body.

// exactPrompt counts the prompt tokens of a chat body (see Prompt).
func (c *Counter) exactPrompt(model string, body []byte) int {
	if !router.ValidJSON(body) {
		return (len(body) + 3) / 4
	}
	var msgs [8]msgSlot // most chats fit without a heap allocation
	w := promptWalk{cd: c.codec(model), msgs: msgs[:0]}
	n, ok := w.prompt(body)
	if !ok {
		return (len(body) + 3) / 4
	}
	return n
}

// promptWalk is one count's state.
type promptWalk struct {
	cd *tokenCounter
	// msgs are the elements of the messages slice's backing array, of
	// which the first nmsgs are the slice.
	msgs  []msgSlot
	nmsgs int
	// tools and functions are the raw arrays (nil for none or null).
	tools, functions []byte
	buf              []byte // decoded strings
}

// msgSlot is one decoded message; string fields hold the raw literal of
// the last non-null value, content the raw value of the last one.
type msgSlot struct {
	role, name, toolCallID, content []byte
	calls                           []callSlot
	ncalls                          int
}

type callSlot struct{ name, arguments []byte }

func isNull(v []byte) bool { return string(v) == "null" }

// prompt walks a valid JSON body and counts it; ok is false when the
// decode into the prompt's shape would fail on a type.
func (w *promptWalk) prompt(body []byte) (n int, ok bool) {
	v := body[skipSpace(body, 0):]
	if isNull(v[:min(len(v), 4)]) {
		return tokensReplyPrimer, true // null decodes to nothing
	}
	m, ok := objectMembers(v)
	if !ok {
		return 0, false
	}
	for k, v, more := m.next(); more; k, v, more = m.next() {
		switch {
		case router.KeyIs(k, "messages"):
			ok = w.messages(v)
		case router.KeyIs(k, "tools"):
			w.tools, ok = rawArray(v)
		case router.KeyIs(k, "functions"):
			w.functions, ok = rawArray(v)
		case router.KeyIs(k, "response_format"):
			ok = responseFormatOK(v)
		}
		if !ok {
			return 0, false
		}
	}
	return w.count(), true
}

// count adds up the decoded prompt, as the struct-based count did.
func (w *promptWalk) count() int {
	n := tokensReplyPrimer
	for i := range w.nmsgs {
		m := &w.msgs[i]
		n += tokensPerMessage + w.countLit(m.role)
		if len(m.name) > 2 { // not "" (an escape decodes to something)
			n += tokensPerName + w.countLit(m.name)
		}
		n += w.contentTokens(m.content)
		for j := range m.ncalls {
			c := &m.calls[j]
			n += tokensPerToolCall + w.countLit(c.name) + w.countLit(c.arguments)
		}
		if len(m.toolCallID) > 2 {
			n += w.countLit(m.toolCallID)
		}
	}
	defs := 0
	for _, arr := range [2][]byte{w.tools, w.functions} {
		e, _ := arrayElems(arr)
		for d, ok := e.next(); ok; d, ok = e.next() {
			// The JSON of a definition is a slight overestimate of the
			// TypeScript-like text OpenAI renders it into: fine for a
			// reservation that is settled to the real count.
			defs++
			n += tokensPerTool + countBytesWith(w.cd, d)
		}
	}
	if defs > 0 {
		n += tokensToolsPreamble
	}
	return n
}

// rawArray checks a value decoded into a slice of json.RawMessage: an
// array (returned) or null (nil); anything else is a type error.
func rawArray(v []byte) ([]byte, bool) {
	switch {
	case isNull(v):
		return nil, true
	case v[0] == '[':
		return v, true
	}
	return nil, false
}

// stringOK reports whether v decodes into a string field: a string or
// null.
func stringOK(v []byte) bool { return v[0] == '"' || isNull(v) }

// setString keeps a string value in *dst; null leaves it as it was.
func setString(dst *[]byte, v []byte) bool {
	if v[0] == '"' {
		*dst = v
		return true
	}
	return isNull(v)
}

// structMembers starts a walk over a value decoded into a struct: an
// object, or null, which leaves the struct as it was (walk is false);
// ok is false for a type error.
func structMembers(v []byte) (m members, walk, ok bool) {
	if isNull(v) {
		return members{}, false, true
	}
	m, walk = objectMembers(v)
	return m, walk, walk
}

func responseFormatOK(v []byte) bool {
	m, walk, ok := structMembers(v)
	if !walk {
		return ok
	}
	for k, v, more := m.next(); more; k, v, more = m.next() {
		if router.KeyIs(k, "type") && !stringOK(v) {
			return false
		}
	}
	return true
}

// messages decodes a messages value over the current slice.
func (w *promptWalk) messages(v []byte) bool {
	return decodeSlots(v, &w.msgs, &w.nmsgs, w.message)
}

// decodeSlots decodes a JSON array v over *slots the way json.Unmarshal
// decodes into a slice: null empties it, element i is decoded over the
// slot already at i (growing the slice as needed), [] leaves nothing
// behind, and *n is the new length. A wrong type fails.
func decodeSlots[T any](v []byte, slots *[]T, n *int, decode func(*T, []byte) bool) bool {
	if isNull(v) {
		*slots, *n = (*slots)[:0], 0
		return true
	}
	e, ok := arrayElems(v)
	if !ok {
		return false
	}
	i := 0
	for el, more := e.next(); more; el, more = e.next() {
		if i == len(*slots) {
			var zero T
			*slots = append(*slots, zero)
		}
		if !decode(&(*slots)[i], el) {
			return false
		}
		i++
	}
	if i == 0 { // [] makes a new empty slice: nothing left behind
		*slots = (*slots)[:0]
	}
	*n = i
	return true
}

func (w *promptWalk) message(s *msgSlot, v []byte) bool {
	m, walk, ok := structMembers(v)
	if !walk {
		return ok
	}
	for k, v, more := m.next(); more; k, v, more = m.next() {
		switch {
		case router.KeyIs(k, "role"):
			ok = setString(&s.role, v)
		case router.KeyIs(k, "content"):
			s.content = v
		case router.KeyIs(k, "name"):
			ok = setString(&s.name, v)
		case router.KeyIs(k, "tool_calls"):
			ok = s.toolCalls(v)
		case router.KeyIs(k, "tool_call_id"):
			ok = setString(&s.toolCallID, v)
		}
		if !ok {
			return false
		}
	}
	return true
}

// toolCalls decodes a tool_calls value over the message's slice, as
// messages does.
func (s *msgSlot) toolCalls(v []byte) bool {
	return decodeSlots(v, &s.calls, &s.ncalls, (*callSlot).decode)
}

func (c *callSlot) decode(v []byte) bool {
	m, walk, ok := structMembers(v)
	if !walk {
		return ok
	}
	for k, v, more := m.next(); more; k, v, more = m.next() {
		if !router.KeyIs(k, "function") {
			continue
		}
		fm, walk, ok := structMembers(v)
		if !ok {
			return false
		}
		for k, v, more := fm.next(); walk && more; k, v, more = fm.next() {
			switch {
			case router.KeyIs(k, "name"):
				ok = setString(&c.name, v)
			case router.KeyIs(k, "arguments"):
				ok = setString(&c.arguments, v)
			}
			if !ok {
				return false
			}
		}
	}
	return true
}

// contentPart holds a part's raw literals, as msgSlot does.
type contentPart struct {
	typ, text, refusal, detail, fileData, filename, audioData []byte
}

// contentTokens counts a message's raw content: a string, an array of
// parts, or null. Another type, or a part with a field of the wrong
// type, counts by the content's size.
func (w *promptWalk) contentTokens(raw []byte) int {
	switch {
	case len(raw) == 0 || isNull(raw):
		return 0
	case raw[0] == '"':
		return w.countLit(raw)
	}
	fallback := (len(raw) + 3) / 4
	e, ok := arrayElems(raw)
	if !ok {
		return fallback
	}
	n := 0
	for el, more := e.next(); more; el, more = e.next() {
		var p contentPart
		if !p.decode(el) {
			return fallback
		}
		n += w.partTokens(&p)
	}
	return n
}

func (p *contentPart) decode(v []byte) bool {
	m, walk, ok := structMembers(v)
	if !walk {
		return ok // null: a part of no type
	}
	for k, v, more := m.next(); more; k, v, more = m.next() {
		switch {
		case router.KeyIs(k, "type"):
			ok = setString(&p.typ, v)
		case router.KeyIs(k, "text"):
			ok = setString(&p.text, v)
		case router.KeyIs(k, "refusal"):
			ok = setString(&p.refusal, v)
		case router.KeyIs(k, "image_url"):
			ok = decodeStruct(v, "detail", &p.detail, "", nil)
		case router.KeyIs(k, "file"):
			ok = decodeStruct(v, "file_data", &p.fileData, "filename", &p.filename)
		case router.KeyIs(k, "input_audio"):
			ok = decodeStruct(v, "data", &p.audioData, "", nil)
		}
		if !ok {
			return false
		}
	}
	return true
}

// decodeStruct decodes v into a struct of one or two string fields.
func decodeStruct(v []byte, name1 string, dst1 *[]byte, name2 string, dst2 *[]byte) bool {
	m, walk, ok := structMembers(v)
	for k, v, more := m.next(); walk && more; k, v, more = m.next() {
		switch {
		case router.KeyIs(k, name1):
			ok = setString(dst1, v)
		case name2 != "" && router.KeyIs(k, name2):
			ok = setString(dst2, v)
		}
		if !ok {
			return false
		}
	}
	return ok
}

func (w *promptWalk) partTokens(p *contentPart) int {
	switch string(w.decode(p.typ)) {
	case "text":
		return w.countLit(p.text)
	case "refusal":
		return w.countLit(p.refusal)
	case "image_url", "input_image":
		if string(w.decode(p.detail)) == "low" {
			return ImageTokensLow
		}
		return ImageTokens
	case "file":
		n := FileRefTokens
		if len(p.fileData) > 2 {
			n = payloadTokens(w.decode(p.fileData))
		}
		return n + w.countLit(p.filename)
	case "input_audio":
		return payloadTokens(w.decode(p.audioData))
	}
	return ImageTokens // unknown part types: a flat cost rather than nothing
}

// countLit counts the text of a raw string literal (none for nil).
func (w *promptWalk) countLit(lit []byte) int {
	return countBytesWith(w.cd, w.decode(lit))
}

// decode returns the text of a raw string literal as encoding/json
// decodes it (nil for nil): the literal's own bytes when it has no
// escapes and is valid UTF-8, else the decoded text in w.buf, valid until
// the next decode.
func (w *promptWalk) decode(lit []byte) []byte {
	if len(lit) < 2 {
		return nil
	}
	s := lit[1 : len(lit)-1]
	if bytes.IndexByte(s, '\\') < 0 && utf8.Valid(s) {
		return s
	}
	// Escapes only shorten the text; an invalid byte (U+FFFD) lengthens
	// it, and append grows the buffer then.
	w.buf = unquoteTo(slices.Grow(w.buf[:0], len(s)), s)
	return w.buf
}

// unquoteTo appends the text of the contents s of a valid JSON string
// literal to b, as encoding/json's unquote: escapes decoded, a \u
// surrogate pair joined and any other surrogate escape made U+FFFD, and
// every byte that is not part of valid UTF-8 made U+FFFD.
func unquoteTo(b, s []byte) []byte {
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '\\':
			switch s[i+1] {
			case 'b':
				b = append(b, '\b')
			case 'f':
				b = append(b, '\f')
			case 'n':
				b = append(b, '\n')
			case 'r':
				b = append(b, '\r')
			case 't':
				b = append(b, '\t')
			case 'u':
				r := hex4(s[i+2 : i+6])
				i += 6
				if utf16.IsSurrogate(r) {
					if i+6 <= len(s) && s[i] == '\\' && s[i+1] == 'u' {
						if d := utf16.DecodeRune(r, hex4(s[i+2:i+6])); d != utf8.RuneError {
							b = utf8.AppendRune(b, d)
							i += 6
							continue
						}
					}
					r = utf8.RuneError
				}
				b = utf8.AppendRune(b, r)
				continue
			default: // " \ /
				b = append(b, s[i+1])
			}
			i += 2
		case c < utf8.RuneSelf:
			b = append(b, c)
			i++
		default:
			r, n := utf8.DecodeRune(s[i:])
			b = utf8.AppendRune(b, r)
			i += n
		}
	}
	return b
}

// hex4 decodes four hex digits (router.ValidJSON checked them).
func hex4(h []byte) rune {
	var r rune
	for _, c := range h[:4] {
		switch {
		case c <= '9':
			c -= '0'
		case c >= 'a':
			c -= 'a' - 10
		default:
			c -= 'A' - 10
		}
		r = r<<4 | rune(c)
	}
	return r
}

// payloadTokens bounds an inline payload: a base64 string or a data URL.
func payloadTokens(s []byte) int {
	if rest, ok := bytes.CutPrefix(s, []byte("data:")); ok {
		if _, data, found := bytes.Cut(rest, []byte(",")); found {
			s = data
		}
	}
	return base64Tokens(len(s))
}
