package openai

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"llmproxy/router"
)

// The adapter's reply readers as they were before issue 15 (json.Valid,
// then a router.TopField scan per member, then encoding/json for usage):
// the oracles that chunk, wholeChunk and embedUsage must match, and the
// "old" side of the benchmarks.

func (s *stream) chunkOld(data []byte) (*router.Chunk, error) {
	if !json.Valid(data) {
		return nil, s.c.up.Malformed("stream chunk", nil)
	}
	if e := router.TopField(data, "error"); isObject(e) {
		return nil, s.c.eventError(e)
	}
	ch := &router.Chunk{Data: bytes.Clone(data)}
	s.model = modelName(router.TopField(data, "model"), s.model)
	ch.Model = s.model
	if raw := router.TopField(data, "usage"); isObject(raw) {
		u, err := parseUsageJSON(raw)
		if err != nil {
			return nil, s.c.up.Malformed("usage", err)
		}
		ch.Usage = u
		ch.UsageOnly = isEmptyArray(router.TopField(data, "choices"))
	}
	return ch, nil
}

func (c *Client) wholeChunkOld(body []byte) (*router.Chunk, error) {
	if !json.Valid(body) {
		return nil, c.up.Malformed("reply", nil)
	}
	if e := router.TopField(body, "error"); isObject(e) {
		return nil, c.eventError(e)
	}
	u, err := parseUsageJSON(router.TopField(body, "usage"))
	if err != nil {
		return nil, c.up.Malformed("usage", err)
	}
	return &router.Chunk{Data: body, Whole: true, Usage: u, Model: modelName(router.TopField(body, "model"), "")}, nil
}

func (c *Client) embedUsageOld(body []byte) (router.Usage, error) {
	if !json.Valid(body) {
		return router.Usage{}, c.up.Malformed("embeddings reply", nil)
	}
	if e := router.TopField(body, "error"); isObject(e) {
		return router.Usage{}, c.eventError(e)
	}
	u, err := parseUsageJSON(router.TopField(body, "usage"))
	if err != nil {
		return router.Usage{}, c.up.Malformed("usage", err)
	}
	if u == nil {
		return router.Usage{}, nil
	}
	return *u, nil
}

// describe renders a reply reader's answer for comparison: every Chunk
// field, or the error's kind, message and cause.
func describe(ch *router.Chunk, err error) string {
	if err != nil {
		var re *router.Error
		if !errors.As(err, &re) {
			return fmt.Sprintf("error %T %v", err, err)
		}
		return fmt.Sprintf("error kind=%v status=%d msg=%q cause=%v", re.Kind, re.Status, re.Message, re.Err)
	}
	if ch == nil {
		return "nil chunk"
	}
	u := "nil"
	if ch.Usage != nil {
		u = fmt.Sprintf("%+v", *ch.Usage)
	}
	return fmt.Sprintf("data=%q whole=%v usage=%s usageOnly=%v model=%q", ch.Data, ch.Whole, u, ch.UsageOnly, ch.Model)
}

// sameReply fails unless chunk, wholeChunk and embedUsage answer data as
// their old versions did. The stream side runs after a chunk naming model
// prev, which chunk reuses while the name repeats.
func sameReply(t *testing.T, c *Client, data []byte, prev string) {
	t.Helper()
	sNew, sOld := &stream{c: c, model: prev}, &stream{c: c, model: prev}
	got, want := describe(sNew.chunk(data)), describe(sOld.chunkOld(data))
	if got != want || sNew.model != sOld.model {
		t.Fatalf("chunk(%q) = %s (model %q)\nold chunk: %s (model %q)", data, got, sNew.model, want, sOld.model)
	}
	if got, want := describe(c.wholeChunk(data)), describe(c.wholeChunkOld(data)); got != want {
		t.Fatalf("wholeChunk(%q) = %s\nold: %s", data, got, want)
	}
	u, err := c.embedUsage(data)
	uOld, errOld := c.embedUsageOld(data)
	if got, want := describe(&router.Chunk{Usage: &u}, err), describe(&router.Chunk{Usage: &uOld}, errOld); got != want {
		t.Fatalf("embedUsage(%q) = %s\nold: %s", data, got, want)
	}
}

