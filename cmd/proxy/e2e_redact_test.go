package main

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

// providerKeyForms are the forms in which an upstream echoed (or could
// echo) our provider key in issue 16: whole, re-cased, URL-escaped,
// masked, cut to its first or last bytes.
func providerKeyForms() map[string]string {
	k := providerKey
	return map[string]string{
		"exact":        k,
		"lower":        strings.ToLower(k),
		"upper":        strings.ToUpper(k),
		"query escape": url.QueryEscape(k),
		"path escape":  url.PathEscape(k),
		"masked dots":  k[:5] + "..." + k[len(k)-4:],
		"masked stars": k[:3] + "****************" + k[len(k)-4:],
		"first 8":      k[:8],
		"last 8":       k[len(k)-8:],
	}
}

// keyLeaks names the forms of the provider key that s holds.
func keyLeaks(s string) []string {
	var out []string
	for name, f := range providerKeyForms() {
		if strings.Contains(s, f) {
			out = append(out, name)
		}
	}
	return out
}

// TestE2EUpstreamErrorRedacted is issue 16's "secrets in upstream error
// fields": an upstream whose 4xx echoes our key in message, type, param and
// code, before the first byte and in a mid-stream error event. Neither the
// client nor any log line may see the key in any form.
func TestE2EUpstreamErrorRedacted(t *testing.T) {
	e := startE2E(t)
	var forms []string
	for _, f := range providerKeyForms() {
		forms = append(forms, f)
	}
	all := strings.Join(forms, " ")
	errObj, _ := json.Marshal(map[string]any{"error": map[string]string{
		"message": "Incorrect API key provided: " + all, "type": all, "param": all, "code": all}})

	check := func(t *testing.T, what string, b []byte, hdr http.Header) {
		t.Helper()
		if l := keyLeaks(string(b)); len(l) > 0 {
			t.Errorf("%s holds the provider key as %v:\n%s", what, l, b)
		}
		for k, vs := range hdr {
			for _, v := range vs {
				if l := keyLeaks(v); len(l) > 0 {
					t.Errorf("header %s = %q holds the provider key as %v", k, v, l)
				}
			}
		}
	}
	for _, stream := range []bool{false, true} {
		name := map[bool]string{false: "4xx plain", true: "4xx before the first byte of a stream"}[stream]
		t.Run(name, func(t *testing.T) {
			e.up.handle(func(w http.ResponseWriter, r *http.Request, body []byte) {
				writeUpstreamError(w, http.StatusBadRequest, string(errObj))
			})
			body := `{"model":"gpt-test","stream":` + map[bool]string{false: "false", true: "true"}[stream] +
				`,"messages":[{"role":"user","content":"hi"}]}`
			resp, b := e.do("POST", "/v1/chat/completions", body, authHeader(teamKeyDefault))
			if resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("status = %d; want 400\n%s", resp.StatusCode, b)
			}
			_, typ, code := errorShape(t, b)
			if !strings.Contains(typ, "[redacted]") || !strings.Contains(code, "[redacted]") {
				t.Errorf("type = %q, code = %q; want the upstream's with the key redacted", typ, code)
			}
			check(t, "response", b, resp.Header)
		})
	}
	t.Run("mid-stream error event", func(t *testing.T) {
		e.up.handle(func(w http.ResponseWriter, r *http.Request, body []byte) {
			sw := newSSEWriter(w)
			for _, c := range chunks(defaultReply, parseAsk(body).includeUsage())[:2] {
				sw.event(c)
			}
			sw.raw("data: " + string(errObj) + "\n\n")
		})
		resp, b := e.do("POST", "/v1/chat/completions", `{"model":"gpt-test","stream":true,"messages":[{"role":"user","content":"hi"}]}`,
			authHeader(teamKeyDefault))
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status = %d; want 200", resp.StatusCode)
		}
		evs := sseEvents(t, b)
		if len(evs) == 0 || !strings.Contains(evs[len(evs)-1], `"error"`) {
			t.Fatalf("want a final error event:\n%s", b)
		}
		check(t, "stream", b, resp.Header)
	})
	t.Run("logs", func(t *testing.T) {
		if !eventually(5*time.Second, func() bool { return strings.Count(e.logs.String(), `"err":`) >= 3 }) {
			t.Fatalf("want three access lines with err:\n%s", e.logs.String())
		}
		check(t, "logs", []byte(e.logs.String()), nil)
	})
}

// TestE2ERetryAfterCapped is issue 16's "Retry-After: 99999999": the
// client is told to wait at most router.max_cooldown (default 5m), in
// seconds and in milliseconds. The second request meets the cooldown the
// first one left on the deployment, which must be capped as well.
func TestE2ERetryAfterCapped(t *testing.T) {
	e := startE2E(t)
	for _, v := range []string{"99999999", "Fri, 01 Mar 2030 12:00:00 GMT"} {
		t.Run(v, func(t *testing.T) {
			e.up.handle(func(w http.ResponseWriter, r *http.Request, body []byte) {
				w.Header().Set("Retry-After", v)
				writeUpstreamError(w, 429, `{"error":{"message":"Rate limit reached","type":"requests","param":null,"code":"rate_limit_exceeded"}}`)
			})
			resp, b := e.do("POST", "/v1/chat/completions", `{"model":"gpt-test","messages":[{"role":"user","content":"hi"}]}`, authHeader(teamKeyDefault))
			if resp.StatusCode != 429 {
				t.Fatalf("status = %d; want 429\n%s", resp.StatusCode, b)
			}
			if got, _ := strconv.Atoi(resp.Header.Get("Retry-After")); got <= 0 || got > 300 {
				t.Errorf("Retry-After = %q; want 1..300 seconds", resp.Header.Get("Retry-After"))
			}
			if got, _ := strconv.Atoi(resp.Header.Get("retry-after-ms")); got > 300_000 {
				t.Errorf("retry-after-ms = %q; want at most 300000", resp.Header.Get("retry-after-ms"))
			}
		})
	}
}
