package router

import (
	"bytes"
	"encoding/json"
	"strings"
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

// scanSeeds are the inputs where a validator most often parts ways with
// encoding/json.Valid. Each is also tried as a top-level member's value,
// inside an array and after trailing garbage by FuzzScanFields' seeding.
var scanSeeds = []string{
	``, ` `, "\t\r\n", `{}`, `[]`, `""`, `0`, `-0`, `-0.0e-0`, `1E+2`, `1e-2`, `123.456e789`,
	`01`, `-`, `-a`, `1.`, `.5`, `1e`, `1e+`, `+1`, `0x1`, `1.e2`, `00`, `-01`, `1 2`, `NaN`, `Infinity`,
	`true`, `false`, `null`, `tru`, `nul`, `True`, `truex`, `nulll`,
	`"\u0041"`, `"\u00e9\ud83d\ude00"`, `"\ud800"`, `"\udc00\ud800"`, `"\u12"`, `"\u123g"`, `"\U0041"`, `"\x"`, `"\'"`,
	`"\/\b\f\n\r\t\\\""`, "\"\x00\"", "\"\x1f\"", "\"\x7f\"", "\"\t\"", "\"\n\"", "\"\xff\xfe\"", "\"\xed\xa0\x80\"", "\"\xc3\"",
	"\"caf\xc3\xa9\"", `"abc`, `"abc\"`, `"\`,
	"\ufeff{}", "{}\x00", `{} x`, `{}}`, `{"a":1}}`, `[1]]`, `[1,]`, `[,1]`, `{,}`, `{"a":1,}`, `{"a" 1}`, `{"a":}`, `{a:1}`,
	`{'a':1}`, `{"a":1 "b":2}`, `[1 2]`, `{"a":[}`, `[{]}`, `{"a":{"b":[1,{"c":"]"}]}}`, `{"a":1,"a":2}`,
	" {\v} ", " {\f} ", "{\u00a0}", " [ 1 , 2 ] \n",
	`{"error":{"message":"x"},"model":"m","usage":{"prompt_tokens":1},"choices":[]}`,
	`{"mo\u0064el":"x","model":"y"}`, `{"a\"b":1}`, `{"":0,"\\":1}`,
	`[` + strings.Repeat(`{"a":[`, 40) + strings.Repeat(`]}`, 40) + `]`,
	strings.Repeat(`[`, maxScanDepth) + strings.Repeat(`]`, maxScanDepth),
	strings.Repeat(`[`, maxScanDepth+1) + strings.Repeat(`]`, maxScanDepth+1),
	`{"a":` + strings.Repeat(`[`, maxScanDepth-1) + strings.Repeat(`]`, maxScanDepth-1) + `}`,
	`{"a":` + strings.Repeat(`[`, maxScanDepth) + strings.Repeat(`]`, maxScanDepth) + `}`,
	strings.Repeat(`{"a":`, maxScanDepth) + `1` + strings.Repeat(`}`, maxScanDepth),
	strings.Repeat(`[`, 300) + strings.Repeat(`]`, 299),
}

// scanKeys are the members FuzzScanFields asks for: what the OpenAI
// adapter reads, an escaped name and the empty one.
var scanKeys = []string{"error", "model", "usage", "choices", `a"b`, "", "a"}

// checkScanFields fails unless ScanFields agrees with json.Valid on body
// and, for a valid body, hands back exactly TopField's value (the same
// bytes of body, not a copy) for every key.
func checkScanFields(t *testing.T, body []byte, keys []string) {
	t.Helper()
	vals := make([][]byte, len(keys))
	for i := range vals {
		vals[i] = []byte("stale")
	}
	ok := ScanFields(body, vals, keys...)
	if want := json.Valid(body); ok != want {
		t.Fatalf("ScanFields(%q) valid = %v; json.Valid says %v", body, ok, want)
	}
	for i, k := range keys {
		want := TopField(body, k)
		if !ok {
			want = nil
		}
		got := vals[i]
		if (got == nil) != (want == nil) || !bytes.Equal(got, want) ||
			(len(got) > 0 && &got[0] != &want[0]) {
			t.Fatalf("ScanFields(%q) %q = %q; TopField says %q", body, k, got, want)
		}
	}
}

func TestScanFields(t *testing.T) {
	for _, s := range scanSeeds {
		for _, body := range scanVariants(s) {
			checkScanFields(t, []byte(body), scanKeys)
		}
	}
}

// TestScanFieldsEveryByte tries each byte wherever a rule looks at one: in a
// string, after a backslash, as a value, after a number, a literal or a
// key, in a \u escape and as whitespace.
func TestScanFieldsEveryByte(t *testing.T) {
	for c := range 256 {
		b := string([]byte{byte(c)}) // the byte itself, not its UTF-8 encoding
		for _, tmpl := range []string{`"#"`, `"a#b"`, `"\#"`, `"\#n"`, `"\u00#0"`, `#`, `[#]`, `1#`, `0#1`, `-#`, `1.#`, `1e#`, `true#`,
			`{"a"#:1}`, `{"a":1#}`, `{#}`, `[1#2]`, `{"a":#}`} {
			checkScanFields(t, []byte(strings.ReplaceAll(tmpl, "#", b)), scanKeys)
		}
	}
}

// scanVariants puts a seed where each rule applies: alone, as a top-level
// member's value (read and not read), inside an array, with trailing
// garbage and cut short.
func scanVariants(s string) []string {
	out := []string{s, `{"usage":` + s + `}`, `{"x":` + s + `,"model":"m"}`, `[` + s + `]`, s + ` x`, s + `,`, "\n" + s + "\t"}
	for n := 1; n < len(s) && n < 8; n++ {
		out = append(out, s[:len(s)-n])
	}
	return out
}

// TestScanFieldsDuplicates: the first member wins, as in TopField, also
// when one is written with escapes or when a key is asked for twice.
func TestScanFieldsDuplicates(t *testing.T) {
	body := []byte(`{"model":"a","mo\u0064el":"b","model":"c","x":{"model":"d"}}`)
	var v [3][]byte
	if !ScanFields(body, v[:], "model", "model", "x") {
		t.Fatal("ScanFields rejected a valid body")
	}
	if string(v[0]) != `"a"` || string(v[1]) != `"a"` || string(v[2]) != `{"model":"d"}` {
		t.Errorf("ScanFields = %q; want \"a\", \"a\" and the x object", v)
	}
	body = []byte(`{"mo\u0064el":"b","model":"c"}`)
	if !ScanFields(body, v[:1], "model") || string(v[0]) != `"b"` {
		t.Errorf("ScanFields(%s) model = %q; want the escaped first member", body, v[0])
	}
}

// TestScanFieldsAllocs: a chat.completion.chunk, even one nested 250 deep,
// costs no allocation.
func TestScanFieldsAllocs(t *testing.T) {
	chunk := []byte(`{"id":"c","object":"chat.completion.chunk","model":"gpt-4o","choices":[{"index":0,"delta":{"content":"hi \"there\" \u00e9"}}],"usage":{"prompt_tokens":1}}`)
	deep := []byte(`{"a":` + strings.Repeat(`[`, 250) + strings.Repeat(`]`, 250) + `}`)
	for _, body := range [][]byte{chunk, deep} {
		var v [4][]byte
		if n := testing.AllocsPerRun(100, func() {
			if !ScanFields(body, v[:], "error", "model", "usage", "choices") {
				t.Fatal("rejected")
			}
		}); n != 0 {
			t.Errorf("ScanFields(%.40q...) allocates %v times; want 0", body, n)
		}
	}
}

// FuzzScanFields: ScanFields accepts exactly what json.Valid accepts and
// reads exactly what TopField reads.
func FuzzScanFields(f *testing.F) {
	for _, s := range scanSeeds {
		for _, body := range scanVariants(s) {
			f.Add([]byte(body), "model")
		}
	}
	for _, tc := range topLevelTests {
		f.Add([]byte(tc.body), "a")
	}
	f.Fuzz(func(t *testing.T, body []byte, key string) {
		checkScanFields(t, body, append([]string{key}, scanKeys...))
	})
}
