package budget

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/tiktoken-go/tokenizer"

	"llmproxy/router"
)

// promptCorpus is every body shape the count must agree with the struct
// decode on: the prompt bound's table, repeated keys (arrays decoded over
// arrays, structs merged, null keeping a field), wrong types at every
// level, keys matched by folding, escapes of every kind, invalid UTF-8,
// and JSON that is not valid.
var promptCorpus = []string{
	`{"model":"m","messages":[{"role":"system","content":"You are terse."},{"role":"user","content":"Say hello."}]}`,
	`{"model":"m","messages":[{"role":"user","content":"你好，世界！请用一句话介绍一下你自己。日本語のテキストも。한국어도"}]}`,
	`{"model":"m","messages":[{"role":"user","content":"👩‍👩‍👧‍👦🏳️‍🌈🇯🇵 ok 😀😀😀"}]}`,
	`{"model":"m","messages":[{"role":"user","content":"line\nbreak \"quoted\" \\ back \u00e9\u4f60\ud83d\ude00 \t tab \/ slash"}]}`,
	`{"model":"m","messages":[{"Role":"user","CONTENT":"shouted keys","n\u0061me":"bob"}]}`,
	`{"model":"m","messages":[{"role":"user","name":"alice","content":"hi"},{"role":"tool","tool_call_id":"call_123","content":"{\"temp\":21}"}]}`,
	`{"model":"m","messages":[{"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"東京\",\"unit\":\"c\"}"}},null]}]}`,
	`{"model":"m","messages":[{"role":"user","content":"weather?"}],"tools":[{"type":"function","function":{"name":"get_weather","description":"天気を調べる","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}]}`,
	`{"model":"m","messages":[{"role":"user","content":"x"}],"functions":[{"name":"f","parameters":{}}, null]}`,
	`{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"what is this?"},{"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA","detail":"low"}},{"type":"refusal","refusal":"no"},{"type":"input_audio"},null]}]}`,
	`{"model":"m","messages":[{"role":"user","content":[{"type":"te\u0078t","text":"hello there"},{"type":"input_image","image_url":{}}]}]}`,
	`{"model":"m","messages":[{"role":"user","content":[{"type":"file","file":{"file_data":"data:application/pdf;base64,JVBERi0xLjQK\/\/AAAA","filename":"a\u00e9.pdf"}},{"type":"file","file":{"file_id":"file-abc","filename":"b.pdf"}},{"type":"file","file":{"file_data":""}},{"type":"file","file":null},{"type":"file"},{"type":"input_audio","input_audio":{"data":"UklGRiQAAABXQVZF","format":"wav"}},{"type":"input_audio","input_audio":{"data":null}}]}]}`,
	`{"model":"m","messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_schema","json_schema":{"name":"s","schema":{}}}}`,
	`{"model":"m","messages":[null,{"role":"user","content":"x"}]}`,
	`{"model":"m","messages":[{"role":"user","content":"a long first content","content":"b","name":"x","name":""}]}`,
	`{"model":"m","messages":[{"role":5,"content":{"a":"b"}}],"response_format":"json"}`,
	`{"model":"m","messages":[{"role":"user","content":{"text":"not a list"}}]}`,
	`{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":7}]}]}`,
	"{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"bad \xff\xfe\xfd bytes \xc3\"}],\"tools\":[{\"d\":\"\xff\xff\"}]}",
	`{"model":"m","messages":[{"role":"user","content":"<|endoftext|><|im_start|>x<|im_end|>"}]}`,
	`{"model":"m"}`,
	`[1,2,3]`,
	`null`,
	` null `,
	`"null"`,
	`12`,
	`true`,
	`{}`,
	// Repeated arrays decode into the elements already there.
	`{"messages":[{"role":"user","name":"keeps","content":"first"},{"role":"assistant","content":"second"},{"role":"tool","tool_call_id":"t1"}],"messages":[{"content":"over the first"}],"messages":[{"role":"a"},{"role":"b"},{"role":"c"},{"role":"d"}]}`,
	`{"messages":[{"role":"user","content":"a"}],"messages":null,"messages":[{"content":"fresh"}]}`,
	`{"messages":[{"role":"user","content":"a"}],"messages":[],"messages":[{"content":"fresh"}]}`,
	`{"messages":[{"role":"user","content":"a"}],"Messages":[{"role":null,"name":"n"}],"MESSAGES":[null,null]}`,
	`{"messages":[{"role":"assistant","tool_calls":[{"function":{"name":"f","arguments":"{}"}},{"function":{"name":"g"}}],"tool_calls":[{"function":{"arguments":"[1]"}}],"tool_calls":[null,{"function":{"arguments":"x"}},{}]}]}`,
	`{"messages":[{"tool_calls":[{"function":{"name":"f"},"function":{"arguments":"a"},"function":null}]},{"tool_calls":[{"function":{"name":"f"}}],"tool_calls":null,"tool_calls":[{}]},{"tool_calls":[{"function":{"name":"f"}}],"tool_calls":[],"tool_calls":[{}]}]}`,
	`{"messages":[{"role":"user","content":[{"type":"text","text":"a","text":null,"type":null}]}]}`,
	`{"messages":[{"content":[{"type":"image_url","image_url":{"detail":"low"},"image_url":{"url":"x"}},{"type":"image_url","image_url":{"detail":"low"},"image_url":null},{"type":"image_url","image_url":{"detail":"high"}},{"type":"image_url","image_url":{"detail":"LOW"}}]}]}`,
	`{"messages":[{"content":[{"type":"file","file":{"file_data":"data:x;base64,AAAA"},"file":{"filename":"n.txt"}},{"type":"file","file":{"file_data":"nocomma"}},{"type":"file","file":{"file_data":"data:nocomma"}},{"type":"file","file":{"file_data":"data:,"}},{"type":"file","file":{"file_data":"\u0041\/\ud800\"\\"}}]}]}`,
	"{\"messages\":[{\"content\":[{\"type\":\"file\",\"file\":{\"file_data\":\"data:a,\xff\xfe\",\"filename\":\"\xff.pdf\"}},{\"type\":\"input_audio\",\"input_audio\":{\"data\":\"\xe2\x82\"}}]}]}",
	// Wrong types: the body or, for content, the content counts by size.
	`{"messages":{"role":"user"}}`,
	`{"messages":"hi"}`,
	`{"messages":[1]}`,
	`{"messages":[[]]}`,
	`{"messages":[{"name":true}]}`,
	`{"messages":[{"tool_call_id":1}]}`,
	`{"messages":[{"tool_calls":{}}]}`,
	`{"messages":[{"tool_calls":["x"]}]}`,
	`{"messages":[{"tool_calls":[{"function":"f"}]}]}`,
	`{"messages":[{"tool_calls":[{"function":{"name":1}}]}]}`,
	`{"messages":[{"tool_calls":[{"function":{"arguments":{}}}]}]}`,
	`{"messages":[{"tool_calls":[{"id":5,"type":[],"function":{"other":1}}]}]}`,
	`{"messages":[{"role":"user","content":"x"}],"tools":{}}`,
	`{"messages":[{"role":"user","content":"x"}],"tools":"t"}`,
	`{"messages":[{"role":"user","content":"x"}],"functions":5}`,
	`{"messages":[],"tools":[1,"two",null,true,{"a":[]}],"functions":[]}`,
	`{"messages":[],"tools":[{"a":1}],"tools":null,"functions":[{"b":2}]}`,
	`{"response_format":null,"messages":[]}`,
	`{"response_format":{"type":null,"json_schema":5}}`,
	`{"response_format":{"type":1}}`,
	`{"response_format":[]}`,
	`{"messages":[{"content":5}]}`,
	`{"messages":[{"content":true}]}`,
	`{"messages":[{"content":[1]}]}`,
	`{"messages":[{"content":[{"type":"text","text":"ok"},"str"]}]}`,
	`{"messages":[{"content":[{"type":"image_url","image_url":"u"}]}]}`,
	`{"messages":[{"content":[{"type":"image_url","image_url":{"detail":1}}]}]}`,
	`{"messages":[{"content":[{"type":"file","file":1}]}]}`,
	`{"messages":[{"content":[{"type":"file","file":{"file_data":1}}]}]}`,
	`{"messages":[{"content":[{"type":"input_audio","input_audio":[]}]}]}`,
	`{"messages":[{"content":[{"type":"input_audio","input_audio":{"data":false}}]}]}`,
	`{"messages":[{"content":[{"type":7}]}]}`,
	`{"messages":[{"content":[{"refusal":{}}]}]}`,
	`{"messages":[{"content":[{"type":"text","text":"a","url":5,"extra":{"x":[1,2]}}]}]}`,
	// Keys: folding (ſ is s, K is k), escapes, near misses.
	`{"meſſages":[{"role":"uſer","content":"folded key"}],"TOOLS":[{}]}`,
	`{"messages":[{"ROLE":"user","Content":"x","NAME":"n","Tool_Calls":[{"FUNCTION":{"NAME":"f","ARGUMENTS":"a"}}],"TOOL_CALL_ID":"id"}]}`,
	`{"messages":[{"content":[{"TYPE":"text","TEXT":"t"},{"Type":"file","FILE":{"FILE_DATA":"abc","FILENAME":"f"}},{"type":"image_url","IMAGE_URL":{"DETAIL":"low"}}]}]}`,
	`{"mess\u0061ges":[{"r\u006fle":"\u0075ser","c\u006fntent":"escaped keys"}]}`,
	`{"messages ":[{"role":"x"}],"message":[{"role":"y"}],"rôle":1}`,
	`{"messages":[{"r\u00f4le":5,"content\u0000":1}]}`,
	// Escapes and text.
	`{"messages":[{"role":"user","content":"\ud83d\ude00 \ud83d \ude00 \ud83d\u0041 \udc00\ud800 \u0000\u001f \b\f\n\r\t \"\\\/"}]}`,
	`{"messages":[{"role":"user","content":"\ud800\ud800\udc00","name":"\u0000"}]}`,
	`{"messages":[{"role":"user","name":"","tool_call_id":"","content":""}]}`,
	"{\"messages\":[{\"role\":\"\xffuser\",\"content\":\"\xed\xa0\x80 \xf4\x90\x80\x80 \xc0\xaf\x7f\"}]}",
	`{"messages":[{"role":"user","content":"DON'T SHOUT I'LL  \n\n  x\r\n  "}],"n":1e400,"big":-12345678901234567890.5e-7}`,
	" \t\r\n{ \"messages\" : [ { \"role\" : \"user\" , \"content\" : [ { \"type\" : \"text\" , \"text\" : \"spaced\" } ] } ] } \n",
	// Not valid JSON: counts by size.
	``,
	` `,
	`{`,
	`{"messages":[{"role":"user","content":"x"}]`,
	`{"messages":[{"role":"user","content":"x"}]}}`,
	`{"messages":[{"role":"user","content":"x"},]}`,
	`{"messages":[{"role":"user","content":"x"}],}`,
	`{"messages":[{"role":"user","content":"x"}]} x`,
	`{"messages":[{"role":"user","content":"tab	inside"}]}`,
	"{\"messages\":[{\"role\":\"user\",\"content\":\"nl\ninside\"}]}",
	`{"messages":[{"role":"user","content":"\x41"}]}`,
	`{"messages":[{"role":"user","content":"\u12"}]}`,
	`{"messages":[{"role":"user","content":"\u12g4"}]}`,
	`{"messages":[{"role":"user","content":"\'"}]}`,
	`{"n":01}`, `{"n":-}`, `{"n":1.}`, `{"n":.5}`, `{"n":1e}`, `{"n":+1}`, `{"n":-0.0e+5}`, `{"n":0}`, `{"n":1E-0}`,
	`{"n":tru}`, `{"n":truex}`, `{"n":nul}`, `{"n":falsey}`, `{"n":True}`,
	`{'messages':[]}`, `{messages:[]}`, `{"a" "b"}`, `{"a":}`, `{"a"}`, `[,]`, `[1 2]`, `{"a":1 "b":2}`,
	"\xef\xbb\xbf{}",
	strings.Repeat("[", 10000) + strings.Repeat("]", 10000),
	strings.Repeat("[", 10001) + strings.Repeat("]", 10001),
	`{"messages":[],"x":` + strings.Repeat("[", 9999) + strings.Repeat("]", 9999) + `}`,
	`{"messages":[],"x":` + strings.Repeat(`{"a":`, 9999) + "1" + strings.Repeat("}", 9999) + `}`,
	`{"messages":[],"x":` + strings.Repeat(`{"a":`, 10000) + "1" + strings.Repeat("}", 10000) + `}`,
}

