package gemini

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
)

// schemaKeys are the members of Gemini's Schema object (an OpenAPI 3.0
// subset, "Caching > Schema" in the API reference). Everything else in a
// JSON Schema (additionalProperties, $schema, $id, strict, examples,
// patternProperties, ...) makes generateContent answer 400 "Unknown name",
// so it is dropped.
var schemaKeys = map[string]bool{
	"type": true, "format": true, "title": true, "description": true, "nullable": true,
	"enum": true, "maxItems": true, "minItems": true, "required": true,
	"minProperties": true, "maxProperties": true, "minLength": true, "maxLength": true,
	"pattern": true, "example": true, "propertyOrdering": true, "default": true,
	"minimum": true, "maximum": true,
}

// maxRefDepth bounds $ref inlining, so a recursive schema ends.
const maxRefDepth = 8

// cleanParameters is a tool's parameters schema as Gemini takes it. An
// object with no properties is dropped altogether: Gemini rejects
// "properties: should be non-empty for OBJECT type", and a function without
// parameters needs none.
func cleanParameters(raw json.RawMessage) (json.RawMessage, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	out, err := cleanSchemaJSON(raw)
	if err != nil || string(out) == `{"type":"object"}` || string(out) == "{}" {
		return nil, err
	}
	return out, nil
}

// cleanSchemaJSON rewrites a JSON Schema for Gemini: unknown keys dropped,
// local $refs (#/$defs/..., #/definitions/...) inlined, oneOf read as
// anyOf, "const" as a one-value enum, and a type list such as
// ["string","null"] as type "string" with nullable. Output keys are sorted,
// so the result is deterministic.
func cleanSchemaJSON(raw json.RawMessage) (json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var root any
	if err := dec.Decode(&root); err != nil {
		return nil, err
	}
	m, ok := root.(map[string]any)
	if !ok {
		return nil, errors.New("a schema must be a JSON object")
	}
	return marshal(cleanSchema(m, m, 0))
}

func cleanSchema(v any, root map[string]any, depth int) any {
	m, ok := v.(map[string]any)
	if !ok {
		return v
	}
	if ref, ok := m["$ref"].(string); ok {
		if depth >= maxRefDepth {
			return map[string]any{"type": "object"}
		}
		if target := resolveRef(root, ref); target != nil {
			return cleanSchema(target, root, depth+1)
		}
	}
	out := make(map[string]any, len(m))
	for k, val := range m {
		switch k {
		case "properties":
			props, _ := val.(map[string]any)
			if len(props) == 0 {
				continue
			}
			cp := make(map[string]any, len(props))
			for name, s := range props {
				cp[name] = cleanSchema(s, root, depth)
			}
			out[k] = cp
		case "items":
			out[k] = cleanSchema(val, root, depth)
		case "anyOf", "oneOf":
			list, _ := val.([]any)
			cl := make([]any, 0, len(list))
			for _, s := range list {
				cl = append(cl, cleanSchema(s, root, depth))
			}
			out["anyOf"] = cl
		case "type":
			setType(out, val)
		case "const":
			if _, has := m["enum"]; !has {
				out["enum"] = []any{val}
			}
			if _, isStr := val.(string); isStr && m["type"] == nil {
				out["type"] = "string" // Gemini allows enum only on strings
			}
		default:
			if schemaKeys[k] {
				out[k] = val
			}
		}
	}
	keepRequired(out)
	return out
}

// setType maps "type", which JSON Schema allows to be a list.
func setType(out map[string]any, val any) {
	list, ok := val.([]any)
	if !ok {
		out["type"] = val
		return
	}
	for _, t := range list {
		if t == "null" {
			out["nullable"] = true
		} else if _, set := out["type"]; !set {
			out["type"] = t
		}
	}
}

// keepRequired drops required names that are not properties: Gemini
// rejects them ("property is not defined").
func keepRequired(out map[string]any) {
	req, ok := out["required"].([]any)
	if !ok {
		return
	}
	props, _ := out["properties"].(map[string]any)
	kept := make([]any, 0, len(req))
	for _, r := range req {
		if name, ok := r.(string); ok && props[name] != nil {
			kept = append(kept, r)
		}
	}
	if len(kept) == 0 {
		delete(out, "required")
		return
	}
	out["required"] = kept
}

// resolveRef finds a local reference like "#/$defs/Address".
func resolveRef(root map[string]any, ref string) any {
	path, ok := strings.CutPrefix(ref, "#/")
	if !ok {
		return nil
	}
	var cur any = root
	for _, seg := range strings.Split(path, "/") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		seg = strings.ReplaceAll(strings.ReplaceAll(seg, "~1", "/"), "~0", "~")
		cur = m[seg]
	}
	return cur
}
