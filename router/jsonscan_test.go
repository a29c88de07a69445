package router

import (
	"bytes"
	"encoding/json"
	"testing"
	"unicode/utf8"
)

// member is a top-level key and its exact value bytes.
type member struct{ key, value string }

func members(t testing.TB, body []byte) ([]member, bool) {
	t.Helper()
	fields, ok := topLevel(body)
	if !ok {
		return nil, false
	}
	out := make([]member, len(fields))
	for i, f := range fields {
		out[i] = member{f.key, string(body[f.start:f.end])}
	}
	return out, true
}

var topLevelTests = []struct {
	name string
	body string
	want []member // nil with ok false means not an object
	ok   bool
}{
	{"empty object", `{}`, []member{}, true},
	{"empty object with space", " {\n\t} ", []member{}, true},
	{"scalars", `{"a":1,"b":true,"c":null,"d":-1.5e3}`, []member{{"a", "1"}, {"b", "true"}, {"c", "null"}, {"d", "-1.5e3"}}, true},
	{"whitespace everywhere", " { \"a\" :\n 1 ,\r\n\t\"b\"\t:\t\"x\" } ", []member{{"a", "1"}, {"b", `"x"`}}, true},
	{"nested objects and arrays", `{"m":[{"role":"user","content":"}"}],"o":{"a":{"b":[1,{"c":"]"}]}}}`,
		[]member{{"m", `[{"role":"user","content":"}"}]`}, {"o", `{"a":{"b":[1,{"c":"]"}]}}`}}, true},
	{"escaped quote in value", `{"a":"say \"hi\"","b":2}`, []member{{"a", `"say \"hi\""`}, {"b", "2"}}, true},
	{"escaped backslash before quote", `{"a":"c:\\","b":"\\\""}`, []member{{"a", `"c:\\"`}, {"b", `"\\\""`}}, true},
	{"escaped key", `{"mo\u0064el":"x","a\"b":1}`, []member{{"model", `"x"`}, {`a"b`, "1"}}, true},
	{"braces inside strings", `{"a":"{[","b":"]}"}`, []member{{"a", `"{["`}, {"b", `"]}"`}}, true},
	{"unicode", `{"é":"日本","b":"\ud83d\ude00"}`, []member{{"é", `"日本"`}, {"b", `"\ud83d\ude00"`}}, true},
	{"duplicate keys kept in order", `{"a":1,"a":2}`, []member{{"a", "1"}, {"a", "2"}}, true},
	{"array", `[1,2]`, nil, false},
	{"string", `"x"`, nil, false},
	{"number", `1`, nil, false},
	{"empty", ``, nil, false},
	{"truncated", `{"a":1`, nil, false},
	{"unterminated string", `{"a":"x}`, nil, false},
}

func TestTopLevel(t *testing.T) {
	for _, tc := range topLevelTests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := members(t, []byte(tc.body))
			if ok != tc.ok {
				t.Fatalf("topLevel(%q) ok = %v; want %v", tc.body, ok, tc.ok)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("topLevel(%q) = %q; want %q", tc.body, got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Errorf("topLevel(%q)[%d] = %q; want %q", tc.body, i, got[i], tc.want[i])
				}
			}
		})
	}
}

var setFieldTests = []struct {
	name, body, key, value, want string
}{
	{"replace string", `{"model":"a","messages":[]}`, "model", `"b"`, `{"model":"b","messages":[]}`},
	{"replace keeps spacing", "{ \"model\" : \"a\" ,\n \"x\":1 }", "model", `"gpt-4o"`, "{ \"model\" : \"gpt-4o\" ,\n \"x\":1 }"},
	{"replace object with scalar", `{"s":{"a":[1,2,{"b":"}"}]},"t":1}`, "s", `null`, `{"s":null,"t":1}`},
	{"replace last member", `{"a":1,"b":2}`, "b", `[3]`, `{"a":1,"b":[3]}`},
	{"replace escaped key", `{"mo\u0064el":"a"}`, "model", `"b"`, `{"mo\u0064el":"b"}`},
	{"replace first duplicate", `{"a":1,"a":2}`, "a", `3`, `{"a":3,"a":2}`},
	{"append to empty object", `{}`, "a", `1`, `{"a":1}`},
	{"append to empty object with space", `{ }`, "a", `1`, `{ "a":1}`},
	{"append missing key", `{"a":1}`, "stream_options", `{"include_usage":true}`, `{"a":1,"stream_options":{"include_usage":true}}`},
	{"append after trailing space", "{\"a\":1 }\n", "b", `2`, "{\"a\":1 ,\"b\":2}\n"},
	{"append key that needs escaping", `{"a":1}`, `q"k`, `2`, `{"a":1,"q\"k":2}`},
	{"value with brace in string", `{"a":"}"}`, "b", `"}"`, `{"a":"}","b":"}"}`},
	{"not an object is returned as is", `[1]`, "a", `1`, `[1]`},
}

