package main

import (
	"reflect"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/parser"
)

var expandEnv = map[string]string{"KEY": "sk-1", "EMPTY": "", "PORT": "9090", "ML": "a: b\n- c # d"}

// expandCases seed FuzzExpand too.
var expandCases = []struct {
	name, in, want, problem string
}{
	{"no dollar", "plain text: {a}", "plain text: {a}", ""},
	{"set", "${KEY}", "sk-1", ""},
	{"inside text", "Bearer ${KEY}!", "Bearer sk-1!", ""},
	{"two", "${KEY}:${PORT}", "sk-1:9090", ""},
	{"default unset", "${NOPE:-fallback}", "fallback", ""},
	{"default empty var", "${EMPTY:-fallback}", "fallback", ""},
	{"default set", "${KEY:-fallback}", "sk-1", ""},
	{"empty default", "${NOPE:-}", "", ""},
	{"default with colon", "${NOPE:-http://x:1/}", "http://x:1/", ""},
	{"set but empty", "${EMPTY}", "", ""},
	{"escape", "$${KEY}", "${KEY}", ""},
	{"double escape", "a$$$$b", "a$$b", ""},
	{"lone dollar", "$2a$10$abc $ end$", "$2a$10$abc $ end$", ""},
	{"value not rescanned", "${ML}", "a: b\n- c # d", ""},
	{"unset", "x ${NOPE} y", "x  y", `environment variable "NOPE" is not set`},
	{"unterminated", "a ${KEY", "a ${KEY", `unterminated "${"`},
	{"empty name", "${}", "", `"${}" is not a valid reference`},
	{"bad name", "${1A}", "", `"${1A}" is not a valid reference`},
	{"shell form unsupported", "${A-b}", "", `"${A-b}" is not a valid reference`},
}

func TestExpandString(t *testing.T) {
	for _, tc := range expandCases {
		t.Run(tc.name, func(t *testing.T) {
			got, problems := expandString(tc.in, cfgEnv(expandEnv))
			if got != tc.want {
				t.Errorf("expandString(%q) = %q; want %q", tc.in, got, tc.want)
			}
			switch {
			case tc.problem == "" && len(problems) > 0:
				t.Errorf("expandString(%q) problems = %v; want none", tc.in, problems)
			case tc.problem != "" && (len(problems) != 1 || !strings.Contains(problems[0].msg, tc.problem)):
				t.Errorf("expandString(%q) problems = %v; want one containing %q", tc.in, problems, tc.problem)
			}
		})
	}
}

const expandBase = `
providers:
  - {name: demo, type: demo}
models:
  - name: m
    deployments: [{provider: demo, model: m}]
`

func TestParseConfigExpansion(t *testing.T) {
	env := map[string]string{
		"KEY":   "sk-env",
		"INJ":   "x\nmodels: []\nteams: [{name: evil, api_keys: [k]}]",
		"COLON": "a: b",
		"BYTES": "2048",
		"LEVEL": "debug",
	}
	c := mustParseConfig(t, `
server:
  max_body_bytes: ${BYTES}
  log_level: ${LEVEL:-info}
  master_key: ${INJ}
  data_dir: "${COLON}"
  listen: ${LISTEN:-127.0.0.1:7070}
  drain_timeout: ${DRAIN:-5s}
teams:
  - name: t # ${NOT_EXPANDED_IN_COMMENTS}
    api_keys:
      - ${KEY}
      - '${MISSING:-sk-default}'
      - $${KEY}
`+expandBase, env)
	s := c.Server
	if s.MaxBodyBytes != 2048 || s.LogLevel != "debug" || s.Listen != "127.0.0.1:7070" || s.DrainTimeout.String() != "5s" {
		t.Errorf("server = %+v", s)
	}
	// A value can never add structure: INJ stays one scalar.
	if s.MasterKey.Value() != env["INJ"] || s.DataDir != "a: b" || len(c.Teams) != 1 || len(c.Models) != 1 {
		t.Errorf("injection: master_key %q, data_dir %q, %d teams, %d models", s.MasterKey.Value(), s.DataDir, len(c.Teams), len(c.Models))
	}
	want := []Secret{"sk-env", "sk-default", "${KEY}"}
	if !reflect.DeepEqual(c.Teams[0].APIKeys, want) {
		t.Errorf("api_keys = %q; want %q", c.Teams[0].APIKeys, want)
	}
}

