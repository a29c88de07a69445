package parse

import (
	"bytes"
	"encoding/json"
	"io"
	"strconv"
	"strings"
)

// jsonText renders a JSON document as indented "key: value" lines, so its
// keys and string values are searchable as words:
//
//	{"title": "Q3", "tags": ["a", "b"], "owner": {"name": "Ada"}}
//
// becomes
//
//	title: Q3
//	tags:
//	  - a
//	  - b
//	owner:
//	  name: Ada
//
// It streams tokens, so nesting depth costs no stack. Anything but one
// valid JSON value (empty, malformed, trailing data) is invalid_file.
func jsonText(data []byte, limit int) (string, error) {
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	var (
		b       strings.Builder
		stack   []byte // '{' or '[' per open container
		key     string // the key of the value being read, in an object
		haveKey bool
		seen    bool // the top-level value has started
	)
	line := func(v string) { // v is "" when a container opens
		if n := len(stack); n > 0 {
			b.WriteString(strings.Repeat("  ", min(n-1, maxIndent)))
			if stack[n-1] == '[' {
				b.WriteString("-")
			} else {
				b.WriteString(key + ":")
			}
			if v != "" {
				b.WriteByte(' ')
			}
		}
		b.WriteString(v)
		b.WriteByte('\n')
	}
	for {
		tok, err := d.Token()
		switch {
		case b.Len() > limit:
			return "", errTooLong
		case err == io.EOF && seen && len(stack) == 0:
			return strings.TrimRight(b.String(), "\n"), nil
		case err != nil:
			return "", invalid("the JSON is not valid")
		case seen && len(stack) == 0:
			return "", invalid("the JSON has data after its value")
		}
		seen = true
		if n := len(stack); n > 0 && stack[n-1] == '{' && !haveKey && tok != json.Delim('}') {
			s, ok := tok.(string) // the decoder hands out keys only here
			if !ok {
				return "", invalid("the JSON is not valid")
			}
			key, haveKey = oneLine(s), true
			continue
		}
		switch t := tok.(type) {
		case json.Delim:
			if t == '{' || t == '[' {
				if len(stack) > 0 {
					line("")
				}
				stack = append(stack, byte(t))
			} else {
				stack = stack[:len(stack)-1]
			}
		case string:
			line(oneLine(t))
		case json.Number:
			line(t.String())
		case bool:
			line(strconv.FormatBool(t))
		case nil:
			line("null")
		default:
			return "", invalid("the JSON is not valid")
		}
		haveKey = false
	}
}

// maxIndent caps the indentation, so deep nesting cannot grow the text
// with the square of its depth.
const maxIndent = 16

// oneLine keeps a string value on its line: newlines and tabs become
// spaces, other controls go.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' || r == '\t' {
			return ' '
		}
		return dropControls(r)
	}, s)
}
