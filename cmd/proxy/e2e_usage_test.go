package main

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"llmproxy/store/sqlite"
)

const usageMasterKey = "mk-usage-test-7c1e"

// usageProxy is a proxy whose ledger is a SQLite file in its own temp dir.
type usageProxy struct {
	*e2e
	dir string
}

// startUsageProxy runs the e2e config with data_dir in a temp dir, the
// given master key ("" for none) and a price on demo-chat; edit changes
// the config further.
func startUsageProxy(t *testing.T, master string, edit ...func(*Config)) *usageProxy {
	t.Helper()
	return startUsageProxyOpts(t, master, nil, edit...)
}

// startUsageProxyOpts is startUsageProxy with startProxy's options.
func startUsageProxyOpts(t *testing.T, master string, opts []proxyOption, edit ...func(*Config)) *usageProxy {
	t.Helper()
	env := map[string]string{"FAKE_URL": "http://127.0.0.1:9", "UPSTREAM_KEY": providerKey, "TEAM_KEY": teamKeyDefault}
	cfg := parseTestConfig(t, e2eConfig, env)
	dir := t.TempDir()
	cfg.Server.DataDir, cfg.Server.MasterKey = dir, Secret(master)
	for i := range cfg.Models {
		if cfg.Models[i].Name == "demo-chat" {
			cfg.Models[i].Pricing = &PricingConfig{InputPerMTok: 1, OutputPerMTok: 2}
		}
	}
	for _, f := range edit {
		f(cfg)
	}
	return &usageProxy{e2e: &e2e{proxy: startProxy(t, cfg, append([]proxyOption{withSecrets(usageMasterKey)}, opts...)...), t: t}, dir: dir}
}

// sentUsage is what the proxy told the client about one request.
type sentUsage struct {
	team                   string
	prompt, completion     int
	alias, route           string
	stream, hasCompletions bool
}

// send makes one request and returns its request id and reported usage.
func (p *usageProxy) send(key, path, body string, stream bool) (string, sentUsage) {
	t := p.t
	t.Helper()
	resp, b := p.do("POST", path, body, authHeader(key))
	if resp.StatusCode != 200 {
		t.Fatalf("POST %s = %d %s; want 200", path, resp.StatusCode, b)
	}
	var u struct {
		Usage *struct {
			Prompt     int `json:"prompt_tokens"`
			Completion int `json:"completion_tokens"`
		} `json:"usage"`
	}
	if stream {
		evs := sseEvents(t, b)
		if len(evs) < 2 || evs[len(evs)-1] != "[DONE]" {
			t.Fatalf("stream did not end with [DONE]: %q", evs)
		}
		if err := json.Unmarshal([]byte(evs[len(evs)-2]), &u); err != nil {
			t.Fatalf("usage chunk: %v", err)
		}
	} else if err := json.Unmarshal(b, &u); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	if u.Usage == nil {
		t.Fatalf("%s reply has no usage: %s", path, b)
	}
	return resp.Header.Get("X-Request-Id"), sentUsage{prompt: u.Usage.Prompt, completion: u.Usage.Completion, stream: stream}
}

// report fetches a usage report and decodes it.
func (p *usageProxy) report(path, key string) (int, usageReport, []byte) {
	p.t.Helper()
	var hdr map[string]string
	if key != "" {
		hdr = authHeader(key)
	}
	resp, b := p.do("GET", path, "", hdr)
	var rep usageReport
	if resp.StatusCode == 200 {
		if err := json.Unmarshal(b, &rep); err != nil {
			p.t.Fatalf("decode %s: %v\n%s", path, err, b)
		}
	}
	return resp.StatusCode, rep, b
}

