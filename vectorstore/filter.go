package vectorstore

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strings"
)

// Filter is OpenAI's attribute filter: a comparison (Op eq, ne, gt, gte,
// lt, lte, in, nin on Key against Value) or a compound (Op and, or over
// Filters). It selects vector-store files by their attributes.
//
// Semantics, the same in Match and in the SQL store/postgres builds:
// values compare by type (a string never equals a number); gt, gte, lt
// and lte compare numbers numerically and strings bytewise; a missing
// key or a value of another type fails every comparison except ne and
// nin, which it passes; in and nin take a list of strings and numbers.
type Filter struct {
	Op      string
	Key     string
	Value   any // string, float64, bool, or []any of strings and float64
	Filters []*Filter
}

const (
	maxFilterDepth = 8
	maxFilterNodes = 64
)

// ParseFilter decodes and checks a filter from JSON.
func ParseFilter(raw json.RawMessage) (*Filter, error) {
	n := 0
	return parseFilter(raw, 0, &n)
}

func parseFilter(raw json.RawMessage, depth int, n *int) (*Filter, error) {
	*n++
	if depth > maxFilterDepth || *n > maxFilterNodes {
		return nil, fmt.Errorf("filters nest deeper than %d levels or hold more than %d filters", maxFilterDepth, maxFilterNodes)
	}
	var f struct {
		Type    string            `json:"type"`
		Key     *string           `json:"key"`
		Value   json.RawMessage   `json:"value"`
		Filters []json.RawMessage `json:"filters"`
	}
	if err := json.Unmarshal(raw, &f); err != nil {
		return nil, fmt.Errorf("a filter must be an object with type: %v", err)
	}
	switch f.Type {
	case "and", "or":
		if len(f.Filters) == 0 {
			return nil, fmt.Errorf("a %q filter needs a non-empty filters list", f.Type)
		}
		out := &Filter{Op: f.Type}
		for _, sub := range f.Filters {
			c, err := parseFilter(sub, depth+1, n)
			if err != nil {
				return nil, err
			}
			out.Filters = append(out.Filters, c)
		}
		return out, nil
	case "eq", "ne", "gt", "gte", "lt", "lte", "in", "nin":
	default:
		return nil, fmt.Errorf("filter type %q is not one of eq, ne, gt, gte, lt, lte, in, nin, and, or", clip(f.Type))
	}
	if f.Key == nil || *f.Key == "" {
		return nil, fmt.Errorf("a %q filter needs a key", f.Type)
	}
	v, err := filterValue(f.Type, f.Value)
	if err != nil {
		return nil, err
	}
	return &Filter{Op: f.Type, Key: *f.Key, Value: v}, nil
}

// filterValue decodes a comparison's value: a scalar, or for in and nin a
// non-empty list of strings and numbers.
func filterValue(op string, raw json.RawMessage) (any, error) {
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil, fmt.Errorf("a %q filter needs a value", op)
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, fmt.Errorf("filter value: %v", err)
	}
	if op == "in" || op == "nin" {
		list, ok := v.([]any)
		if !ok || len(list) == 0 {
			return nil, fmt.Errorf("an %q filter's value is a non-empty list of strings or numbers", op)
		}
		for _, e := range list {
			switch e.(type) {
			case string, float64:
			default:
				return nil, fmt.Errorf("an %q filter's value is a list of strings or numbers", op)
			}
		}
		return list, nil
	}
	switch x := v.(type) {
	case string:
	case float64:
		if math.IsInf(x, 0) || math.IsNaN(x) {
			return nil, fmt.Errorf("filter value is not a finite number")
		}
	case bool:
		if op != "eq" && op != "ne" {
			return nil, fmt.Errorf("a %q filter compares strings or numbers, not booleans", op)
		}
	default:
		return nil, fmt.Errorf("a %q filter's value is a string, number or boolean", op)
	}
	return v, nil
}

// Match reports whether attrs pass f (a nil filter passes everything).
func (f *Filter) Match(attrs map[string]any) bool {
	if f == nil {
		return true
	}
	switch f.Op {
	case "and":
		for _, c := range f.Filters {
			if !c.Match(attrs) {
				return false
			}
		}
		return true
	case "or":
		for _, c := range f.Filters {
			if c.Match(attrs) {
				return true
			}
		}
		return false
	}
	a, ok := attrs[f.Key]
	switch f.Op {
	case "eq":
		return ok && equal(a, f.Value)
	case "ne":
		return !ok || !equal(a, f.Value)
	case "in", "nin":
		in := false
		if ok {
			for _, e := range f.Value.([]any) {
				if equal(a, e) {
					in = true
					break
				}
			}
		}
		return in == (f.Op == "in")
	}
	if !ok {
		return false
	}
	c, comparable := compare(a, f.Value)
	if !comparable {
		return false
	}
	switch f.Op {
	case "gt":
		return c > 0
	case "gte":
		return c >= 0
	case "lt":
		return c < 0
	default: // lte
		return c <= 0
	}
}

// equal compares two attribute values of the same type.
func equal(a, b any) bool {
	switch x := a.(type) {
	case string:
		y, ok := b.(string)
		return ok && x == y
	case float64:
		y, ok := b.(float64)
		return ok && x == y
	case bool:
		y, ok := b.(bool)
		return ok && x == y
	}
	return false
}

// compare orders two numbers or two strings; comparable is false for
// any other pair.
func compare(a, b any) (c int, comparable bool) {
	switch x := a.(type) {
	case string:
		y, ok := b.(string)
		if !ok {
			return 0, false
		}
		return strings.Compare(x, y), true
	case float64:
		y, ok := b.(float64)
		if !ok {
			return 0, false
		}
		switch {
		case x < y:
			return -1, true
		case x > y:
			return 1, true
		}
		return 0, true
	}
	return 0, false
}

func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
