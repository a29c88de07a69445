package main

import (
	"encoding/json"
	"testing"

	"llmproxy/router"
)

// FuzzParseEmbedRequest feeds arbitrary bodies to the embeddings decoder:
// it must never panic, must fail only with a client-facing 400, and what
// it accepts must keep the client's body untouched for the upstream.
func FuzzParseEmbedRequest(f *testing.F) {
	for _, s := range []string{
		`{"model":"e","input":"hello"}`,
		`{"model":"e","input":["a","b"],"encoding_format":"base64"}`,
		`{"model":"e","input":[[1,2,3]],"dimensions":256}`,
		`{"model":"e","input":[]}`,
		`{"model":"","input":"x"}`,
		`{"input":"x"}`,
		`{"model":"e","input":null}`,
		`{"model":"e","input":"x","encoding_format":"hex"}`,
		`{"model":"e","MODEL":"f","input":"x"}`,
		`{"Model":"e","input":"x"}`,
		`[1,2]`, `null`, `{`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		orig := string(body)
		req, err := parseEmbedRequest(body)
		if err != nil {
			e := router.AsError(err)
			if e.Kind != router.KindInvalidRequest || e.StatusCode() != 400 {
				t.Fatalf("parseEmbedRequest(%q) error kind %v status %d; want a 400", body, e.Kind, e.StatusCode())
			}
			return
		}
		if req.Model == "" {
			t.Fatalf("parseEmbedRequest(%q) accepted an empty model", body)
		}
		if !json.Valid(req.Body) || string(req.Body) != orig {
			t.Fatalf("parseEmbedRequest(%q) changed the body", body)
		}
		switch req.EncodingFormat {
		case "", "float", "base64":
		default:
			t.Fatalf("parseEmbedRequest(%q) accepted encoding_format %q", body, req.EncodingFormat)
		}
	})
}

// FuzzParseRerankRequest feeds arbitrary bodies to the /v1/rerank
// decoder: it must never panic, must fail only with a 400, and what it
// accepts has a model, a query, 1 to 1000 documents and a top_n within
// them.
func FuzzParseRerankRequest(f *testing.F) {
	for _, s := range []string{
		`{"model":"r","query":"q","documents":["a","b"],"top_n":1}`,
		`{"model":"r","query":"q","documents":[{"text":"a"},"b"],"return_documents":true}`,
		`{"model":"r","query":"q","documents":[{"title":"a"}]}`,
		`{"model":"r","query":"q","documents":[],"top_n":0}`,
		`{"model":"r","query":"","documents":["a"]}`,
		`{"model":"r","query":"q","documents":["a"],"top_n":99}`,
		`{"model":"r","QUERY":"q","query":"q","documents":["a"]}`,
		`[1]`, `null`, `{`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, _, err := parseRerankRequest(body)
		if err != nil {
			if e := router.AsError(err); e.Kind != router.KindInvalidRequest || e.StatusCode() != 400 {
				t.Fatalf("parseRerankRequest(%q) error kind %v status %d; want a 400", body, e.Kind, e.StatusCode())
			}
			return
		}
		if req.Model == "" || req.Query == "" || len(req.Documents) == 0 || len(req.Documents) > maxRerankDocuments ||
			req.TopN < 0 || req.TopN > len(req.Documents) {
			t.Fatalf("parseRerankRequest(%q) accepted %+v", body, req)
		}
	})
}
