package demo

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"math"
	"testing"

	"llmproxy/router"
)

type embedList struct {
	Object string `json:"object"`
	Data   []struct {
		Object    string          `json:"object"`
		Index     int             `json:"index"`
		Embedding json.RawMessage `json:"embedding"`
	} `json:"data"`
	Model string `json:"model"`
	Usage struct {
		PromptTokens int `json:"prompt_tokens"`
		TotalTokens  int `json:"total_tokens"`
	} `json:"usage"`
}

func embed(t *testing.T, body string) (embedList, [][]float32, *router.EmbedResponse) {
	t.Helper()
	req := &router.EmbedRequest{Model: "embed", Body: []byte(body), Target: router.Target{Provider: "demo", Model: "hash-lexical-384"}}
	resp, err := newClient().Embed(context.Background(), req)
	if err != nil {
		t.Fatalf("Embed(%s) error = %v", body, err)
	}
	var l embedList
	if err := json.Unmarshal(resp.Data, &l); err != nil {
		t.Fatalf("Embed(%s) body: %v", body, err)
	}
	var vecs [][]float32
	for _, d := range l.Data {
		vecs = append(vecs, decodeVector(t, d.Embedding))
	}
	return l, vecs, resp
}

// decodeVector reads a float array, or a base64 string of little-endian
// float32s the way the official SDKs do.
func decodeVector(t *testing.T, raw json.RawMessage) []float32 {
	t.Helper()
	var fs []float32
	if json.Unmarshal(raw, &fs) == nil {
		return fs
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Fatalf("embedding %s is neither floats nor base64", raw)
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(b)%4 != 0 {
		t.Fatalf("embedding %q: bad base64 (%v)", s, err)
	}
	for i := 0; i < len(b); i += 4 {
		fs = append(fs, math.Float32frombits(binary.LittleEndian.Uint32(b[i:])))
	}
	return fs
}

func norm(v []float32) float64 {
	var s float64
	for _, x := range v {
		s += float64(x) * float64(x)
	}
	return math.Sqrt(s)
}

func cosine(a, b []float32) float64 {
	var s float64
	for i := range a {
		s += float64(a[i]) * float64(b[i])
	}
	return s / norm(a) / norm(b)
}

func TestEmbedShape(t *testing.T) {
	l, vecs, resp := embed(t, `{"model":"embed","input":["The cat sat.","A dog ran!"]}`)
	if l.Object != "list" || l.Model != "hash-lexical-384" || len(l.Data) != 2 {
		t.Fatalf("Embed() = %s; want a list of 2 from hash-lexical-384", resp.Data)
	}
	for i, d := range l.Data {
		if d.Object != "embedding" || d.Index != i || len(vecs[i]) != DefaultDimensions {
			t.Errorf("data[%d] = %q index %d dims %d; want embedding index %d dims %d", i, d.Object, d.Index, len(vecs[i]), i, DefaultDimensions)
		}
		if n := norm(vecs[i]); math.Abs(n-1) > 1e-5 {
			t.Errorf("data[%d] norm = %v; want 1", i, n)
		}
	}
	want := count(t, "The cat sat.") + count(t, "A dog ran!")
	if l.Usage.PromptTokens != want || l.Usage.TotalTokens != want || resp.Usage.PromptTokens != want || resp.Usage.TotalTokens != want {
		t.Errorf("usage = %+v (body %+v); want prompt = total = %d", resp.Usage, l.Usage, want)
	}
}

func TestEmbedBase64MatchesFloat(t *testing.T) {
	for _, input := range []string{`"hello world"`, `["Hello, World", "¿Qué tal? 日本語", "!!!"]`} {
		_, floats, _ := embed(t, `{"model":"embed","input":`+input+`}`)
		_, b64, _ := embed(t, `{"model":"embed","input":`+input+`,"encoding_format":"base64"}`)
		if len(floats) != len(b64) {
			t.Fatalf("input %s: %d float vectors, %d base64 vectors; want equal", input, len(floats), len(b64))
		}
		for i := range floats {
			for j := range floats[i] {
				if floats[i][j] != b64[i][j] {
					t.Fatalf("input %s: vector %d[%d] float = %v, base64 = %v; want equal", input, i, j, floats[i][j], b64[i][j])
				}
			}
			if n := norm(floats[i]); math.Abs(n-1) > 1e-5 {
				t.Errorf("input %s: vector %d norm = %v; want 1", input, i, n)
			}
		}
	}
}

func TestEmbedLexical(t *testing.T) {
	_, v, _ := embed(t, `{"model":"embed","input":["The quick brown fox","the QUICK brown fox!","quick brown foxes jump","Quarterly revenue report"],"dimensions":256}`)
	if len(v[0]) != 256 {
		t.Fatalf("dimensions = %d; want 256", len(v[0]))
	}
	if c := cosine(v[0], v[1]); math.Abs(c-1) > 1e-6 {
		t.Errorf("cosine(case and punctuation variants) = %v; want 1", c)
	}
	if near, far := cosine(v[0], v[2]), cosine(v[0], v[3]); near <= far {
		t.Errorf("cosine(shared words) = %v, cosine(no shared words) = %v; want the first larger", near, far)
	}
	_, again, _ := embed(t, `{"model":"embed","input":"The quick brown fox","dimensions":256}`)
	for j := range again[0] {
		if again[0][j] != v[0][j] {
			t.Fatalf("embedding not deterministic at %d: %v vs %v", j, again[0][j], v[0][j])
		}
	}
}

func TestEmbedRequestFields(t *testing.T) {
	req := &router.EmbedRequest{Model: "embed", Input: []string{"from the decoded field"}, EncodingFormat: "base64", Dimensions: 8}
	resp, err := newClient().Embed(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	var l embedList
	if err := json.Unmarshal(resp.Data, &l); err != nil || len(l.Data) != 1 || l.Model != "embed" {
		t.Fatalf("Embed() = %s, %v; want one embedding with model embed", resp.Data, err)
	}
	if v := decodeVector(t, l.Data[0].Embedding); len(v) != 8 || l.Data[0].Embedding[0] != '"' {
		t.Errorf("Embed() embedding = %s; want base64 of 8 floats", l.Data[0].Embedding)
	}
}

func TestEmbedInvalid(t *testing.T) {
	tests := []struct{ name, body, param string }{
		{"token array", `{"model":"e","input":[1,2,3]}`, "input"},
		{"array of token arrays", `{"model":"e","input":[[1,2],[3]]}`, "input"},
		{"number", `{"model":"e","input":5}`, "input"},
		{"missing input", `{"model":"e"}`, "input"},
		{"empty array", `{"model":"e","input":[]}`, "input"},
		{"empty string", `{"model":"e","input":""}`, "input"},
		{"bad encoding", `{"model":"e","input":"x","encoding_format":"hex"}`, "encoding_format"},
		{"too many dimensions", `{"model":"e","input":"x","dimensions":100000}`, "dimensions"},
		{"negative dimensions", `{"model":"e","input":"x","dimensions":-1}`, "dimensions"},
		{"malformed", `{"model":`, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := newClient().Embed(context.Background(), &router.EmbedRequest{Model: "e", Body: []byte(tc.body)})
			e := router.AsError(err)
			if err == nil || e.Kind != router.KindInvalidRequest || e.StatusCode() != 400 || e.Param != tc.param {
				t.Errorf("Embed(%s) error = %v (param %q); want 400 invalid_request on param %q", tc.body, err, e.Param, tc.param)
			}
		})
	}
}

func TestEmbedCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := newClient().Embed(ctx, &router.EmbedRequest{Model: "e", Input: []string{"x"}})
	if router.AsError(err).Kind != router.KindCanceled {
		t.Errorf("Embed(canceled) error = %v; want KindCanceled", err)
	}
}
