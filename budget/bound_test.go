package budget

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"testing"
	"unicode/utf8"

	"llmproxy/router"
)

// boundModels are one model per encoding we use.
var boundModels = []string{"gpt-4o", "gpt-4"}

func TestPromptBoundTable(t *testing.T) {
	tests := []struct {
		name                      string
		body                      string
		tools, vision, jsonSchema bool
	}{
		{"plain", `{"model":"m","messages":[{"role":"system","content":"You are terse."},{"role":"user","content":"Say hello."}]}`, false, false, false},
		{"cjk", `{"model":"m","messages":[{"role":"user","content":"你好，世界！请用一句话介绍一下你自己。日本語のテキストも。한국어도"}]}`, false, false, false},
		{"emoji", `{"model":"m","messages":[{"role":"user","content":"👩‍👩‍👧‍👦🏳️‍🌈🇯🇵 ok 😀😀😀"}]}`, false, false, false},
		{"escapes", `{"model":"m","messages":[{"role":"user","content":"line\nbreak \"quoted\" \\ back \u00e9\u4f60\ud83d\ude00 \t tab \/ slash"}]}`, false, false, false},
		{"escaped keys and case", `{"model":"m","messages":[{"Role":"user","CONTENT":"shouted keys","n\u0061me":"bob"}]}`, false, false, false},
		{"name and tool result", `{"model":"m","messages":[{"role":"user","name":"alice","content":"hi"},{"role":"tool","tool_call_id":"call_123","content":"{\"temp\":21}"}]}`, false, false, false},
		{"tool calls", `{"model":"m","messages":[{"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"東京\",\"unit\":\"c\"}"}},null]}]}`, false, false, false},
		{"tools", `{"model":"m","messages":[{"role":"user","content":"weather?"}],"tools":[{"type":"function","function":{"name":"get_weather","description":"天気を調べる","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}]}`, true, false, false},
		{"functions", `{"model":"m","messages":[{"role":"user","content":"x"}],"functions":[{"name":"f","parameters":{}}, null]}`, true, false, false},
		{"parts and images", `{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"what is this?"},{"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA","detail":"low"}},{"type":"refusal","refusal":"no"},{"type":"input_audio"},null]}]}`, false, true, false},
		{"escaped part type", `{"model":"m","messages":[{"role":"user","content":[{"type":"te\u0078t","text":"hello there"},{"type":"input_image","image_url":{}}]}]}`, false, true, false},
		{"file and audio parts", `{"model":"m","messages":[{"role":"user","content":[{"type":"file","file":{"file_data":"data:application/pdf;base64,JVBERi0xLjQK\/\/AAAA","filename":"a\u00e9.pdf"}},{"type":"file","file":{"file_id":"file-abc","filename":"b.pdf"}},{"type":"file","file":{"file_data":""}},{"type":"file","file":null},{"type":"file"},{"type":"input_audio","input_audio":{"data":"UklGRiQAAABXQVZF","format":"wav"}},{"type":"input_audio","input_audio":{"data":null}}]}]}`, false, false, false},
		{"json schema", `{"model":"m","messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_schema","json_schema":{"name":"s","schema":{}}}}`, false, false, true},
		{"null message", `{"model":"m","messages":[null,{"role":"user","content":"x"}]}`, false, false, false},
		{"duplicate keys", `{"model":"m","messages":[{"role":"user","content":"a long first content","content":"b","name":"x","name":""}]}`, false, false, false},
		{"wrong types fall back", `{"model":"m","messages":[{"role":5,"content":{"a":"b"}}],"response_format":"json"}`, false, false, false},
		{"content object", `{"model":"m","messages":[{"role":"user","content":{"text":"not a list"}}]}`, false, false, false},
		{"part of wrong type", `{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":7}]}]}`, false, false, false},
		{"invalid utf-8", "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"bad \xff\xfe\xfd bytes \xc3\"}],\"tools\":[{\"d\":\"\xff\xff\"}]}", true, false, false},
		{"special tokens", `{"model":"m","messages":[{"role":"user","content":"<|endoftext|><|im_start|>x<|im_end|>"}]}`, false, false, false},
		{"no messages", `{"model":"m"}`, false, false, false},
		{"not an object", `[1,2,3]`, false, false, false},
		{"null body", `null`, false, false, false},
	}
	c := NewCounter()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body := []byte(tc.body)
			info := c.Inspect("gpt-4o", body)
			for _, m := range boundModels {
				if exact := c.Prompt(m, body); exact > info.Tokens {
					t.Errorf("Prompt(%s) = %d > bound %d", m, exact, info.Tokens)
				}
			}
			if info.Tools != tc.tools || info.Vision != tc.vision || info.JSONSchema != tc.jsonSchema {
				t.Errorf("Inspect = tools %v vision %v json_schema %v; want %v %v %v",
					info.Tools, info.Vision, info.JSONSchema, tc.tools, tc.vision, tc.jsonSchema)
			}
		})
	}
}

