package main

import (
	"encoding/json"
	"strings"
	"testing"

	"llmproxy/router"
)

// TestE2ERAGExplain: POST /v1/route/explain lists what would be retrieved
// (file, chunk, score) and counts the references in the budget's prompt,
// without calling the chat upstream or the reranker.
func TestE2ERAGExplain(t *testing.T) {
	e := startRAGE2E(t)
	body := `{"model":"%s","messages":[{"role":"user","content":"` + vacationQuestion + `"}]}`
	var withRAG, without struct {
		Retrieval *struct {
			Status  string          `json:"status"`
			Sources []router.Source `json:"sources"`
		} `json:"retrieval"`
		Stages []router.Note `json:"stages"`
	}
	for _, x := range []struct {
		model string
		out   any
	}{{"gpt-rag", &withRAG}, {"gpt-test", &without}} {
		resp, b := e.do("POST", "/v1/route/explain", strings.Replace(body, "%s", x.model, 1), authHeader(teamKeyDefault))
		if resp.StatusCode != 200 || json.Unmarshal(b, x.out) != nil {
			t.Fatalf("explain %s = %d %s", x.model, resp.StatusCode, b)
		}
	}
	r := withRAG.Retrieval
	if r == nil || r.Status != "used" || len(r.Sources) != 2 || r.Sources[0].FileID != "file-vacation" || r.Sources[0].ChunkIndex != 0 || r.Sources[0].Score <= 0 {
		t.Fatalf("retrieval = %+v; want the 2 best chunks, the vacation one first, with scores", r)
	}
	var notes []string
	for _, n := range withRAG.Stages {
		if n.Stage == "rag" {
			notes = append(notes, n.What)
		}
	}
	if len(notes) != 2 || !strings.Contains(notes[0], "not run on a dry run") || !strings.Contains(notes[1], "charged to the team") {
		t.Errorf("rag notes = %q; want the rerank skipped and the charged search", notes)
	}
	if without.Retrieval != nil {
		t.Errorf("explain without RAG has retrieval %+v", without.Retrieval)
	}
	if e.up.count() != 0 || e.stores.searched() != 1 {
		t.Errorf("%d upstream calls, %d searches; want none and one", e.up.count(), e.stores.searched())
	}
}
