package main

import (
	"encoding/json"
	"net"
	"strings"
	"testing"
	"time"
)

// TestE2EDatabaseUnreachableAtStart (issue 17 item 9): with database.url
// pointing at a port where nothing listens, the proxy still builds and
// serves chat, /ready is 200 (requests do not need the ledger's database),
// the start logs a warning, and /v1/usage answers an OpenAI-shaped 503.
// The old code failed buildServer ("usage ledger: postgres: connect").
func TestE2EDatabaseUnreachableAtStart(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // a port where nothing listens: connection refused
	// The ledger cannot write the request's row: it logs the drop at
	// ERROR, and Shutdown reports it (checked below).
	p := startUsageProxyOpts(t, usageMasterKey, []proxyOption{expectErrorLogs()}, func(c *Config) {
		c.Database.URL = Secret("postgres://llmproxy:s3cret-db-pass@" + addr + "/ledger?sslmode=disable&connect_timeout=2")
	})
	body := `{"model":"demo-chat","messages":[{"role":"user","content":"Say hello."}]}`
	p.send(teamKeyDefault, "/v1/chat/completions", body, false)
	if resp, b := p.do("GET", "/ready", "", nil); resp.StatusCode != 200 {
		t.Errorf("/ready with the database down = %d %s; want 200", resp.StatusCode, b)
	}
	resp, b := p.do("GET", "/v1/usage", "", authHeader(teamKeyDefault))
	var e struct {
		Error *struct {
			Message string  `json:"message"`
			Type    string  `json:"type"`
			Param   *string `json:"param"`
			Code    *string `json:"code"`
		} `json:"error"`
	}
	if resp.StatusCode != 503 || json.Unmarshal(b, &e) != nil || e.Error == nil || e.Error.Type != "api_error" ||
		!strings.Contains(e.Error.Message, "usage database is unavailable") || resp.Header.Get("X-Request-Id") == "" {
		t.Errorf("/v1/usage with the database down = %d %s; want an OpenAI-shaped 503 with x-request-id", resp.StatusCode, b)
	}
	if err := p.stop(time.Second); err == nil || !strings.Contains(err.Error(), "records dropped") {
		t.Errorf("Shutdown = %v; want the ledger's dropped-records error", err)
	}
	logs := p.logs.String()
	if !strings.Contains(logs, "usage database unavailable at start") {
		t.Errorf("no startup warning about the database in the logs:\n%s", logs)
	}
	if strings.Contains(logs, "s3cret-db-pass") || strings.Contains(string(b), "s3cret-db-pass") {
		t.Errorf("the database password leaked into the logs or the reply")
	}
}