// randText draws text that stresses tokenizers: ASCII words, CJK, emoji
// with joiners, combining marks, control characters, quotes, backslashes
// and, when raw is set, bytes that are not UTF-8.
func randText(r *rand.Rand, raw bool) string {
	pools := [][]rune{
		[]rune("abcdefghijklmnopqrstuvwxyz     ABCXYZ0123456789.,;:!?-_"),
		[]rune("你好世界中文字符日本語のテキスト한국어"),
		[]rune("😀🏳️‍🌈👩‍👧🇯🇵\u200d\ufe0f"),
		[]rune("e\u0301a\u0308\u0327"),
		[]rune("\n\t\r\"\\/\x00\x01\x1f\u2028\ufffd"),
		[]rune("<|endoftext|>{}[]"),
	}
	var b strings.Builder
	for range r.IntN(80) {
		p := pools[r.IntN(len(pools))]
		b.WriteRune(p[r.IntN(len(p))])
		if raw && r.IntN(20) == 0 {
			b.WriteByte(byte(0x80 + r.IntN(0x80)))
		}
	}
	return b.String()
}

// TestPromptBoundProperty: over random prompts, Prompt ≤ PromptBound
// under every encoding, with text in every place the prompt counts.
func TestPromptBoundProperty(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	c := NewCounter()
	q := func(s string) string { b, _ := json.Marshal(s); return string(b) }
	for i := range 300 {
		raw := i%3 == 0
		txt := func() string {
			s := randText(r, raw)
			if raw {
				// Splice the text in unescaped where JSON allows it, so
				// invalid bytes and raw multi-byte runes reach the scanner.
				return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`, "\t", `\t`, "\r", `\r`, "\x00", `\u0000`, "\x01", `\u0001`, "\x1f", `\u001f`).Replace(s) + `"`
			}
			return q(s)
		}
		body := fmt.Sprintf(`{"model":"m","messages":[{"role":"system","content":%s},{"role":"user","name":%s,"content":[{"type":"text","text":%s},{"type":"image_url","image_url":{"url":%s}}]},`+
			`{"role":"assistant","content":null,"tool_calls":[{"function":{"name":%s,"arguments":%s}}]},{"role":"tool","tool_call_id":%s,"content":%s}],"tools":[{"type":"function","function":{"name":"f","description":%s}}]}`,
			txt(), txt(), txt(), txt(), txt(), txt(), txt(), txt(), txt())
		if !json.Valid([]byte(body)) {
			t.Fatalf("test built invalid JSON: %q", body)
		}
		bound := PromptBound([]byte(body))
		for _, m := range boundModels {
			if exact := c.Prompt(m, []byte(body)); exact > bound {
				t.Fatalf("Prompt(%s) = %d > bound %d for %q", m, exact, bound, body)
			}
		}
	}
}

