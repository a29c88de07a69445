//go:build integration

package main

// The drain's promises against the real stores (issue 17 item 7): a stream
// longer than drain_timeout ends with an error event, and its budget
// settlement (Redis) and ledger row (PostgreSQL) land before either closes.

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestE2EDrainCutsSlowStream: a 10 s stream meets a 1 s drain. The client
// must see an OpenAI error event (server_shutting_down) and no [DONE]; the
// ledger row must be in PostgreSQL, the Redis reservation settled with
// the spend of what was served, and no log line may say a record was
// dropped or that Redis was closed.
func TestE2EDrainCutsSlowStream(t *testing.T) {
	t.Parallel()
	st := mustSharedStores(t)
	up := newFakeUpstream(t)
	up.handle(func(w http.ResponseWriter, r *http.Request, body []byte) {
		cs := chunks(tokenReply(200), parseAsk(body).includeUsage())
		sw := newSSEWriter(w)
		for _, c := range cs { // 200 chunks, 50 ms apart: 10 s
			if sw.event(c) != nil {
				return
			}
			select {
			case <-r.Context().Done():
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
		sw.done()
	})
	r := startReplicas(t, st, 1, up, nil, nil)[0]

	const id = "drain-cut-1"
	body := `{"model":"gpt-test","stream":true,"max_tokens":400,"messages":[{"role":"user","content":"hi"}]}`
	req, _ := http.NewRequest("POST", r.url+"/v1/chat/completions", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+replicaTeamKey)
	req.Header.Set("X-Request-Id", id)
	resp, err := r.hc.Do(req)
	if err != nil {
		t.Fatalf("POST: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("status %d: %s", resp.StatusCode, b)
	}
	rd := bufio.NewReader(resp.Body)
	for range 3 { // the stream is under way
		if _, err := readEvent(rd); err != nil {
			t.Fatalf("first events: %v", err)
		}
	}

	began := time.Now()
	// Stopped here, not by the cleanup, which would want no error.
	shutErr := r.stop(time.Second)
	if r.serveErr != nil {
		t.Errorf("Serve: %v", r.serveErr)
	}
	took := time.Since(began)
	if shutErr == nil {
		t.Error("Shutdown = nil; want the drain's deadline error (a stream was cut)")
	}
	if took > 5*time.Second {
		t.Errorf("Shutdown took %v; want about the 1 s drain", took)
	}

	rest, err := io.ReadAll(rd)
	if err != nil {
		t.Fatalf("rest of the stream: %v", err)
	}
	evs := sseEvents(t, rest)
	if len(evs) == 0 {
		t.Fatal("the stream ended with no event after the drain; want an error event")
	}
	last := evs[len(evs)-1]
	if strings.Contains(string(rest), "[DONE]") {
		t.Errorf("cut stream has [DONE]: %q", last)
	}
	msg, typ, code := errorShape(t, []byte(last))
	if typ != "api_error" || code != "server_shutting_down" || !strings.Contains(msg, "shutting down") {
		t.Errorf("last event = %s; want an api_error server_shutting_down event", last)
	}

	rows := st.ledger(t)
	if len(rows) != 1 || rows[0].requestID != id {
		t.Fatalf("ledger rows = %+v; want the one row of %s", rows, id)
	}
	if rows[0].completion <= 0 || rows[0].costUSD <= 0 {
		t.Errorf("ledger row %+v; want the served tokens and their cost", rows[0])
	}

	ctx := context.Background()
	res, err := st.rdb.Keys(ctx, st.prefix+":{b:capped}:res:*").Result()
	if err != nil || len(res) != 0 {
		t.Errorf("reservations left in Redis: %v (err %v); want none", res, err)
	}
	buds, err := st.rdb.Keys(ctx, st.prefix+":{b:capped}:bud:*").Result()
	if err != nil || len(buds) == 0 {
		t.Fatalf("budget counters in Redis: %v (err %v); want the team's", buds, err)
	}
	for _, k := range buds {
		n, err := st.rdb.HGet(ctx, k, "n").Result()
		nano, _ := strconv.ParseInt(n, 10, 64)
		if err != nil || nano <= 0 {
			t.Errorf("%s n = %q (err %v); want the settled spend > 0", k, n, err)
		}
		if want := int64(rows[0].costUSD*1e9 + 0.5); nano < want-1 || nano > want+1 {
			t.Errorf("%s n = %d nano-USD; the ledger row says %d", k, nano, want)
		}
	}

	logs := r.logs.String()
	for _, bad := range []string{"dropped", "client is closed", `"level":"ERROR"`} {
		if strings.Contains(logs, bad) {
			t.Errorf("log has %q:\n%s", bad, grepLines(logs, bad))
		}
	}
}