// TestE2EUsageLedgerSurvivesRestart sends streamed and plain requests,
// shuts the proxy down gracefully and finds exactly one row per request,
// with the tokens the client was told, in the SQLite file.
func TestE2EUsageLedgerSurvivesRestart(t *testing.T) {
	p := startUsageProxy(t, usageMasterKey)
	chat := func(stream bool) string {
		return fmt.Sprintf(`{"model":"demo-chat","stream":%v,"stream_options":%s,"messages":[{"role":"user","content":"Say hello. %s"}]}`,
			stream, map[bool]string{true: `{"include_usage":true}`, false: "null"}[stream], promptCanary)
	}
	want := map[string]sentUsage{}
	add := func(team, key, alias, route, path, body string, stream bool) {
		id, u := p.send(key, path, body, stream)
		u.team, u.alias, u.route = team, alias, route
		if _, dup := want[id]; dup || id == "" {
			t.Fatalf("request id %q is empty or repeated", id)
		}
		want[id] = u
	}
	for i := range 6 {
		add("default", teamKeyDefault, "demo-chat", routeChat, "/v1/chat/completions", chat(i%2 == 0), i%2 == 0)
	}
	for i := range 3 {
		add("limited", teamKeyLimited, "demo-chat", routeChat, "/v1/chat/completions", chat(i == 0), i == 0)
	}
	add("default", teamKeyDefault, "demo-embed", routeEmbed, "/v1/embeddings", `{"model":"demo-embed","input":["one two three"]}`, false)

	day := time.Now().UTC().Format(usageDate)
	q := "/v1/usage?start=" + time.Now().UTC().AddDate(0, 0, -1).Format(usageDate) + "&end=" + time.Now().UTC().AddDate(0, 0, 1).Format(usageDate)
	var rep usageReport
	if !eventually(5*time.Second, func() bool { _, rep, _ = p.report(q, teamKeyLimited); return rep.Totals.Requests == 3 }) {
		t.Fatalf("/v1/usage for limited: totals = %+v; want 3 requests once the ledger flushed", rep.Totals)
	}
	var limPrompt, limCompl int64
	for _, u := range want {
		if u.team == "limited" {
			limPrompt, limCompl = limPrompt+int64(u.prompt), limCompl+int64(u.completion)
		}
	}
	wantCost := (float64(limPrompt)*1 + float64(limCompl)*2) / 1e6
	if rep.Team != "limited" || len(rep.Data) != 1 || rep.Data[0].Model != "demo-chat" || rep.Data[0].Date != day || rep.Data[0].Team != "" {
		t.Errorf("/v1/usage for limited = %+v; want one demo-chat bucket for %s and no other team", rep, day)
	}
	if rep.Totals.PromptTokens != limPrompt || rep.Totals.CompletionTokens != limCompl || math.Abs(rep.Totals.CostUSD-wantCost) > 1e-12 {
		t.Errorf("/v1/usage totals = %+v; want prompt %d, completion %d, cost %g", rep.Totals, limPrompt, limCompl, wantCost)
	}
	if _, rep, body := p.report(q, teamKeyDefault); rep.Totals.Requests != 7 || len(rep.Data) != 2 || !strings.Contains(string(body), `"budget":null`) {
		t.Errorf("/v1/usage for default = %s; want 7 requests over demo-chat and demo-embed, budget null", body)
	}

	// These are still queued when the shutdown starts (the ledger flushes
	// every second): Close must write them.
	for i := range 4 {
		add("default", teamKeyDefault, "demo-chat", routeChat, "/v1/chat/completions", chat(i < 2), i < 2)
	}
	if err := p.stop(5 * time.Second); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if p.serveErr != nil {
		t.Fatalf("Serve: %v", p.serveErr)
	}
	checkLedgerFile(t, filepath.Join(p.dir, sqlite.FileName), want)
}

