package postgres

import (
	"strconv"
	"strings"

	"llmproxy/vectorstore"
)

// filterSQL is f as a SQL condition on the attributes in documents'
// metadata (alias d), with its values appended to args as parameters. It
// means what vectorstore.Filter.Match means: values compare by JSON type,
// numbers numerically, strings bytewise (COLLATE "C"); a missing key or a
// value of another type fails every comparison but ne and nin. CASE keeps
// a cast from ever seeing a value of the wrong type.
func filterSQL(f *vectorstore.Filter, args *[]any) string {
	if f == nil {
		return "true"
	}
	arg := func(v any) string {
		*args = append(*args, v)
		return "$" + strconv.Itoa(len(*args))
	}
	switch f.Op {
	case "and", "or":
		parts := make([]string, len(f.Filters))
		for i, c := range f.Filters {
			parts[i] = filterSQL(c, args)
		}
		return "(" + strings.Join(parts, " "+strings.ToUpper(f.Op)+" ") + ")"
	}
	a := "(d.metadata->'attributes'->" + arg(f.Key) + "::text)"
	eq := func(v any) string {
		switch x := v.(type) {
		case string:
			return "COALESCE(" + a + " = to_jsonb(" + arg(x) + "::text), false)"
		case float64:
			return "COALESCE(" + a + " = to_jsonb(" + arg(x) + "::float8), false)"
		case bool:
			return "COALESCE(" + a + " = to_jsonb(" + arg(x) + "::boolean), false)"
		}
		return "false"
	}
	switch f.Op {
	case "eq":
		return eq(f.Value)
	case "ne":
		return "NOT " + eq(f.Value)
	case "in", "nin":
		list := f.Value.([]any)
		parts := make([]string, len(list))
		for i, v := range list {
			parts[i] = eq(v)
		}
		in := "(" + strings.Join(parts, " OR ") + ")"
		if f.Op == "nin" {
			return "NOT " + in
		}
		return in
	}
	op := map[string]string{"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}[f.Op]
	switch x := f.Value.(type) {
	case float64:
		return "(CASE WHEN jsonb_typeof(" + a + ") = 'number' THEN (" + a + " #>> '{}')::float8 " + op + " " + arg(x) + "::float8 ELSE false END)"
	case string:
		return "(CASE WHEN jsonb_typeof(" + a + ") = 'string' THEN (" + a + " #>> '{}') COLLATE \"C\" " + op + " " + arg(x) + "::text COLLATE \"C\" ELSE false END)"
	}
	return "false"
}
