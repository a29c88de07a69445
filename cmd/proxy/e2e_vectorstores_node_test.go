package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// TestVectorStoresE2ENode runs testdata/node/vectorstores.cjs with the
// official Node SDK on SQLite (needs node and LLMPROXY_TEST_NODE_MODULES,
// like TestMemoryE2ENode).
func TestVectorStoresE2ENode(t *testing.T) {
	node, mods := nodeSDK(t) // before the proxy starts: a skip stops it at once
	runVectorStoresNode(t, node, mods, startE2EWith(t, vectorConfig("", "")))
}

// runVectorStoresNode drives e with the Node script and checks what it saw.
func runVectorStoresNode(t *testing.T, node, mods string, e *e2e) {
	t.Helper()
	docsJSON, _ := json.Marshal(docs)
	cmd := exec.Command(node, "testdata/node/vectorstores.cjs")
	cmd.Env = append(os.Environ(), "NODE_PATH="+mods, "PROXY_URL="+e.url, "PROXY_KEY="+teamKeyDefault, "DOCS="+string(docsJSON))
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("node: %v\n%s", err, stderr)
	}
	type counts struct{ InProgress, Completed, Failed, Cancelled, Total int }
	var res struct {
		VS          string `json:"vs"`
		StoreStatus string `json:"store_status"`
		BatchStatus string `json:"batch_status"`
		BatchCounts struct {
			Completed int `json:"completed"`
			Total     int `json:"total"`
		} `json:"batch_counts"`
		PollMs  int `json:"poll_ms"`
		Results []struct {
			FileID, Filename, Text string
			Score                  float64
		} `json:"results"`
		Listed      []string `json:"listed"`
		AllFiles    []string `json:"all_files"`
		Deleted     bool     `json:"deleted"`
		CountsAfter struct {
			Completed int `json:"completed"`
			Total     int `json:"total"`
		} `json:"counts_after"`
		Missing int `json:"missing"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("node output %s: %v", out, err)
	}
	if !strings.HasPrefix(res.VS, "vs_") || res.BatchStatus != "completed" || res.BatchCounts.Completed != 2 || res.BatchCounts.Total != 2 {
		t.Errorf("node saw store %s, batch %s %+v; want a completed batch of 2", res.VS, res.BatchStatus, res.BatchCounts)
	}
	// The SDK polls every 5 s unless openai-poll-after-ms says less.
	if res.PollMs > 4500 {
		t.Errorf("uploadAndPoll took %d ms; the openai-poll-after-ms header should keep it under the SDK's 5 s default", res.PollMs)
	}
	if len(res.Results) == 0 || res.Results[0].Filename != "rockets.txt" || res.Results[0].Score <= 0 || res.Results[0].Score > 1 ||
		!strings.Contains(res.Results[0].Text, "thrust") {
		t.Errorf("search results = %+v; want rockets.txt first with a score in (0, 1]", res.Results)
	}
	if len(res.Listed) != 3 || len(slices.Compact(slices.Sorted(slices.Values(res.Listed)))) != 3 {
		t.Errorf("vectorStores.files.list, one per page = %v; want the 3 files once each", res.Listed)
	}
	if len(res.AllFiles) != 3 {
		t.Errorf("files.list, two per page = %v; want 3 files", res.AllFiles)
	}
	if !res.Deleted || res.CountsAfter.Total != 2 || res.CountsAfter.Completed != 2 || res.Missing != 404 {
		t.Errorf("after files.delete: deleted %v, counts %+v, retrieve status %d; want the store down to 2 files and 404",
			res.Deleted, res.CountsAfter, res.Missing)
	}
}