// replySeeds are upstream bodies and events: OpenAI's own shapes and the
// ways a compatible server gets them wrong.
func replySeeds() []string {
	seeds := []string{
		benchContentChunk, benchUsageChunk, benchCompletion,
		`{"error":{"message":"overloaded","type":"server_error","code":529}}`,
		`{"error":"plain string","model":"m"}`, `{"error":null,"model":"m","usage":null}`,
		`{"model":"m","choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}`,
		`{"model":"m","choices":null,"usage":{"prompt_tokens":1}}`, `{"model":"m","usage":{"prompt_tokens":1}}`,
		`{"model":"m","choices":[ ],"usage":{}}`, `{"model":"m","choices":[{}],"usage":{}}`,
		`{"usage":{"prompt_tokens":1.5}}`, `{"usage":{"prompt_tokens":"1"},"choices":[]}`, `{"usage":[]}`, `{"usage":"x"}`,
		`{"usage":{"prompt_tokens_details":[]},"choices":[]}`, `{"usage":{"completion_tokens_details":{"reasoning_tokens":1e9}}}`,
		`{"model":"m","model":"n"}`, `{"mo\u0064el":"esc","model":"n"}`, `{"model":"caf\u00e9"}`, `{"model":"m\"q"}`,
		`{"model":1}`, `{"model":""}`, `{"usage":{"prompt_tokens":1},"usage":{"prompt_tokens":2}}`,
		`{"choices":[],"choices":[1],"usage":{}}`, `{"\u0075sage":{"total_tokens":9},"choices":[]}`,
		`[]`, `[{"model":"m"}]`, `"x"`, `null`, `1`, ``, ` `, `{}`, `{`, `{"model":"m"`, `{"model":"m"} x`, `{"model":"m",}`,
		"{\"model\":\"a\x01b\"}", "{\"model\":\"\xff\xfe\"}", `{"model":"\ud800"}`, `{"model":"\x"}`, `{"usage":{"prompt_tokens":01}}`,
		`{"usage":{"prompt_tokens":-}}`, `{"usage":{"prompt_tokens":1e}}`,
		`{"x":` + strings.Repeat(`[`, 10000) + strings.Repeat(`]`, 10000) + `}`,
		`{"x":` + strings.Repeat(`[`, 9999) + strings.Repeat(`]`, 9999) + `}`,
	}
	for _, u := range usageSeeds {
		seeds = append(seeds, `{"model":"m","choices":[],"usage":`+u+`}`)
	}
	return seeds
}

func TestReplyMatchesOld(t *testing.T) {
	c, err := New(Config{Name: "oa", BaseURL: "http://upstream.example/v1"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range replySeeds() {
		for _, prev := range []string{"", "m", "gpt-4o-mini-2024-07-18"} {
			sameReply(t, c, []byte(s), prev)
		}
	}
}

// FuzzReply: on any bytes, the one-scan readers answer what json.Valid,
// TopField and encoding/json answered.
func FuzzReply(f *testing.F) {
	for _, s := range replySeeds() {
		f.Add([]byte(s), "m")
	}
	c, err := New(Config{Name: "oa", BaseURL: "http://upstream.example/v1"}, nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte, prev string) {
		sameReply(t, c, data, prev)
	})
}

// Bodies for the benchmarks, as OpenAI sends them: a content chunk
// (273 bytes), the final usage chunk (447) and a chat.completion (748).
const (
	benchContentChunk = `{"id":"chatcmpl-AbCdEfGhIjKlMnOpQrStUvWxYz012","object":"chat.completion.chunk","created":1733000000,"model":"gpt-4o-mini-2024-07-18","system_fingerprint":"fp_0ba0d124f1","choices":[{"index":0,"delta":{"content":" word"},"logprobs":null,"finish_reason":null}],"usage":null}`
	benchUsageChunk   = `{"id":"chatcmpl-AbCdEfGhIjKlMnOpQrStUvWxYz012","object":"chat.completion.chunk","created":1733000000,"model":"gpt-4o-mini-2024-07-18","system_fingerprint":"fp_0ba0d124f1","choices":[],"usage":{"prompt_tokens":412,"completion_tokens":20,"total_tokens":432,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}}`
	benchCompletion   = `{"id":"chatcmpl-AbCdEfGhIjKlMnOpQrStUvWxYz012","object":"chat.completion","created":1733000000,"model":"gpt-4o-mini-2024-07-18","choices":[{"index":0,"message":{"role":"assistant","content":"The capital of France is Paris. It has been the country's capital since the 10th century and is known for the Eiffel Tower, the Louvre and its caf\u00e9s.","refusal":null,"annotations":[]},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":412,"completion_tokens":38,"total_tokens":450,"prompt_tokens_details":{"cached_tokens":128,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}},"service_tier":"default","system_fingerprint":"fp_0ba0d124f1"}`
)

// BenchmarkReply compares each reply reader with its old version on the
// same body, so one run (-count N interleaves them) gives both numbers.
func BenchmarkReply(b *testing.B) {
	c, err := New(Config{Name: "oa", BaseURL: "http://upstream.example/v1"}, nil)
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name string
		body string
		read func(s *stream, data []byte) (*router.Chunk, error)
	}{
		{"chunk=content/new", benchContentChunk, (*stream).chunk},
		{"chunk=content/old", benchContentChunk, (*stream).chunkOld},
		{"chunk=usage/new", benchUsageChunk, (*stream).chunk},
		{"chunk=usage/old", benchUsageChunk, (*stream).chunkOld},
		{"whole/new", benchCompletion, func(s *stream, d []byte) (*router.Chunk, error) { return s.c.wholeChunk(d) }},
		{"whole/old", benchCompletion, func(s *stream, d []byte) (*router.Chunk, error) { return s.c.wholeChunkOld(d) }},
	} {
		b.Run(fmt.Sprintf("%s/%dB", bc.name, len(bc.body)), func(b *testing.B) {
			data := []byte(bc.body)
			s := &stream{c: c, model: "gpt-4o-mini-2024-07-18"}
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := bc.read(s, data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