// refCodecs are tiktoken-go's codecs, for the oracle.
func refCodecs(t testing.TB) map[string]tokenizer.Codec {
	out := map[string]tokenizer.Codec{}
	for _, m := range boundModels {
		cd, err := tokenizer.Get(encodingFor(m))
		if err != nil {
			t.Fatal(err)
		}
		out[m] = cd
	}
	return out
}

// checkPrompt compares exactPrompt with the struct decode, and router.ValidJSON
// with json.Valid.
func checkPrompt(t testing.TB, c *Counter, ref map[string]tokenizer.Codec, body []byte) {
	t.Helper()
	if got, want := router.ValidJSON(body), json.Valid(body); got != want {
		t.Fatalf("router.ValidJSON = %v, json.Valid = %v for %q", got, want, body)
	}
	for _, m := range boundModels {
		if got, want := c.Prompt(m, body), oldExactPrompt(ref[m], body); got != want {
			t.Fatalf("Prompt(%s) = %d, struct decode %d for %q", m, got, want, body)
		}
	}
}

func TestExactPromptMatchesDecode(t *testing.T) {
	c, ref := NewCounter(), refCodecs(t)
	for _, body := range promptCorpus {
		checkPrompt(t, c, ref, []byte(body))
	}
}

// randPromptBody draws a body of the prompt's shape where each value has
// the wrong type now and then, keys repeat, change case or fold, and
// strings carry escapes and invalid UTF-8.
func randPromptBody(r *rand.Rand) string {
	var b strings.Builder
	str := func() {
		switch r.IntN(8) {
		case 0:
			b.WriteString(`"` + []string{"text", "refusal", "image_url", "input_image", "file", "input_audio", "low", "user", "te\\u0078t", "lo\\u0077", "data:a;base64,QUJD\\/\\/==", "", "\\ud83d\\ude00", "\\ud800x", "\xff\xfe", "nocomma"}[r.IntN(16)] + `"`)
		default:
			q, _ := json.Marshal(randSplitText(r))
			s := string(q)
			if r.IntN(5) == 0 { // raw non-ASCII and invalid bytes instead of escapes
				s = strings.NewReplacer(`\ufffd`, "\xff", `\u003c`, "<", `\u003e`, ">", `\u0026`, "&").Replace(s)
			}
			b.WriteString(s)
		}
	}
	var value func(depth int, shape string)
	key := func(k string) {
		switch r.IntN(12) {
		case 0:
			k = strings.ToUpper(k)
		case 1:
			k = strings.Replace(k, "s", "ſ", 1)
		case 2:
			k = strings.Replace(k, "e", `\u0065`, 1)
		case 3:
			k += "x"
		}
		b.WriteString(`"` + k + `":`)
	}
	object := func(depth int, fields map[string]string) {
		b.WriteByte('{')
		n := 0
		for range r.IntN(5) {
			names := make([]string, 0, len(fields)+1)
			for k := range fields {
				names = append(names, k)
			}
			names = append(names, "other")
			k := names[r.IntN(len(names))]
			if n > 0 {
				b.WriteByte(',')
			}
			n++
			key(k)
			value(depth+1, fields[k])
		}
		b.WriteByte('}')
	}
	array := func(depth int, elem string) {
		b.WriteByte('[')
		for i := range r.IntN(4) {
			if i > 0 {
				b.WriteString(", ")
			}
			value(depth+1, elem)
		}
		b.WriteByte(']')
	}
	value = func(depth int, shape string) {
		if depth > 6 {
			shape = "leaf"
		} else if r.IntN(12) == 0 {
			shape = "" // anything
		}
		switch shape {
		case "leaf":
			b.WriteString([]string{"null", "1", `"s"`, "[]", "{}", "true"}[r.IntN(6)])
		case "string":
			if r.IntN(6) == 0 {
				b.WriteString("null")
				return
			}
			str()
		case "body":
			object(depth, map[string]string{"messages": "messages", "tools": "raws", "functions": "raws", "response_format": "format", "model": "string"})
		case "messages":
			array(depth, "message")
		case "message":
			object(depth, map[string]string{"role": "string", "content": "content", "name": "string", "tool_calls": "calls", "tool_call_id": "string"})
		case "calls":
			array(depth, "call")
		case "call":
			object(depth, map[string]string{"function": "function", "id": "string"})
		case "function":
			object(depth, map[string]string{"name": "string", "arguments": "string"})
		case "content":
			if r.IntN(2) == 0 {
				str()
				return
			}
			array(depth, "part")
		case "part":
			object(depth, map[string]string{"type": "string", "text": "string", "refusal": "string", "image_url": "image", "file": "file", "input_audio": "audio"})
		case "image":
			object(depth, map[string]string{"detail": "string", "url": "string"})
		case "file":
			object(depth, map[string]string{"file_data": "string", "filename": "string", "file_id": "string"})
		case "audio":
			object(depth, map[string]string{"data": "string", "format": "string"})
		case "raws":
			array(depth, "")
		case "format":
			object(depth, map[string]string{"type": "string"})
		default:
			switch r.IntN(7) {
			case 0:
				b.WriteString("null")
			case 1:
				b.WriteString([]string{"0", "-1.5e3", "12", "true", "false"}[r.IntN(5)])
			case 2:
				str()
			case 3:
				array(depth, "")
			case 4:
				object(depth, map[string]string{"role": "string", "type": "string", "text": "string"})
			case 5:
				array(depth, "part")
			default:
				object(depth, map[string]string{"function": "function", "content": "content"})
			}
		}
	}
	if r.IntN(20) == 0 {
		value(0, "")
	} else {
		value(0, "body")
	}
	return b.String()
}

func TestExactPromptRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(15, 2))
	c, ref := NewCounter(), refCodecs(t)
	for range 3000 {
		checkPrompt(t, c, ref, []byte(randPromptBody(r)))
	}
}

func FuzzExactPrompt(f *testing.F) {
	for _, body := range promptCorpus {
		if len(body) < 4096 {
			f.Add([]byte(body))
		}
	}
	r := rand.New(rand.NewPCG(1, 1))
	for range 50 {
		f.Add([]byte(randPromptBody(r)))
	}
	c, ref := NewCounter(), refCodecs(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		checkPrompt(t, c, ref, body)
	})
}

// benchBodies are a typical chat (the bench client's) and a long one of
// about 4 KB: a system prompt, turns with code, a tool definition, a tool
// call and its result.
var benchBodies = map[string]string{
	"typical": `{"model":"gpt-4o","messages":[{"role":"system","content":"You are a helpful assistant."},{"role":"user","content":"Write a haiku about load balancers, then explain it in one paragraph."},{"role":"assistant","content":"Requests arrive fast,\nspread across the quiet nodes—\nno server stands alone."}],"max_tokens":128,"temperature":0.7}`,
	"long":    longBenchBody(),
}

func longBenchBody() string {
	turns := []string{
		`{"role":"system","content":"You are a senior Go engineer. Answer concisely, show code when it helps, and explain trade-offs. Never invent APIs; say so when you are unsure. Prefer the standard library."}`,
		`{"role":"user","content":"Our proxy counts tokens for every request and the profile shows encoding/json and the regexp engine at the top. How would you make an exact count cheaper without changing its results?"}`,
		`{"role":"assistant","content":"Two things dominate: decoding the body into structs with reflection, and running the split regexp over every string. For the first, walk the JSON with a small scanner and decode only the strings you count. For the second, write the pre-tokenizer by hand and cache the byte-pair count of each piece, since words repeat across prompts.\n\n` + "```go\\nfunc count(s string) int {\\n\\tn := 0\\n\\tfor _, p := range split(s) {\\n\\t\\tn += cache.get(p)\\n\\t}\\n\\treturn n\\n}\\n```" + `\n\nKeep the old implementation as an oracle and fuzz the two against each other."}`,
		`{"role":"user","content":"What about invalid UTF-8, escapes like \u00e9 and surrogate pairs such as \ud83d\ude00, or keys in a different case? I don't want the counts to drift, not even by one token, because budgets are settled against them."}`,
		`{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"search_docs","arguments":"{\"query\":\"encoding/json case-insensitive field matching\",\"limit\":3}"}}]}`,
		`{"role":"tool","tool_call_id":"call_1","content":"Unmarshal matches incoming object keys to the keys used by Marshal (either the struct field name or its tag), preferring an exact match but also accepting a case-insensitive match. By default, object keys which don't have a corresponding struct field are ignored. Unmarshal replaces invalid UTF-8 or invalid UTF-16 surrogate pairs with the replacement rune U+FFFD."}`,
		`{"role":"assistant","content":"Then mirror those rules exactly: match keys with Unicode folding after unescaping, replace each invalid byte with U+FFFD, and join surrogate pairs. A repeated key decodes again over the first value, so keep what it leaves behind. Test all of it against the reflection-based decoder, with a fuzz target seeded by tricky bodies: nulls, wrong types, tool calls, image and file parts."}`,
		`{"role":"user","content":[{"type":"text","text":"Here is the flame graph from the load test, and the config we ran with. Which of the two changes should we ship first, and what numbers would convince you that it worked?"},{"type":"image_url","image_url":{"url":"https://example.com/flame.png","detail":"high"}}]}`,
	}
	tools := `[{"type":"function","function":{"name":"search_docs","description":"Search the Go standard library documentation and return the most relevant passages.","parameters":{"type":"object","properties":{"query":{"type":"string","description":"What to look for."},"limit":{"type":"integer","minimum":1,"maximum":10}},"required":["query"]}}}]`
	return `{"model":"gpt-4o","messages":[` + strings.Join(turns, ",") + `],"tools":` + tools + `,"max_tokens":1024,"stream":true}`
}

