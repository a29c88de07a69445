package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestMemoryE2ENode runs testdata/node/memory.cjs with the official Node
// SDK (npm "openai"). It needs node on PATH and LLMPROXY_TEST_NODE_MODULES
// naming a node_modules directory that holds openai (npm install openai);
// without them it skips.
func TestMemoryE2ENode(t *testing.T) {
	node, mods := nodeSDK(t)
	e := startE2E(t)
	out := runNode(t, node, mods, "testdata/node/memory.cjs", "PROXY_URL="+e.url, "PROXY_KEY="+teamKeyDefault)
	var res struct {
		Conv   string `json:"conv"`
		Object string `json:"object"`
		Items  []struct{ ID, Type, Role string }
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("node output %s: %v", out, err)
	}
	if !strings.HasPrefix(res.Conv, "conv_") || res.Object != "conversation" || len(res.Items) != 4 || res.Items[0].Role != "user" || res.Items[1].Role != "assistant" {
		t.Errorf("node saw %s; want a conversation with 4 items, user first", out)
	}
	got := upstreamTurns(t, e.up.last(t).Body)
	if len(got) != 3 || got[0] != "user:my name is Ada" || got[2] != "user:what is my name?" {
		t.Errorf("upstream messages = %q; want both turns", got)
	}
}

// nodeSDK is node's path and LLMPROXY_TEST_NODE_MODULES (a node_modules
// holding npm "openai"); without them the test skips (fails under CI).
func nodeSDK(t *testing.T) (node, mods string) {
	t.Helper()
	mods = os.Getenv("LLMPROXY_TEST_NODE_MODULES")
	node, err := exec.LookPath("node")
	if err != nil || mods == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("CI: node and LLMPROXY_TEST_NODE_MODULES are required (make test sets them up via scripts/services.sh)")
		}
		t.Skip("needs node and LLMPROXY_TEST_NODE_MODULES (a node_modules with the openai package)")
	}
	return node, mods
}

// runNode runs script with the SDK on NODE_PATH and env added, and
// returns what it printed; the test fails with its stderr if it fails.
func runNode(t *testing.T, node, mods, script string, env ...string) []byte {
	t.Helper()
	cmd := exec.Command(node, script)
	cmd.Env = append(append(os.Environ(), "NODE_PATH="+mods), env...)
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("node %s: %v\n%s", script, err, stderr)
	}
	return out
}
