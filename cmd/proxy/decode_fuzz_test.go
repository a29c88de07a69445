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