// TestChunkBoundProperty: a chunk's bound is never below the tokenizer's
// count of its text, nor the bound of a stream below its exact count.
func TestChunkBoundProperty(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	g := mustGuard(t, GuardOptions{})
	for _, model := range boundModels {
		s := &guardedStream{g: g, alias: model, buf: g.buffer()}
		var all strings.Builder
		total := 0
		for range 200 {
			a, b := randText(r, false), randText(r, false)
			qa, _ := json.Marshal(a)
			qb, _ := json.Marshal(b)
			data := fmt.Sprintf(`{"id":"x","choices":[{"index":0,"delta":{"content":%s,"tool_calls":[{"index":0,"function":{"arguments":%s}}]}}]}`, qa, qb)
			mark := len(*s.buf)
			n := s.scan([]byte(data), "delta")
			if got := s.tokens((*s.buf)[mark:]); got > n {
				t.Fatalf("%s: chunk bound %d < exact %d for %s", model, n, got, data)
			}
			if want := g.counter.Text(model, a+b); s.tokens((*s.buf)[mark:]) != want {
				t.Fatalf("%s: tokens of the scanned text = %d; Text = %d (text not recovered)", model, s.tokens((*s.buf)[mark:]), want)
			}
			all.WriteString(a + b)
			total += n
		}
		if exact := g.counter.Text(model, all.String()); exact > total {
			t.Errorf("%s: stream bound %d < exact %d", model, total, exact)
		}
	}
}

func TestLitBytesInvalidUTF8(t *testing.T) {
	v := []byte("\"\xff\xfe\"")
	if utf8.Valid(v) || litBytes(v) != 6 {
		t.Errorf("litBytes(%q) = %d; want 6 (each invalid byte decodes to U+FFFD)", v, litBytes(v))
	}
}

// TestStreamSwitchToExact: chunks whose byte bound is six times their
// tokens. The stream runs on bounds, switches to exact counting when the
// bound would cross the cap, and cuts within one chunk of the exact limit.
func TestStreamSwitchToExact(t *testing.T) {
	const text = " hello world" // 12 bytes, 2 tokens in both encodings
	for _, model := range boundModels {
		t.Run(model, func(t *testing.T) {
			if n := NewCounter().Text(model, text+text+text); n != 6 {
				t.Fatalf("Text(3×%q) = %d; the test needs 2 tokens per chunk", text, n)
			}
			up := &fakeUpstream{make: func(*router.ChatRequest) router.Stream { return &fakeStream{n: 1000, text: text} }}
			g := mustGuard(t, GuardOptions{
				Teams:  map[string]TeamPolicy{"t": {Budget: &BudgetSpec{USD: 101e-6, Period: Day}}}, // 101 output tokens
				Models: map[string]ModelPolicy{model: outputOnly},
			})
			req := chatReq(t, strings.Replace(body1, `"model":"m"`, `"model":"`+model+`"`, 1))
			st, err := g.Middleware()(up).Serve(teamCtx("t", "k"), req)
			if err != nil {
				t.Fatal(err)
			}
			content, _, err := drain(st)
			var re *router.Error
			if !errors.As(err, &re) || re.Kind != router.KindBudgetExceeded {
				t.Fatalf("end = %v; want a budget exhausted error", err)
			}
			// Exact: 50 chunks are 100 tokens, the 51st would be 102 > 101.
			// On bounds alone the cut would come after 8 chunks (96 bytes).
			if content != 50 {
				t.Errorf("client got %d content chunks (%d tokens); want 50 (100 tokens, the cap is 101)", content, 2*content)
			}
			st.Close()
			if req.Result.Usage.CompletionTokens != 2*content || !req.Result.Estimated {
				t.Errorf("usage = %+v; want %d completion tokens, estimated", req.Result.Usage, 2*content)
			}
			if want := NewCounter().Prompt(model, req.Body); req.Result.Usage.PromptTokens != want {
				t.Errorf("estimated prompt = %d; want the exact %d", req.Result.Usage.PromptTokens, want)
			}
		})
	}
}

// TestStreamNoUsageCountsExactly: without upstream usage and without a
// cut, the settle tokenizes the accumulated text once: the estimate is the
// exact count, not the bound.
func TestStreamNoUsageCountsExactly(t *testing.T) {
	up := &fakeUpstream{make: func(*router.ChatRequest) router.Stream { return &fakeStream{n: 30, text: " hello world"} }}
	g := mustGuard(t, GuardOptions{
		Teams:  map[string]TeamPolicy{"t": {Budget: &BudgetSpec{Tokens: 1e6, Period: Day}}},
		Models: map[string]ModelPolicy{"m": {Priced: true}},
	})
	req := chatReq(t, body1)
	st, err := g.Middleware()(up).Serve(teamCtx("t", "k"), req)
	if err != nil {
		t.Fatal(err)
	}
	drain(st)
	st.Close()
	prompt := NewCounter().Prompt("m", []byte(body1))
	if u := req.Result.Usage; u.CompletionTokens != 60 || u.PromptTokens != prompt || !u.Estimated {
		t.Errorf("usage = %+v; want 60 completion and %d prompt tokens, estimated", u, prompt)
	}
	s, _ := g.Status(context.Background(), "t")
	if s.SpentTokens != int64(prompt+60) {
		t.Errorf("spent %d tokens; want %d", s.SpentTokens, prompt+60)
	}
}