// BenchmarkExactPrompt compares the struct decode with tiktoken-go's Count
// (old) and the scanner with the fast counter (new, with the piece cache
// warm as it is in a running proxy, and cold: every piece a miss).
func BenchmarkExactPrompt(b *testing.B) {
	ref := refCodecs(b)
	for _, name := range []string{"typical", "long"} {
		body := []byte(benchBodies[name])
		for _, model := range boundModels {
			c := NewCounter()
			if got, want := c.Prompt(model, body), oldExactPrompt(ref[model], body); got != want {
				b.Fatalf("%s %s: new %d, old %d", name, model, got, want)
			}
			b.Run(fmt.Sprintf("%s/%s/old", name, model), func(b *testing.B) {
				b.SetBytes(int64(len(body)))
				b.ReportAllocs()
				for b.Loop() {
					oldExactPrompt(ref[model], body)
				}
			})
			b.Run(fmt.Sprintf("%s/%s/new", name, model), func(b *testing.B) {
				b.SetBytes(int64(len(body)))
				b.ReportAllocs()
				for b.Loop() {
					c.Prompt(model, body)
				}
			})
			b.Run(fmt.Sprintf("%s/%s/new-cold", name, model), func(b *testing.B) {
				b.SetBytes(int64(len(body)))
				b.ReportAllocs()
				tc := c.codec(model)
				for b.Loop() {
					tc.cache = pieceCache{}
					c.Prompt(model, body)
				}
			})
		}
	}
}
