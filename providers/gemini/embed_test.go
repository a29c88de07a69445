package gemini

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"llmproxy/router"
)

// embedFake answers batchEmbedContents ("Embeddings > Method:
// models.batchEmbedContents": {"embeddings":[{"values":[...]}]}) with
// vector i = [i+0.5, -0.25, 1/3].
type embedFake struct {
	mu     sync.Mutex
	paths  []string
	bodies []string
	keys   []string
}

func (f *embedFake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	var req struct {
		Requests []json.RawMessage `json:"requests"`
	}
	json.Unmarshal(b, &req)
	f.mu.Lock()
	f.paths, f.bodies, f.keys = append(f.paths, r.URL.Path), append(f.bodies, string(b)), append(f.keys, r.Header.Get("x-goog-api-key"))
	f.mu.Unlock()
	var out strings.Builder
	out.WriteString(`{"embeddings":[`)
	for i := range req.Requests {
		if i > 0 {
			out.WriteByte(',')
		}
		fmt.Fprintf(&out, `{"values":[%v,-0.25,0.3333333333333333]}`, float64(i)+0.5)
	}
	out.WriteString("]}")
	w.Header().Set("Content-Type", "application/json")
	io.WriteString(w, out.String())
}

func TestEmbed(t *testing.T) {
	f := &embedFake{}
	srv := httptest.NewServer(f)
	defer srv.Close()
	c, err := New(Config{Name: "g", BaseURL: srv.URL, APIKey: "k1"}, srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	inputs := make([]string, 150)
	for i := range inputs {
		inputs[i] = fmt.Sprintf("text %d", i)
	}
	for _, format := range []string{"float", "base64"} {
		t.Run(format, func(t *testing.T) {
			resp, err := c.Embed(context.Background(), &router.EmbedRequest{Input: inputs, EncodingFormat: format, Dimensions: 3,
				Target: router.Target{Model: "text-embedding-004"}})
			if err != nil {
				t.Fatal(err)
			}
			var list struct {
				Object string `json:"object"`
				Data   []struct {
					Index     int             `json:"index"`
					Embedding json.RawMessage `json:"embedding"`
				} `json:"data"`
				Model string         `json:"model"`
				Usage map[string]int `json:"usage"`
			}
			if err := json.Unmarshal(resp.Data, &list); err != nil {
				t.Fatalf("reply %s: %v", resp.Data, err)
			}
			if list.Object != "list" || len(list.Data) != 150 || list.Model != "text-embedding-004" {
				t.Fatalf("list = %s %d %s; want 150 items", list.Object, len(list.Data), list.Model)
			}
			for _, i := range []int{0, 99, 100, 149} {
				v := vector(t, list.Data[i].Embedding, format)
				want := []float32{float32(i%100) + 0.5, -0.25, float32(1.0 / 3)}
				if fmt.Sprint(v) != fmt.Sprint(want) || list.Data[i].Index != i {
					t.Errorf("item %d = %v (index %d); want %v", i, v, list.Data[i].Index, want)
				}
			}
			if !resp.Usage.Estimated || resp.Usage.PromptTokens == 0 || list.Usage["prompt_tokens"] != resp.Usage.PromptTokens {
				t.Errorf("usage = %+v / %v; want an estimate > 0 in both", resp.Usage, list.Usage)
			}
		})
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.paths) != 4 || f.paths[0] != "/v1beta/models/text-embedding-004:batchEmbedContents" || f.keys[0] != "k1" {
		t.Errorf("upstream calls = %q keys %q; want 2 batches per format at batchEmbedContents", f.paths, f.keys)
	}
	if !strings.Contains(f.bodies[0], `"model":"models/text-embedding-004"`) || !strings.Contains(f.bodies[0], `"outputDimensionality":3`) {
		t.Errorf("batch body = %.200s; want model and outputDimensionality per request", f.bodies[0])
	}
}

func vector(t *testing.T, raw json.RawMessage, format string) []float32 {
	t.Helper()
	if format == "float" {
		var v []float32
		if err := json.Unmarshal(raw, &v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	var s string
	json.Unmarshal(raw, &s)
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	v := make([]float32, len(b)/4)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return v
}

func TestEmbedTokenArrays(t *testing.T) {
	c := testClient(t)
	_, err := c.Embed(context.Background(), &router.EmbedRequest{Body: []byte(`{"input":[[1,2]]}`)})
	if e := router.AsError(err); e.Kind != router.KindInvalidRequest || e.Param != "input" {
		t.Errorf("Embed(token arrays) = %v; want KindInvalidRequest on input", err)
	}
}
