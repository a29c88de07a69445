package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
)

// TestE2ERAGRecallStore is issue 12's acceptance test on the real vector
// stores of issue 11: it builds a store of a few dozen documents through
// the Files and Vector Stores API (openai-go's UploadAndPoll), asks one
// question per document whose answer sits in one chunk, plain and
// streamed, and checks that the upstream receives that chunk in the
// system message and that "sources" names its file; it reports recall@3
// (the answer's file among the first three sources). It then runs the
// Node SDK script (testdata/node/rag.cjs) against the same store, and
// checks that another team naming the store gets 404.
// The store is issue 11's, on SQLite, with demo-embed's hash embeddings.
func TestE2ERAGRecallStore(t *testing.T) {
	up := newFakeUpstream(t)
	cfg := parseTestConfig(t, ragConfig+"vector_stores: {embedding_model: demo-embed}\n", map[string]string{"FAKE_URL": up.srv.URL, "UPSTREAM_KEY": providerKey, "TEAM_KEY": teamKeyDefault})
	cfg.Models[0].RAG.RerankTopK = 3 // gpt-rag: search 5, rerank to 3
	e := &e2e{proxy: startProxy(t, cfg), t: t, up: up}
	c := e.noRetry()
	// The whole test shares one deadline: 36 uploads and 36 chats took
	// over 10 s under -race on a loaded machine in a CI run.
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	docs := recallDocs()
	vs, err := c.VectorStores.New(ctx, openai.VectorStoreNewParams{Name: openai.String("handbook")})
	if err != nil {
		t.Fatalf("create store: %v", err)
	}
	files := make([]openai.FileNewParams, len(docs))
	for i, d := range docs {
		files[i] = openai.FileNewParams{File: openai.File(strings.NewReader(d.text), d.filename, "text/markdown"),
			Purpose: openai.FilePurposeAssistants}
	}
	batch, err := c.VectorStores.FileBatches.UploadAndPoll(ctx, vs.ID, files, nil, 50)
	if err != nil || batch.Status != openai.VectorStoreFileBatchStatusCompleted || int(batch.FileCounts.Completed) != len(docs) {
		t.Fatalf("upload: %v, batch %+v; want %d files completed", err, batch, len(docs))
	}
	fileID := map[string]string{} // filename → file id
	pages := c.VectorStores.Files.ListAutoPaging(ctx, vs.ID, openai.VectorStoreFileListParams{})
	for pages.Next() {
		f := pages.Current()
		got, err := c.Files.Get(ctx, f.ID)
		if err != nil {
			t.Fatal(err)
		}
		fileID[got.Filename] = f.ID
	}
	if err := pages.Err(); err != nil || len(fileID) != len(docs) {
		t.Fatalf("list files: %v, %d files; want %d", err, len(fileID), len(docs))
	}

	hits := 0
	for i, d := range docs {
		params := openai.ChatCompletionNewParams{Model: "gpt-rag", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage(d.question)}}
		var raw string
		if i%2 == 0 {
			out, err := c.Chat.Completions.New(ctx, params)
			if err != nil {
				t.Fatalf("%s: %v", d.question, err)
			}
			raw = out.JSON.ExtraFields["sources"].Raw()
		} else {
			s := c.Chat.Completions.NewStreaming(ctx, params)
			for s.Next() {
				if raw == "" {
					raw = s.Current().JSON.ExtraFields["sources"].Raw()
				}
			}
			if err := s.Err(); err != nil {
				t.Fatalf("%s (stream): %v", d.question, err)
			}
		}
		sys := upstreamMessages(t, up.last(t).Body)[0]
		src := decodeSources(t, raw)
		found := false
		for j := 0; j < min(3, len(src)); j++ {
			found = found || src[j].FileID == fileID[d.filename]
		}
		if found && strings.Contains(sys.Text(), d.fact) {
			hits++
		} else {
			t.Logf("miss: %q: sources %+v", d.question, src)
		}
	}
	recall := float64(hits) / float64(len(docs))
	t.Logf("recall@3 = %.3f (%d of %d questions)", recall, hits, len(docs))
	if recall < 0.9 {
		t.Errorf("recall@3 = %.3f; want at least 0.9", recall)
	}

	node, mods := nodeSDK(t)
	out := runNode(t, node, mods, "testdata/node/rag.cjs", "PROXY_URL="+e.url, "PROXY_KEY="+teamKeyDefault, "QUESTION="+docs[0].question)
	if !strings.Contains(string(out), fileID[docs[0].filename]) {
		t.Errorf("node saw %s; want the sources to name %s", out, fileID[docs[0].filename])
	}

	var resp *http.Response
	_, err = e.noRetry(option.WithAPIKey("sk-other")).Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: "gpt-test",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage(docs[0].question)}},
		option.WithHeader("x-llmproxy-vector-store-ids", vs.ID), option.WithResponseInto(&resp))
	if resp == nil || resp.StatusCode != 404 {
		t.Errorf("another team naming %s: %v; want 404", vs.ID, err)
	}
}

// recallDoc is one document of the recall corpus: one fact, and the
// question only that fact answers.
type recallDoc struct {
	filename, text, fact, question string
}

// recallDocs are 36 short documents about different offices, each with
// one fact (a wifi password) and the same filler, so only the office's
// name tells them apart.
func recallDocs() []recallDoc {
	cities := []string{"Amsterdam", "Berlin", "Chicago", "Denver", "Edinburgh", "Florence", "Geneva", "Helsinki", "Istanbul",
		"Jakarta", "Kyoto", "Lisbon", "Madrid", "Nairobi", "Oslo", "Prague", "Quito", "Riga", "Seoul", "Toronto", "Utrecht",
		"Vienna", "Warsaw", "Xiamen", "Yokohama", "Zagreb", "Athens", "Bogota", "Cairo", "Dublin", "Essen", "Fukuoka",
		"Glasgow", "Hanoi", "Ithaca", "Johannesburg"}
	out := make([]recallDoc, len(cities))
	for i, c := range cities {
		fact := fmt.Sprintf("The guest wifi password at the %s office is %s-%03d.", c, strings.ToLower(c[:3]), 17*i+101)
		out[i] = recallDoc{filename: strings.ToLower(c) + ".md", fact: fact,
			question: "What is the guest wifi password at the " + c + " office?",
			text: "# " + c + " office\n\nThe office is open from 8 to 18 on weekdays. Visitors sign in at the front desk.\n\n" + fact +
				"\n\nPrinters are on every floor; ask the front desk for paper.\n"}
	}
	return out
}
