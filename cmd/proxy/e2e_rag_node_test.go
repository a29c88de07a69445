package main

import (
	"encoding/json"
	"strings"
	"testing"

	"llmproxy/router"
)

// TestRAGE2ENode runs testdata/node/rag.cjs with the official Node SDK:
// plain and streamed replies on a RAG alias parse, "sources" is on the
// chat.completion and on the first chunk only, and the body field
// vector_store_ids works from the SDK. Like TestMemoryE2ENode it needs
// node and LLMPROXY_TEST_NODE_MODULES, and skips without them.
func TestRAGE2ENode(t *testing.T) {
	node, mods := nodeSDK(t)
	e := startRAGE2E(t)
	out := runNode(t, node, mods, "testdata/node/rag.cjs", "PROXY_URL="+e.url, "PROXY_KEY="+teamKeyDefault, "QUESTION="+vacationQuestion)
	var res struct {
		Content      string            `json:"content"`
		Sources      []router.Source   `json:"sources"`
		Header       string            `json:"header"`
		Text         string            `json:"text"`
		ChunkSources []json.RawMessage `json:"chunkSources"`
		BodySources  []router.Source   `json:"bodySources"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("node output %s: %v", out, err)
	}
	reply := strings.Join(defaultReply.content, "")
	if res.Content != reply || res.Text != reply {
		t.Errorf("node read %q and streamed %q; want %q", res.Content, res.Text, reply)
	}
	if len(res.Sources) != 2 || res.Sources[0].FileID != "file-vacation" || !strings.HasPrefix(res.Header, "file-vacation") {
		t.Errorf("sources = %+v, header %q; want the vacation chunk first", res.Sources, res.Header)
	}
	if len(res.ChunkSources) < 2 || string(res.ChunkSources[0]) == "null" || strings.Contains(string(joinRaw(res.ChunkSources[1:])), "file-") {
		t.Errorf("chunk sources = %s; want them on the first chunk only", joinRaw(res.ChunkSources))
	}
	if len(res.BodySources) == 0 || res.BodySources[0].FileID != "file-vacation" {
		t.Errorf("vector_store_ids from the SDK: sources %+v; want the vacation chunk", res.BodySources)
	}
	checkVacationPromptNoSystem(t, e.up.last(t).Body)
}

func joinRaw(rs []json.RawMessage) []byte {
	var b []byte
	for _, r := range rs {
		b = append(append(b, r...), ' ')
	}
	return b
}

// checkVacationPromptNoSystem: the upstream got the references first,
// then the question, without vector_store_ids.
func checkVacationPromptNoSystem(t *testing.T, body []byte) {
	t.Helper()
	ms := upstreamMessages(t, body)
	if len(ms) != 2 || ms[0].Role != "system" || !strings.Contains(ms[0].Text(), "[1] vacation.md\n"+handbook[0].Content) || ms[1].Role != "user" {
		t.Errorf("upstream messages = %+v; want the references, then the question", ms)
	}
	if router.TopField(body, "vector_store_ids") != nil {
		t.Errorf("upstream body has vector_store_ids: %s", body)
	}
}