func TestParseConfigUnsetVariables(t *testing.T) {
	src := `server:
  master_key: ${MASTER}
providers:
  - {name: demo, type: demo}
  - name: o
    type: openai
    api_key: "${OPENAI_KEY}"
models:
  - name: m
    deployments: [{provider: demo, model: m}]
teams:
  - name: search
    api_keys: ["${SEARCH_KEY}"]
`
	_, err := ParseConfig([]byte(src), cfgEnv(nil))
	if err == nil {
		t.Fatal("ParseConfig = nil error; want unset variables")
	}
	for _, want := range []string{
		`line 2: environment variable "MASTER" is not set`,
		`line 7: environment variable "OPENAI_KEY" is not set`,
		`line 13: environment variable "SEARCH_KEY" is not set`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error\n%v\nwants %q", err, want)
		}
	}
	// Block scalars report the line the reference is on.
	_, err = ParseConfig([]byte("server:\n  data_dir: |\n    one\n    ${DIR}\n"), cfgEnv(nil))
	if err == nil || !strings.Contains(err.Error(), `line 4: environment variable "DIR" is not set`) {
		t.Errorf("block scalar: error = %v; want line 4", err)
	}
}

// FuzzExpand checks that expansion never panics, leaves text without "$"
// alone, and that no variable value can change a document's structure.
func FuzzExpand(f *testing.F) {
	for _, tc := range expandCases {
		f.Add(tc.in, expandEnv["ML"])
	}
	f.Add("k: v", "")
	f.Add("{a: [b, c]}", "true")
	f.Fuzz(func(t *testing.T, text, value string) {
		lookup := cfgEnv(map[string]string{"V": value, "KEY": "sk"})
		got, problems := expandString(text, lookup)
		if !strings.Contains(text, "$") && (got != text || problems != nil) {
			t.Fatalf("expandString(%q) = %q, %v; want it unchanged", text, got, problems)
		}
		if f, err := parser.ParseBytes([]byte(text), 0); err == nil {
			for _, d := range f.Docs {
				_, _ = expandTree(d, lookup) // must not panic
			}
		}
		for _, doc := range []string{"k: ${V}\n", "k: \"${V}\"\n", "- [\"${V}\", x]\n", "k: |\n  ${V}\n"} {
			f, err := parser.ParseBytes([]byte(doc), 0)
			if err != nil {
				t.Fatalf("parse %q: %v", doc, err)
			}
			body, err := expandTree(f.Docs[0].Body, lookup)
			if err != nil {
				t.Fatalf("expand %q: %v", doc, err)
			}
			var v any
			if err := yaml.NodeToValue(body, &v); err != nil {
				t.Fatalf("decode %q with V=%q: %v", doc, value, err)
			}
			if got := scalarOf(v); !sameScalar(got, value, strings.HasPrefix(doc, "k: $")) {
				t.Fatalf("%q with V=%q decoded to %#v; want the value as one scalar", doc, value, v)
			}
		}
	})
}

// scalarOf digs the one scalar out of {k: x}, [[x, "x"]] or x.
func scalarOf(v any) any {
	switch v := v.(type) {
	case map[string]any:
		if len(v) == 1 {
			return v["k"]
		}
	case []any:
		if len(v) == 1 {
			if inner, ok := v[0].([]any); ok && len(inner) == 2 && inner[1] == "x" {
				return inner[0]
			}
		}
	}
	return struct{}{} // not the shape we wrote: structure was injected
}

func sameScalar(got any, value string, plain bool) bool {
	if s, ok := got.(string); ok {
		// A block scalar (|) keeps one trailing newline.
		return s == value || s == value+"\n" || strings.TrimRight(s, "\n") == strings.TrimRight(value, "\n")
	}
	switch {
	case plain && value == "":
		return got == nil
	case plain && (value == "true" || value == "false"):
		return got == (value == "true")
	}
	return false
}