func TestSetField(t *testing.T) {
	for _, tc := range setFieldTests {
		t.Run(tc.name, func(t *testing.T) {
			got := string(SetField([]byte(tc.body), tc.key, []byte(tc.value)))
			if got != tc.want {
				t.Errorf("SetField(%q, %q, %s) = %q; want %q", tc.body, tc.key, tc.value, got, tc.want)
			}
			if json.Valid([]byte(tc.body)) && !json.Valid([]byte(got)) {
				t.Errorf("SetField(%q, %q, %s) = %q: not valid JSON", tc.body, tc.key, tc.value, got)
			}
		})
	}
}

func TestSetFieldDoesNotAliasInput(t *testing.T) {
	body := []byte(`{"a":1,"b":2}`)
	orig := string(body)
	out := SetField(body, "a", []byte(`100`))
	out[1] = 'X'
	if string(body) != orig {
		t.Errorf("SetField changed its input to %q; want %q", body, orig)
	}
}

func TestAppendJSONString(t *testing.T) {
	for _, s := range []string{"", "gpt-4o", `a"b`, `c:\`, "tab\tnl\n", "é日本", "\x00\x1f", "<&>"} {
		var got string
		q := appendJSONString(nil, s)
		if err := json.Unmarshal(q, &got); err != nil || got != s {
			t.Errorf("appendJSONString(%q) = %s, decodes to %q (%v); want %q", s, q, got, err, s)
		}
	}
}

// FuzzSetField checks that SetField never panics and, for a valid JSON object
// and value, yields valid JSON whose first member named key holds the new
// value while every other member keeps its exact bytes and order.
func FuzzSetField(f *testing.F) {
	for _, tc := range setFieldTests {
		f.Add([]byte(tc.body), tc.key, []byte(tc.value))
	}
	for _, tc := range topLevelTests {
		f.Add([]byte(tc.body), "model", []byte(`"m"`))
	}
	f.Fuzz(func(t *testing.T, body []byte, key string, value []byte) {
		out := SetField(body, key, value)
		if !json.Valid(body) || !json.Valid(value) || !utf8.ValidString(key) {
			return // JSON text is UTF-8: an invalid key is written with U+FFFD
		}
		before, ok := members(t, body)
		if !ok {
			if !bytes.Equal(out, body) {
				t.Fatalf("SetField(%q) on a non-object = %q; want it unchanged", body, out)
			}
			return
		}
		if !json.Valid(out) {
			t.Fatalf("SetField(%q, %q, %q) = %q: not valid JSON", body, key, value, out)
		}
		after, ok := members(t, out)
		if !ok {
			t.Fatalf("SetField(%q, %q, %q) = %q: not an object", body, key, value, out)
		}
		want := append([]member(nil), before...)
		v := string(trimJSONSpace(value))
		replaced := false
		for i := range want {
			if want[i].key == key {
				want[i].value, replaced = v, true
				break
			}
		}
		if !replaced {
			want = append(want, member{key, v})
		}
		if len(after) != len(want) {
			t.Fatalf("SetField(%q, %q, %q) members = %q; want %q", body, key, value, after, want)
		}
		for i := range want {
			if after[i] != want[i] {
				t.Fatalf("SetField(%q, %q, %q) member %d = %q; want %q", body, key, value, i, after[i], want[i])
			}
		}
	})
}

func trimJSONSpace(b []byte) []byte {
	return bytes.Trim(b, " \t\r\n")
}

func TestDeleteField(t *testing.T) {
	for _, tc := range []struct{ name, in, key, want string }{
		{"first", `{"conversation":"c","model":"m"}`, "conversation", `{"model":"m"}`},
		{"last", `{"model":"m", "conversation" : {"id":"c"}}`, "conversation", `{"model":"m"}`},
		{"only", `{"conversation":"c"}`, "conversation", `{}`},
		{"absent", `{"model": "m"}`, "conversation", `{"model": "m"}`},
		{"escaped key", `{"conv\u0065rsation":"c","n":1}`, "conversation", `{"n":1}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := string(DeleteField([]byte(tc.in), tc.key)); got != tc.want {
				t.Errorf("DeleteField(%s) = %s; want %s", tc.in, got, tc.want)
			}
		})
	}
}
