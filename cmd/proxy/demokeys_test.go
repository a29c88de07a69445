package main

import (
	"encoding/hex"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestExampleKeyHashesInSync: exampleKeyHashes is exactly the keys
// configs/example.yaml loads with no environment plus every sha256: key
// written in it (comments included: operators uncomment samples).
func TestExampleKeyHashesInSync(t *testing.T) {
	data, err := os.ReadFile("../../configs/example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c, err := ParseConfig(data, cfgEnv(map[string]string{}))
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, tm := range c.Teams {
		for _, k := range tm.APIKeys {
			h, err := keyHash(k.Value())
			if err != nil {
				t.Fatal(err)
			}
			want = append(want, hex.EncodeToString(h[:]))
		}
	}
	for _, m := range regexp.MustCompile(`sha256:([0-9a-f]{64})`).FindAllStringSubmatch(string(data), -1) {
		want = append(want, m[1])
	}
	slices.Sort(want)
	want = slices.Compact(want)
	got := slices.Sorted(slices.Values(exampleKeyHashes))
	if !slices.Equal(got, want) {
		t.Errorf("exampleKeyHashes = %q\nconfigs/example.yaml has %q", got, want)
	}
}

// TestDemoKeysRefusedOffLoopback: the example's public key opens only a
// loopback listener, unless server.allow_demo_keys opts in or the
// operator set their own key.
func TestDemoKeysRefusedOffLoopback(t *testing.T) {
	data, err := os.ReadFile("../../configs/example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, listen string
		env          map[string]string
		allow, ok    bool
	}{
		{"loopback v4", "127.0.0.1:8080", nil, false, true},
		{"loopback v6", "[::1]:8080", nil, false, true},
		{"localhost", "localhost:8080", nil, false, true},
		{"all interfaces", "0.0.0.0:8080", nil, false, false},
		{"empty host", ":8080", nil, false, false},
		{"LAN address", "10.1.2.3:8080", nil, false, false},
		{"all v6", "[::]:8080", nil, false, false},
		{"opted in", "0.0.0.0:8080", nil, true, true},
		{"own key", "0.0.0.0:8080", map[string]string{"LLMPROXY_DEMO_KEY": "sk-my-own-long-key"}, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := tc.env
			if env == nil {
				env = map[string]string{}
			}
			c, err := ParseConfig(data, cfgEnv(env))
			if err != nil {
				t.Fatal(err)
			}
			c.Server.Listen, c.Server.AllowDemoKeys = tc.listen, tc.allow
			err = checkDemoKeys(c)
			if tc.ok && err != nil {
				t.Errorf("checkDemoKeys = %v; want nil", err)
			}
			if !tc.ok && (err == nil || !strings.Contains(err.Error(), "server.allow_demo_keys") ||
				!strings.Contains(err.Error(), "teams[0].api_keys[0]") || !strings.Contains(err.Error(), tc.listen)) {
				t.Errorf("checkDemoKeys = %v; want a refusal naming the key's path, the address and the opt-in", err)
			}
			if err != nil && strings.Contains(err.Error(), "sk-demo") {
				t.Errorf("error quotes the key: %v", err)
			}
		})
	}
}

// TestRunRefusesDemoKeyOnPublicListen drives main's path: the example
// config with -listen 0.0.0.0 must not start.
func TestRunRefusesDemoKeyOnPublicListen(t *testing.T) {
	t.Setenv("LLMPROXY_DEMO_KEY", "")
	t.Setenv("OPENAI_API_KEY", "")
	done := make(chan error, 1)
	go func() { done <- run([]string{"-config", "../../configs/example.yaml", "-listen", "0.0.0.0:0"}) }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "published in configs/example.yaml") {
			t.Errorf("run = %v; want the demo-key refusal", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run started serving the example config on 0.0.0.0")
	}
}

// TestShippedConfigsHaveNoDemoKeys: every other config in configs/ would
// start on a public address, and the image and deploy/ use docker.yaml.
func TestShippedConfigsHaveNoDemoKeys(t *testing.T) {
	paths, _ := filepath.Glob("../../configs/*.yaml")
	for _, p := range paths {
		if filepath.Base(p) == "example.yaml" {
			continue
		}
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		c, err := ParseConfig(data, cfgEnv(map[string]string{"LLMPROXY_API_KEY": "sk-docker-own-key"}))
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		c.Server.Listen = "0.0.0.0:8080"
		if err := checkDemoKeys(c); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
	for _, p := range []string{"../../Dockerfile", "../../deploy/k8s/deployment.yaml"} {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), "configs/docker.yaml") || regexp.MustCompile(`(?m)^[^#]*example\.yaml`).Match(b) {
			t.Errorf("%s must use configs/docker.yaml, not the example", p)
		}
	}
}
