package budget

import "llmproxy/router"

// The prompt bound. Counting a prompt with tiktoken was a fifth of the
// proxy's CPU per request, and admission rarely needs the exact figure: a
// reservation that fits with an upper bound fits with the exact count. So
// Inspect adds up, without the tokenizer and without decoding, what
// Prompt would tokenize, with each text's byte length standing in for its
// token count (a token is at least one byte of UTF-8 under every BPE
// encoding we use, and a JSON literal's escapes only make it longer than
// its text), plus the same fixed costs. Prompt then runs only when a
// decision depends on the difference; see Guard.

// PromptBound is an upper bound on Counter.Prompt for body under any
// model: Prompt(model, body) ≤ PromptBound(body) always.
func PromptBound(body []byte) int { return inspect(body).Tokens }

// inspect computes the bound and the capabilities in one pass.
//
// It mirrors exactPrompt field by field, matching keys as encoding/json
// does (case-insensitively). Where exactPrompt's decode fails it falls
// back to a quarter of the size; that fallback is at most the body's
// length, which the bound covers by never going below it.
func inspect(body []byte) PromptInfo {
	fallback := (len(body) + 3) / 4
	m, ok := objectMembers(body)
	if !ok { // exactPrompt's decode fails, or decodes nothing (null)
		return PromptInfo{Tokens: max(fallback, tokensReplyPrimer)}
	}
	info := PromptInfo{}
	n := tokensReplyPrimer
	defs := 0
	for {
		k, v, ok := m.next()
		if !ok {
			break
		}
		switch {
		case router.KeyIs(k, "messages"):
			n += messagesBound(v, &info)
		case router.KeyIs(k, "tools"), router.KeyIs(k, "functions"):
			if e, ok := arrayElems(v); ok {
				for d, ok := e.next(); ok; d, ok = e.next() {
					defs++
					n += tokensPerTool + litBytes(d)
				}
			}
		case router.KeyIs(k, "response_format"):
			info.JSONSchema = responseFormat(v) == "json_schema"
		}
	}
	if defs > 0 {
		info.Tools = true
		n += tokensToolsPreamble
	}
	info.Tokens = max(n, fallback)
	return info
}

func messagesBound(v []byte, info *PromptInfo) int {
	e, ok := arrayElems(v)
	if !ok {
		return 0
	}
	n := 0
	for msg, ok := e.next(); ok; msg, ok = e.next() {
		n += tokensPerMessage
		m, ok := objectMembers(msg)
		if !ok {
			continue // null is an empty message; anything else fails the decode
		}
		for {
			k, v, ok := m.next()
			if !ok {
				break
			}
			switch {
			case router.KeyIs(k, "role"), router.KeyIs(k, "tool_call_id"):
				if isString(v) {
					n += litBytes(v)
				}
			case router.KeyIs(k, "name"):
				if isString(v) && len(v) > 2 {
					n += tokensPerName + litBytes(v)
				}
			case router.KeyIs(k, "content"):
				n += contentBound(v, info)
			case router.KeyIs(k, "tool_calls"):
				n += toolCallsBound(v)
			}
		}
	}
	return n
}

// contentBound bounds contentTokens: a string, an array of parts, null, or
// anything else (counted by size).
func contentBound(v []byte, info *PromptInfo) int {
	if len(v) == 0 || string(v) == "null" {
		return 0
	}
	if isString(v) {
		return litBytes(v)
	}
	fallback := (len(v) + 3) / 4
	e, ok := arrayElems(v)
	if !ok {
		return fallback
	}
	n := 0
	for part, ok := e.next(); ok; part, ok = e.next() {
		n += partBound(part, info)
	}
	return max(n, fallback)
}

func partBound(part []byte, info *PromptInfo) int {
	m, ok := objectMembers(part)
	if !ok {
		return ImageTokens // null: a part of no type, the flat cost
	}
	typ, text, file, audio := "", 0, 0, 0
	for {
		k, v, ok := m.next()
		if !ok {
			break
		}
		switch {
		case router.KeyIs(k, "type"):
			typ, _ = strValue(v) // encoding/json keeps the last
		case router.KeyIs(k, "text"), router.KeyIs(k, "refusal"):
			if isString(v) {
				text += litBytes(v)
			}
		case router.KeyIs(k, "file"):
			d, name := payloadBound(v, "file_data", "filename")
			if d == 0 {
				d = FileRefTokens // no file_data: a file_id, the flat cost
			}
			file = d + name
		case router.KeyIs(k, "input_audio"):
			audio, _ = payloadBound(v, "data", "")
		}
	}
	switch typ {
	case "text", "refusal":
		return text
	case "image_url", "input_image":
		info.Vision = true
	case "file":
		return max(file, FileRefTokens) // "file" absent or null: the flat cost
	case "input_audio":
		return audio
	}
	return ImageTokens // images (the high-detail cost bounds the low one) and other parts
}

// payloadBound bounds the tokens of an inline payload object (a file or
// input_audio part's value): the decoded size of its base64 member data
// (see payloadTokens: the literal's length only adds; 0 only when it is
// absent or empty), and the bytes of its text member name.
func payloadBound(v []byte, data, name string) (d, nm int) {
	m, ok := objectMembers(v)
	if !ok {
		return 0, 0
	}
	for k, v, ok := m.next(); ok; k, v, ok = m.next() {
		switch {
		case !isString(v):
		case router.KeyIs(k, data):
			d = base64Tokens(litBytes(v))
		case name != "" && router.KeyIs(k, name):
			nm = litBytes(v)
		}
	}
	return d, nm
}

func toolCallsBound(v []byte) int {
	n := 0
	eachToolCall(v, func() { n += tokensPerToolCall }, func(lit []byte) {
		if isString(lit) {
			n += litBytes(lit)
		}
	})
	return n
}

// eachToolCall walks a tool_calls array: call runs once per element, and
// lit with the raw value of each function.name and function.arguments.
// The prompt bound and the stream counter both read tool calls this way.
func eachToolCall(v []byte, call func(), lit func(v []byte)) {
	e, ok := arrayElems(v)
	if !ok {
		return
	}
	for c, ok := e.next(); ok; c, ok = e.next() {
		if call != nil {
			call()
		}
		m, ok := objectMembers(c)
		if !ok {
			continue
		}
		for k, v, ok := m.next(); ok; k, v, ok = m.next() {
			if !router.KeyIs(k, "function") {
				continue
			}
			fm, ok := objectMembers(v)
			if !ok {
				continue
			}
			for k, v, ok := fm.next(); ok; k, v, ok = fm.next() {
				if router.KeyIs(k, "name") || router.KeyIs(k, "arguments") {
					lit(v)
				}
			}
		}
	}
}

func responseFormat(v []byte) string {
	m, ok := objectMembers(v)
	if !ok {
		return ""
	}
	typ := ""
	for {
		k, v, ok := m.next()
		if !ok {
			break
		}
		if router.KeyIs(k, "type") {
			typ, _ = strValue(v)
		}
	}
	return typ
}