// countingLedger counts round trips to a Memory.
type countingLedger struct {
	*Memory
	reserves, settles atomic.Int64
}

func (l *countingLedger) Reserve(ctx context.Context, r Reservation) (Grant, error) {
	l.reserves.Add(1)
	return l.Memory.Reserve(ctx, r)
}

func (l *countingLedger) Settle(ctx context.Context, r Reservation, a Amount) error {
	l.settles.Add(1)
	return l.Memory.Settle(ctx, r, a)
}

// TestAdmissionWithBound: a prompt whose byte bound is about six times its
// tokens. With room, admission is one round trip and never counts exactly;
// near exhaustion the exact count decides, so the clamp and the refusal
// are what an exact reservation gives.
func TestAdmissionWithBound(t *testing.T) {
	content := strings.Repeat(" hello world", 50) // 600 bytes, 100 tokens
	body := `{"model":"m","max_tokens":1000,"messages":[{"role":"user","content":"` + content + `"}]}`
	c := NewCounter()
	exact, bound := c.Prompt("m", []byte(body)), PromptBound([]byte(body))
	if bound < exact+400 {
		t.Fatalf("bound %d, exact %d; the test needs a loose bound", bound, exact)
	}
	usd := func(tokens int) float64 { return float64(tokens) * 1e-6 } // at $1 per million tokens
	flat := Price{InputPerMTok: 1, OutputPerMTok: 1}
	tests := []struct {
		name       string
		budget     BudgetSpec
		price      Price
		wantClamp  int  // 0: not clamped
		tol        int  // dollar rounding
		wantRefuse bool // budget refusal
		reserves   int64
		counted    bool // exact count ran
	}{
		// Under a budget the prompt is always counted exactly (see
		// exactForBudgets), so admission is one round trip and the clamp is
		// what an exact reservation gives.
		{"room", BudgetSpec{Tokens: 1e6, Period: Day}, Price{}, 0, 0, false, 1, true},
		{"exact clamps", BudgetSpec{Tokens: int64(exact + 150), Period: Day}, Price{}, 150, 0, false, 1, true},
		{"exact fits whole", BudgetSpec{Tokens: int64(bound + 990), Period: Day}, Price{}, 0, 0, false, 1, true},
		{"exact clamps where the bound would clamp more", BudgetSpec{Tokens: int64(bound + 100), Period: Day}, Price{}, bound + 100 - exact, 0, false, 1, true},
		{"usd: exact clamps where the bound would clamp more", BudgetSpec{USD: usd(bound + 100), Period: Day}, flat, bound + 100 - exact, 1, false, 1, true},
		{"usd: exact clamps", BudgetSpec{USD: usd(exact + 120), Period: Day}, flat, 120, 1, false, 1, true},
		{"nothing fits", BudgetSpec{Tokens: int64(exact + 10), Period: Day}, Price{}, 0, 0, true, 1, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			led := &countingLedger{Memory: NewMemory(nil)}
			up := &fakeUpstream{make: func(*router.ChatRequest) router.Stream { return &fakeStream{n: 2, text: " hi"} }}
			g := mustGuard(t, GuardOptions{
				Teams:  map[string]TeamPolicy{"t": {Budget: &tc.budget}},
				Models: map[string]ModelPolicy{"m": {Price: tc.price, Priced: true}},
				Ledger: led,
			})
			req := chatReq(t, body)
			st, err := g.Middleware()(up).Serve(teamCtx("t", "k"), req)
			var re *router.Error
			if tc.wantRefuse {
				if !errors.As(err, &re) || re.Kind != router.KindBudgetExceeded {
					t.Fatalf("Serve = %v; want KindBudgetExceeded", err)
				}
			} else {
				if err != nil {
					t.Fatalf("Serve = %v; want admitted", err)
				}
				if d := req.Result.MaxTokensClamped - tc.wantClamp; d < -tc.tol || d > tc.tol {
					t.Errorf("clamped to %d; want %d", req.Result.MaxTokensClamped, tc.wantClamp)
				}
				if counted := req.PromptTokensExact == nil; counted != tc.counted {
					t.Errorf("exact count ran = %v; want %v", counted, tc.counted)
				}
				if tc.counted && req.PromptTokens != exact {
					t.Errorf("req.PromptTokens = %d; want the exact %d", req.PromptTokens, exact)
				}
				if !tc.counted && req.PromptTokens != bound {
					t.Errorf("req.PromptTokens = %d; want the bound %d", req.PromptTokens, bound)
				}
				drain(st)
				st.Close()
			}
			if n := led.reserves.Load(); n != tc.reserves {
				t.Errorf("%d Reserve round trips; want %d", n, tc.reserves)
			}
		})
	}
}

