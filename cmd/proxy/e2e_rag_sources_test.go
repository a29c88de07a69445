package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"llmproxy/router"
)

// decodeSources reads a "sources" value.
func decodeSources(t *testing.T, raw string) []router.Source {
	t.Helper()
	var s []router.Source
	if err := json.Unmarshal([]byte(raw), &s); err != nil {
		t.Fatalf("sources %q: %v", raw, err)
	}
	return s
}

// TestE2ERAGSources: the references RAG used come back as "sources" on
// the chat.completion object and on the first chunk of a stream only, in
// the order of their [n] numbers; openai-go parses both (the field lands
// in JSON.ExtraFields), and a request without RAG has none.
func TestE2ERAGSources(t *testing.T) {
	e := startRAGE2E(t)
	c := e.noRetry()
	msgs := []openai.ChatCompletionMessageParamUnion{openai.SystemMessage("Be brief."), openai.UserMessage(vacationQuestion)}
	out, err := c.Chat.Completions.New(withTimeout(t), openai.ChatCompletionNewParams{Model: "gpt-rag", Messages: msgs})
	if err != nil {
		t.Fatal(err)
	}
	src := decodeSources(t, out.JSON.ExtraFields["sources"].Raw())
	if len(src) != 2 || src[0] != (router.Source{Index: 1, VectorStoreID: "vs_handbook", FileID: "file-vacation", Filename: "vacation.md", ChunkIndex: 0, Score: src[0].Score}) ||
		src[0].Score <= 0 || src[1].Index != 2 {
		t.Errorf("sources = %+v; want the vacation chunk first, 2 in all (rerank_top_k)", src)
	}
	if out.Choices[0].Message.Content != strings.Join(defaultReply.content, "") {
		t.Errorf("content = %q; want the upstream's reply", out.Choices[0].Message.Content)
	}

	stream := c.Chat.Completions.NewStreaming(withTimeout(t), openai.ChatCompletionNewParams{Model: "gpt-rag", Messages: msgs})
	n := 0
	for stream.Next() {
		raw := stream.Current().JSON.ExtraFields["sources"].Raw()
		switch {
		case n == 0 && (raw == "" || decodeSources(t, raw)[0].FileID != "file-vacation"):
			t.Errorf("first chunk's sources = %q; want the vacation chunk first", raw)
		case n > 0 && raw != "":
			t.Errorf("chunk %d has sources %s; want them on the first chunk only", n, raw)
		}
		n++
	}
	if err := stream.Err(); err != nil || n < 2 {
		t.Fatalf("stream: %v after %d chunks", err, n)
	}

	var resp *http.Response
	plain, err := c.Chat.Completions.New(withTimeout(t), openai.ChatCompletionNewParams{Model: "gpt-test", Messages: msgs}, option.WithResponseInto(&resp))
	if err != nil || plain.JSON.ExtraFields["sources"].Valid() || resp.Header.Get("x-llmproxy-rag") != "" {
		t.Errorf("without RAG: %v, sources %q, x-llmproxy-rag %q; want none", err, plain.JSON.ExtraFields["sources"].Raw(), resp.Header.Get("x-llmproxy-rag"))
	}
}
