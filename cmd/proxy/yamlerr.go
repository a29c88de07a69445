package main

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/token"
)

// decodeErrorText is a strict-decode error as the semantic checks write
// theirs: the field path, the bad value, what is wanted, then [line:col],
// e.g. `models[0].pricing.input_per_mtok: "cheap" is not a number [3:31]`.
// goccy's own text names the Go struct (Config.Models) rather than the
// key; errors it has no position for keep its text (yamlErrorText).
func decodeErrorText(err error, root ast.Node) string {
	var (
		te *yaml.TypeError
		ne *yaml.UnexpectedNodeTypeError
		ye yaml.Error
	)
	switch {
	case errors.As(err, &te):
		if want := wantedType(te.DstType); want != "" {
			if path, n := nodePath(root, te.Token, ""); n != nil && path != "" {
				return fmt.Sprintf("%s: %s is not %s %s", path, describeNode(path, n), want, posText(te.Token))
			}
		}
	case errors.As(err, &ne):
		if want := wantedNode(ne.Expected); want != "" {
			if path, n := nodePath(root, ne.Token, ""); n != nil && path != "" {
				return fmt.Sprintf("%s: %s is not %s %s", path, describeNode(path, n), want, posText(ne.Token))
			}
		}
	case errors.As(err, &ye):
		if path, n := nodePath(root, ye.GetToken(), ""); n != nil && path != "" {
			return fmt.Sprintf("%s: %s %s", path, ye.GetMessage(), posText(ye.GetToken()))
		}
	default:
		// Our own UnmarshalYAML errors (Duration) start with [line:col].
		if m := leadingPos.FindStringSubmatch(err.Error()); m != nil {
			line, _ := strconv.Atoi(m[1])
			col, _ := strconv.Atoi(m[2])
			tk := &token.Token{Position: &token.Position{Line: line, Column: col}}
			if path, n := nodePath(root, tk, ""); n != nil && path != "" {
				return fmt.Sprintf("%s: %s [%d:%d]", path, m[3], line, col)
			}
		}
	}
	return yamlErrorText(err)
}

// leadingPos matches "[line:col] message".
var leadingPos = regexp.MustCompile(`^\[(\d+):(\d+)\] (.*)$`)

func posText(tk *token.Token) string {
	return fmt.Sprintf("[%d:%d]", tk.Position.Line, tk.Position.Column)
}

// wantedType names a Go destination type for an operator.
func wantedType(t reflect.Type) string {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil {
		return ""
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Bool:
		return "true or false"
	case reflect.String:
		return "a string"
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.Map, reflect.Struct:
		return "a mapping (key: value)"
	}
	return ""
}

func wantedNode(t ast.NodeType) string {
	switch t {
	case ast.SequenceType:
		return "a list"
	case ast.MappingType, ast.MappingValueType:
		return "a mapping (key: value)"
	}
	return ""
}

// describeNode is the bad value at path as the message quotes it: a
// scalar's text (quoted when a string), else what kind of node it is.
// Credential fields are never quoted.
func describeNode(path string, n ast.Node) string {
	if secretPath(path) {
		return "a " + strings.ToLower(strings.TrimSuffix(n.Type().String(), "Type"))
	}
	switch v := n.(type) {
	case *ast.StringNode:
		// A long string may be a credential in the wrong field (a
		// ${NAME} that holds a key): give its length, not its text.
		if len(v.Value) > 24 {
			return fmt.Sprintf("a string of %d characters", len(v.Value))
		}
		return strconv.Quote(v.Value)
	case *ast.SequenceNode:
		return "a list"
	case *ast.MappingNode, *ast.MappingValueNode:
		return "a mapping"
	case *ast.NullNode:
		return "null"
	case ast.ScalarNode:
		return n.String()
	}
	return "a " + n.Type().String()
}

// nodePath finds the value node that holds tk under n, and its path in
// the semantic checks' form ("models[0].pricing.input_per_mtok").
func nodePath(n ast.Node, tk *token.Token, path string) (string, ast.Node) {
	if n == nil || tk == nil {
		return "", nil
	}
	if sameToken(n.GetToken(), tk) {
		return path, n
	}
	switch v := n.(type) {
	case *ast.MappingNode:
		for _, mv := range v.Values {
			if p, f := nodePath(mv, tk, path); f != nil {
				return p, f
			}
		}
	case *ast.MappingValueNode:
		if v.Key == nil || v.Key.GetToken() == nil {
			return "", nil
		}
		key := v.Key.GetToken().Value
		if path != "" {
			key = path + "." + key
		}
		return nodePath(v.Value, tk, key)
	case *ast.SequenceNode:
		for i, e := range v.Values {
			if p, f := nodePath(e, tk, fmt.Sprintf("%s[%d]", path, i)); f != nil {
				return p, f
			}
		}
	case *ast.TagNode:
		return nodePath(v.Value, tk, path)
	case *ast.AnchorNode:
		return nodePath(v.Value, tk, path)
	}
	return "", nil
}

func sameToken(a, b *token.Token) bool {
	return a != nil && b != nil && (a == b || a.Position != nil && b.Position != nil &&
		a.Position.Line == b.Position.Line && a.Position.Column == b.Position.Column)
}

// secretPath reports the fields that hold credentials (Secret in
// config.go).
func secretPath(path string) bool {
	return strings.Contains(path, "api_key") || strings.HasSuffix(path, "master_key") || path == "database.url"
}