// TestBoundDecisions: a downgrade threshold and a context window between
// the exact count and the bound are judged on the exact count.
func TestBoundDecisions(t *testing.T) {
	content := strings.Repeat(" hello world", 50)
	body := `{"model":"big","messages":[{"role":"user","content":"` + content + `"}]}`
	exact, bound := NewCounter().Prompt("big", []byte(body)), PromptBound([]byte(body))
	mid := (exact + bound) / 2
	up := &fakeUpstream{make: func(*router.ChatRequest) router.Stream { return &fakeStream{n: 1, text: " hi"} }}
	g := mustGuard(t, GuardOptions{
		Teams: map[string]TeamPolicy{"t": {Budget: &BudgetSpec{Tokens: 1e9, Period: Day},
			Downgrade: []DowngradeRule{{MaxPromptTokens: mid, To: "small"}}}},
		Models: map[string]ModelPolicy{"big": {Priced: true},
			"small": {Priced: true, ContextWindow: mid + 16, MaxOutputTokens: 16}},
	})
	req := chatReq(t, body)
	st, err := g.Middleware()(up).Serve(teamCtx("t", "k"), req)
	if err != nil {
		t.Fatal(err)
	}
	drain(st)
	st.Close()
	if req.Model != "small" {
		t.Errorf("model = %s; want small (prompt %d ≤ max_prompt_tokens %d < bound %d)", req.Model, exact, mid, bound)
	}
	// The window (mid+16) holds the exact prompt plus the 16-token cap, so
	// the cap is not lowered to fit the window, and no cap is written: the
	// alias's max_output_tokens is the upstream's own limit.
	if string(up.bodies[0]) != body || req.CompletionCap != 0 {
		t.Errorf("body = %s, cap %d; want the client's body and no cap", up.bodies[0], req.CompletionCap)
	}
}

// TestAdmissionExactUnderBudget: a budgeted request is counted exactly
// before its round trip (bound over-reservations of concurrent requests
// could otherwise refuse one that fits); rate limits alone keep the bound.
func TestAdmissionExactUnderBudget(t *testing.T) {
	body := `{"model":"m","max_tokens":100,"messages":[{"role":"user","content":"` + strings.Repeat(" hello world", 50) + `"}]}`
	for _, tc := range []struct {
		name  string
		team  TeamPolicy
		exact bool
	}{
		{"budget", TeamPolicy{Budget: &BudgetSpec{Tokens: 1e7, Period: Day}}, true},
		{"rate limit only", TeamPolicy{RateLimit: &RateSpec{RPM: 1e6, TPM: 1e9}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := mustGuard(t, GuardOptions{
				Teams:  map[string]TeamPolicy{"t": tc.team},
				Models: map[string]ModelPolicy{"m": {Priced: true}},
				Ledger: NewMemory(nil),
			})
			up := &fakeUpstream{make: func(*router.ChatRequest) router.Stream { return &fakeStream{n: 2, text: " hi"} }}
			req := chatReq(t, body)
			st, err := g.Middleware()(up).Serve(teamCtx("t", "k"), req)
			if err != nil {
				t.Fatalf("Serve = %v; want admitted", err)
			}
			drain(st)
			st.Close()
			if counted := req.PromptTokensExact == nil; counted != tc.exact {
				t.Errorf("exact count ran = %v; want %v", counted, tc.exact)
			}
		})
	}
}
