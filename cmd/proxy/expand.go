package main

// ${NAME} expansion.
//
// Expansion runs on the parsed YAML tree, not on the raw text: the file is
// parsed first and only scalar values are rewritten in place. A variable's
// value therefore always stays one scalar. A value holding a newline, ": ",
// "#", "[" or quotes cannot add keys, list items or comments, and needs no
// quoting. Two consequences an operator may notice:
//
//   - comments and mapping keys are never expanded, so a commented-out
//     ${OPENAI_API_KEY} in the example needs no variable;
//   - inside flow collections ([...] and {...}) a reference must be quoted,
//     as in ["${KEY}"], because YAML does not allow "{" in a plain scalar
//     there.
//
// An expanded value is a string. Integer and float fields accept numeric
// strings, so max_body_bytes: ${MAX_BODY:-1048576} works. An unquoted
// reference that expands to "" becomes null (the field keeps its zero value
// and default), and one that expands to true or false becomes a boolean.

import (
	"errors"
	"fmt"
	"strings"

	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/token"
)

// expandProblem is one bad reference in a scalar. line counts newlines
// before the reference inside the scalar, so multi-line scalars report the
// right line.
type expandProblem struct {
	line int
	msg  string
}

// expandString expands ${NAME} and ${NAME:-default} in s and turns $$ into $.
// ${NAME:-default} uses default when NAME is unset or empty, as the shell
// does. A "$" before anything else is kept as is, so "$2a$10$..." needs no
// escaping. The default is literal text up to the first "}"; references do
// not nest. The expanded values are not scanned again.
func expandString(s string, lookup func(string) (string, bool)) (string, []expandProblem) {
	if !strings.Contains(s, "$") {
		return s, nil
	}
	var (
		b        strings.Builder
		problems []expandProblem
	)
	b.Grow(len(s))
	for i := 0; i < len(s); {
		c := s[i]
		if c != '$' || i+1 >= len(s) || (s[i+1] != '$' && s[i+1] != '{') {
			b.WriteByte(c)
			i++
			continue
		}
		if s[i+1] == '$' {
			b.WriteByte('$')
			i += 2
			continue
		}
		line := strings.Count(s[:i], "\n")
		end := strings.IndexByte(s[i+2:], '}')
		if end < 0 {
			problems = append(problems, expandProblem{line, `unterminated "${": close it with "}", or write "$$" for a literal "$"`})
			b.WriteString(s[i:])
			break
		}
		ref := s[i+2 : i+2+end]
		i += 2 + end + 1
		name, def, hasDef := strings.Cut(ref, ":-")
		if !validVarName(name) {
			problems = append(problems, expandProblem{line, fmt.Sprintf("%s is not a valid reference: want ${NAME} or ${NAME:-default}, NAME being letters, digits and _", quoteRef(ref))})
			continue
		}
		v, ok := lookup(name)
		switch {
		case hasDef && v == "":
			v = def
		case !ok:
			problems = append(problems, expandProblem{line, fmt.Sprintf("environment variable %q is not set", name)})
		}
		b.WriteString(v)
	}
	return b.String(), problems
}

// quoteRef quotes a bad ${...} reference for an error, cut short so a
// mistyped line cannot fill the terminal.
func quoteRef(ref string) string {
	const limit = 40
	if len(ref) > limit {
		return fmt.Sprintf("%q", "${"+ref[:limit]+"…")
	}
	return fmt.Sprintf("%q", "${"+ref+"}")
}

func validVarName(name string) bool {
	if name == "" {
		return false
	}
	for i, r := range name {
		switch {
		case r == '_', 'A' <= r && r <= 'Z', 'a' <= r && r <= 'z':
		case '0' <= r && r <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// expandTree expands every scalar value under n in place and returns the
// node that replaces n (n itself unless n is a scalar that changed type).
// It collects every problem, one "line N: ..." error each.
func expandTree(n ast.Node, lookup func(string) (string, bool)) (ast.Node, error) {
	e := &treeExpander{lookup: lookup}
	out := e.node(n)
	return out, errors.Join(e.errs...)
}

type treeExpander struct {
	lookup func(string) (string, bool)
	errs   []error
}

func (e *treeExpander) node(n ast.Node) ast.Node {
	switch n := n.(type) {
	case *ast.DocumentNode:
		n.Body = e.node(n.Body)
	case *ast.MappingNode:
		for _, mv := range n.Values {
			e.node(mv)
		}
	case *ast.MappingValueNode:
		// Keys are not expanded: a key is schema, not a value.
		if v := e.node(n.Value); v != n.Value {
			_ = n.Replace(v) // cannot fail: v is a plain scalar node
		}
	case *ast.SequenceNode:
		for i, v := range n.Values {
			if nv := e.node(v); nv != v {
				_ = n.Replace(i, nv) // cannot fail: i is in range
			}
		}
	case *ast.AnchorNode:
		n.Value = e.node(n.Value)
	case *ast.TagNode:
		n.Value = e.node(n.Value)
	case *ast.LiteralNode: // block scalars: | and >; the text starts on the next line
		e.scalar(n.Value, true, tokenLine(n.Start)+1)
	case *ast.StringNode:
		return e.scalar(n, isQuoted(n.Token), tokenLine(n.Token))
	}
	return n
}

// scalar expands s in place. For an unquoted scalar it may return a null or
// boolean node instead (see the package comment above).
// line is where the scalar's text starts.
func (e *treeExpander) scalar(s *ast.StringNode, quoted bool, line int) ast.Node {
	if s == nil || !strings.Contains(s.Value, "$") {
		return s
	}
	v, problems := expandString(s.Value, e.lookup)
	for _, p := range problems {
		e.errs = append(e.errs, fmt.Errorf("line %d: %s", line+p.line, p.msg))
	}
	// A fresh token carries the new value; its Origin keeps the raw
	// "${NAME}" text, so any source excerpt shows the reference, not the
	// secret it expanded to.
	var tk token.Token
	if s.Token != nil {
		tk = *s.Token
	}
	tk.Value = v
	s.Value = v
	s.Token = &tk
	if quoted {
		return s
	}
	switch {
	case v == "":
		tk.Type = token.NullType
		return ast.Null(&tk)
	case v == "true" || v == "false":
		tk.Type = token.BoolType
		return ast.Bool(&tk)
	}
	return s
}

func tokenLine(tk *token.Token) int {
	if tk == nil || tk.Position == nil {
		return 0
	}
	return tk.Position.Line
}

func isQuoted(tk *token.Token) bool {
	return tk != nil && (tk.Type == token.DoubleQuoteType || tk.Type == token.SingleQuoteType)
}