// checkLedgerFile reopens the SQLite file and matches its rows to want.
func checkLedgerFile(t *testing.T, path string, want map[string]sentUsage) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT request_id, team, key_id, alias, route, prompt_tokens, completion_tokens, stream, status, outcome, cost_usd FROM usage_ledger`)
	if err != nil {
		t.Fatalf("query: %v", err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		n++
		var id, team, keyID, alias, route, outcome string
		var prompt, compl, status int
		var stream bool
		var cost float64
		if err := rows.Scan(&id, &team, &keyID, &alias, &route, &prompt, &compl, &stream, &status, &outcome, &cost); err != nil {
			t.Fatalf("scan: %v", err)
		}
		w, ok := want[id]
		if !ok {
			t.Errorf("row for unknown request %q", id)
			continue
		}
		if team != w.team || alias != w.alias || route != w.route || prompt != w.prompt || compl != w.completion ||
			stream != w.stream || status != 200 || outcome != "ok" || !strings.HasPrefix(keyID, "key_") {
			t.Errorf("row %s = team %s key %s alias %s route %s tokens %d/%d stream %v status %d outcome %s; want %+v",
				id, team, keyID, alias, route, prompt, compl, stream, status, outcome, w)
		}
		if w.alias == "demo-chat" && math.Abs(cost-(float64(w.prompt)+2*float64(w.completion))/1e6) > 1e-15 {
			t.Errorf("row %s cost = %g; want the demo-chat price of its tokens", id, cost)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if n != len(want) {
		t.Errorf("ledger has %d rows; want exactly %d", n, len(want))
	}
}

func TestE2EAdminUsage(t *testing.T) {
	p := startUsageProxy(t, usageMasterKey, func(c *Config) {
		c.Teams[1].Budget = &BudgetLimit{USD: 10, Tokens: 1000000, Period: "month"}
	})
	p.send(teamKeyDefault, "/v1/chat/completions", `{"model":"demo-chat","messages":[{"role":"user","content":"hi"}]}`, false)
	p.send(teamKeyLimited, "/v1/chat/completions", `{"model":"demo-chat","messages":[{"role":"user","content":"hi"}]}`, false)
	for _, tc := range []struct {
		name, key string
		want      int
	}{
		{"no key", "", 401},
		{"team key", teamKeyDefault, 401},
		{"wrong key", "mk-wrong", 401},
		{"master key", usageMasterKey, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, _, body := p.report("/admin/usage", tc.key)
			if status != tc.want {
				t.Fatalf("GET /admin/usage with %s = %d %s; want %d", tc.name, status, body, tc.want)
			}
			if status != 200 {
				errorShape(t, body)
			}
		})
	}
	var rep usageReport
	if !eventually(5*time.Second, func() bool { _, rep, _ = p.report("/admin/usage", usageMasterKey); return rep.Totals.Requests == 2 }) {
		t.Fatalf("/admin/usage totals = %+v; want 2 requests", rep.Totals)
	}
	if len(rep.Teams) != 2 || rep.Teams[0].Team != "default" || rep.Teams[1].Team != "limited" || rep.Teams[0].Totals.Requests != 1 {
		t.Errorf("/admin/usage teams = %+v; want default and limited with one request each", rep.Teams)
	}
	for _, b := range rep.Data {
		if b.Team == "" {
			t.Errorf("admin bucket %+v has no team", b)
		}
	}
	lim := rep.Teams[1]
	if b := lim.Budget; b == nil || b.Period != "month" || b.USDLimit == nil || *b.USDLimit != 10 || b.USDSpent == nil ||
		math.Abs(*b.USDSpent-lim.Totals.CostUSD) > 1e-9 || *b.TokensSpent != lim.Totals.TotalTokens ||
		b.ResetsAt.Day() != 1 || rep.Teams[0].Budget != nil {
		t.Errorf("/admin/usage budgets = %+v, %+v; want limited's month budget with the ledger's spend, none for default", lim.Budget, rep.Teams[0].Budget)
	}
	if _, b := p.do("GET", "/metrics", "", nil); !strings.Contains(string(b), "llmproxy_ledger_queue_depth") ||
		!strings.Contains(string(b), `llmproxy_ledger_dropped_total{reason="queue_full"} 0`) {
		t.Errorf("/metrics has no ledger gauge or drop counter")
	}
	if resp, b := p.do("GET", "/ready", "", nil); resp.StatusCode != 200 {
		t.Errorf("/ready = %d %s; want 200 with the database up", resp.StatusCode, b)
	}
}

func TestE2EUsageWithoutMasterKeyAndBadDates(t *testing.T) {
	p := startUsageProxy(t, "")
	if status, _, body := p.report("/admin/usage", usageMasterKey); status != 404 {
		t.Errorf("GET /admin/usage without server.master_key = %d %s; want 404", status, body)
	}
	for _, q := range []string{"?start=2025-13-01", "?end=yesterday", "?start=2025-03-02&end=2025-03-01", "?start=2020-01-01&end=2025-01-01"} {
		status, _, body := p.report("/v1/usage"+q, teamKeyDefault)
		if status != 400 {
			t.Errorf("GET /v1/usage%s = %d %s; want 400", q, status, body)
			continue
		}
		if _, typ, _ := errorShape(t, body); typ != "invalid_request_error" {
			t.Errorf("GET /v1/usage%s type = %s; want invalid_request_error", q, typ)
		}
	}
	if status, _, _ := p.report("/v1/usage", ""); status != 401 {
		t.Errorf("GET /v1/usage without a key = %d; want 401", status)
	}
	status, rep, body := p.report("/v1/usage", teamKeyDefault)
	now := time.Now().UTC()
	if status != 200 || rep.Start != now.Format("2006-01")+"-01" || !strings.HasPrefix(rep.End, now.Format("2006-01")) || rep.Data == nil {
		t.Errorf("GET /v1/usage = %d %s; want this month and an empty data list", status, body)
	}
}

func TestUsageRange(t *testing.T) {
	now := time.Date(2024, 2, 10, 15, 0, 0, 0, time.UTC)
	tests := []struct {
		start, end, wantFrom, wantTo string
	}{
		{"", "", "2024-02-01", "2024-02-29"},
		{"2024-01-15", "", "2024-01-15", "2024-02-29"},
		{"2024-02-03", "2024-02-03", "2024-02-03", "2024-02-03"},
	}
	for _, tc := range tests {
		from, to, err := usageRange(tc.start, tc.end, now)
		if err != nil || from.Format(usageDate) != tc.wantFrom || to.Format(usageDate) != tc.wantTo {
			t.Errorf("usageRange(%q, %q) = %s, %s, %v; want %s, %s", tc.start, tc.end, from, to, err, tc.wantFrom, tc.wantTo)
		}
	}
}
