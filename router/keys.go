package router

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Smuggled keys (issue 16). The proxy reads the top-level members it routes
// and bills on by their exact name, but readers disagree about everything
// else: Go's encoding/json (our own struct decoders, and Go upstreams)
// matches keys case-insensitively and keeps the last duplicate, other
// parsers keep the first. {"model":"chat","MODEL":"gpt-4o"} was routed and
// billed as chat and served as gpt-4o. So a body is refused when two of its
// top-level keys are equal under Unicode case folding (bytes.EqualFold,
// which is the equivalence encoding/json uses), or when a key is a case
// variant of a parameter the proxy reads ("MAX_TOKENS" alone would be
// ignored by us and honoured by a lenient upstream).

// chatParams are the top-level chat-completions parameters, as OpenAI
// spells them, that the router, the budget guard or an adapter reads.
var chatParams = [...]string{
	"model", "messages", "stream", "stream_options", "max_tokens", "max_completion_tokens",
	"max_output_tokens", "n", "tools", "tool_choice", "parallel_tool_calls", "functions",
	"function_call", "response_format", "temperature", "top_p", "stop", "seed", "user",
	"presence_penalty", "frequency_penalty", "logprobs", "top_logprobs", "logit_bias",
	"metadata", "store", "reasoning_effort", "service_tier", "modalities", "audio", "prediction",
	"conversation", "vector_store_ids",
}

// CheckKeys refuses a JSON object whose top-level keys a lenient reader
// could confuse: a key given twice, two keys equal under case folding, or
// a case variant of one of params (the keys the caller reads, spelled as
// it reads them). body must be valid JSON; anything but an object passes.
// The error is a 400 invalid_request_error naming the key.
func CheckKeys(body []byte, params ...string) error {
	fields, ok := topLevel(body)
	if !ok {
		return nil
	}
	if e := keyError(fields, params); e != nil {
		return e
	}
	return nil
}

// keyError is CheckKeys on parsed fields; nil when the keys are fine.
func keyError(fields []field, params []string) *Error {
	if key, other, ok := pairClash(fields); ok {
		k := Clip(key)
		if key == other {
			// Readers disagree on duplicates: ParseChatRequest keeps the
			// last, Field, Messages and SetField the first, upstreams
			// usually the last.
			return invalidParam(k, "Duplicate key '"+k+"' in the request body.")
		}
		return invalidParam(k, "Keys '"+k+"' and '"+Clip(other)+"' in the request body differ only in case: send each parameter once, spelled as documented.")
	}
	for _, f := range fields {
		for _, p := range params {
			if f.key != p && foldEqual(f.key, p) {
				k := Clip(f.key)
				return invalidParam(k, "Unrecognized request argument supplied: "+k+" (parameter names are case-sensitive: did you mean '"+p+"'?)")
			}
		}
	}
	return nil
}

// pairClash returns the first key that another key equals, exactly or
// under case folding, and that other key. Up to 16 keys it compares pairs
// without allocating; beyond, a map of folded keys keeps it linear.
func pairClash(fields []field) (key, other string, found bool) {
	if len(fields) <= 16 {
		for i := range fields {
			for j := i + 1; j < len(fields); j++ {
				if fields[i].key == fields[j].key || foldEqual(fields[i].key, fields[j].key) {
					return fields[i].key, fields[j].key, true
				}
			}
		}
		return "", "", false
	}
	seen := make(map[string]string, len(fields))
	for _, f := range fields {
		fk := foldKey(f.key)
		if prev, ok := seen[fk]; ok {
			return prev, f.key, true
		}
		seen[fk] = f.key
	}
	return "", "", false
}

// foldEqual is strings.EqualFold with a cheap first-byte reject: distinct
// ASCII initials can never fold together, and that is nearly every pair.
func foldEqual(a, b string) bool {
	if a == "" || b == "" {
		return a == b
	}
	if x, y := a[0], b[0]; x < utf8.RuneSelf && y < utf8.RuneSelf && lowerASCII(x) != lowerASCII(y) {
		return false
	}
	return strings.EqualFold(a, b)
}

func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// foldKey maps s to one representative of its case-folding class, so that
// foldKey(a) == foldKey(b) exactly when strings.EqualFold(a, b): every rune
// becomes the smallest rune of its unicode.SimpleFold orbit (the way
// encoding/json folds names).
func foldKey(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		for {
			r2 := unicode.SimpleFold(r)
			if r2 <= r {
				r = r2
				break
			}
			r = r2
		}
		b.WriteRune(r)
	}
	return b.String()
}
