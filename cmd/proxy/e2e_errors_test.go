package main

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
)

// TestE2EErrors checks the proxy's own errors: every one leaves in OpenAI's
// shape with the status and code the SDKs expect.
func TestE2EErrors(t *testing.T) {
	e := startE2E(t)
	chat := `{"model":"gpt-test","messages":[{"role":"user","content":"hi ` + promptCanary + `"}]}`
	auth := authHeader(teamKeyDefault)
	tests := []struct {
		name         string
		method, path string
		body         string
		hdr          map[string]string
		status       int
		code         string // "" skips the check
		noRetry      bool   // wants x-should-retry: false
	}{
		{name: "missing key", method: "POST", path: "/v1/chat/completions", body: chat,
			status: 401, code: "invalid_api_key", noRetry: true},
		{name: "wrong key", method: "POST", path: "/v1/chat/completions", body: chat, hdr: authHeader("sk-wrong"),
			status: 401, code: "invalid_api_key", noRetry: true},
		{name: "not bearer", method: "GET", path: "/v1/models", hdr: map[string]string{"Authorization": "Basic " + teamKeyDefault},
			status: 401, code: "invalid_api_key", noRetry: true},
		{name: "malformed JSON", method: "POST", path: "/v1/chat/completions", body: `{"model":"gpt-test","messages":[`, hdr: auth,
			status: 400, noRetry: true},
		{name: "missing model", method: "POST", path: "/v1/chat/completions", body: `{"messages":[{"role":"user","content":"hi"}]}`, hdr: auth,
			status: 400, noRetry: true},
		{name: "unknown model", method: "POST", path: "/v1/chat/completions", body: `{"model":"gpt-nope","messages":[]}`, hdr: auth,
			status: 404, code: "model_not_found", noRetry: true},
		{name: "model outside the team's allow-list", method: "POST", path: "/v1/chat/completions", body: chat, hdr: authHeader(teamKeyLimited),
			status: 404, code: "model_not_found", noRetry: true},
		{name: "embeddings malformed JSON", method: "POST", path: "/v1/embeddings", body: `{"model":`, hdr: auth,
			status: 400, noRetry: true},
		{name: "embeddings unknown model", method: "POST", path: "/v1/embeddings", body: `{"model":"nope","input":"x"}`, hdr: auth,
			status: 404, code: "model_not_found", noRetry: true},
		{name: "body over max_body_bytes", method: "POST", path: "/v1/chat/completions",
			body: `{"model":"gpt-test","messages":[{"role":"user","content":"` + strings.Repeat("a", maxBody+1) + `"}]}`, hdr: auth,
			status: 413},
		{name: "unknown route under /v1", method: "GET", path: "/v1/nope", hdr: auth, status: 404},
		{name: "unknown route", method: "GET", path: "/nope", status: 404},
		{name: "wrong method", method: "GET", path: "/v1/chat/completions", hdr: auth, status: 405},
		{name: "wrong method on a probe", method: "POST", path: "/health", body: "{}", status: 405},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := e.up.count()
			resp, b := e.do(tc.method, tc.path, tc.body, tc.hdr)
			if resp.StatusCode != tc.status {
				t.Fatalf("status = %d; want %d\n%s", resp.StatusCode, tc.status, b)
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("Content-Type = %q; want application/json", ct)
			}
			_, _, code := errorShape(t, b)
			if tc.code != "" && code != tc.code {
				t.Errorf("code = %q; want %q", code, tc.code)
			}
			if got := resp.Header.Get("x-should-retry"); tc.noRetry && got != "false" {
				t.Errorf("x-should-retry = %q; want false", got)
			}
			if n := e.up.count() - before; n != 0 {
				t.Errorf("the upstream got %d requests; want none", n)
			}
		})
	}

	t.Run("request id is propagated on errors", func(t *testing.T) {
		resp, _ := e.do("POST", "/v1/chat/completions", chat, map[string]string{"X-Request-Id": "trace-err-42"})
		if got := resp.Header.Get("X-Request-Id"); got != "trace-err-42" {
			t.Errorf("x-request-id = %q; want trace-err-42", got)
		}
	})

	sdk := []struct {
		name   string
		client *openai.Client
		model  string
		status int
		code   string
	}{
		{"SDK wrong key", e.noRetry(option.WithAPIKey("sk-wrong")), "gpt-test", 401, "invalid_api_key"},
		{"SDK unknown model", e.noRetry(), "gpt-nope", 404, "model_not_found"},
		{"SDK model outside the allow-list", e.noRetry(option.WithAPIKey(teamKeyLimited)), "gpt-test", 404, "model_not_found"},
	}
	for _, tc := range sdk {
		t.Run(tc.name, func(t *testing.T) {
			for _, stream := range []bool{false, true} {
				var err error
				if stream {
					s := tc.client.Chat.Completions.NewStreaming(withTimeout(t), chatParams(tc.model))
					for s.Next() {
					}
					err = s.Err()
				} else {
					_, err = tc.client.Chat.Completions.New(withTimeout(t), chatParams(tc.model))
				}
				var apiErr *openai.Error
				if !errors.As(err, &apiErr) {
					t.Fatalf("stream=%v: err = %v; want *openai.Error", stream, err)
				}
				if apiErr.StatusCode != tc.status || apiErr.Code != tc.code {
					t.Errorf("stream=%v: status, code = %d, %q; want %d, %q", stream, apiErr.StatusCode, apiErr.Code, tc.status, tc.code)
				}
				if apiErr.Message == "" || apiErr.Type == "" {
					t.Errorf("stream=%v: message %q, type %q; want both set", stream, apiErr.Message, apiErr.Type)
				}
			}
		})
	}
}

// TestE2EUpstreamErrors checks how upstream failures before the first byte
// reach the client, plain and streamed.
func TestE2EUpstreamErrors(t *testing.T) {
	e := startE2E(t)
	const badParam = "Invalid value for 'temperature': decimal above maximum value. Expected a value <= 2, but got 9 instead."
	tests := []struct {
		name       string
		status     int
		hdr        map[string]string
		body       string
		wantStatus int
		wantMsg    string // "" skips the check
		wantHdr    map[string]string
	}{
		{name: "400 keeps status and message", status: 400,
			body:       `{"error":{"message":"` + badParam + `","type":"invalid_request_error","param":"temperature","code":"decimal_above_max_value"}}`,
			wantStatus: 400, wantMsg: badParam, wantHdr: map[string]string{"x-should-retry": "false"}},
		{name: "401 from our key becomes 502", status: 401,
			body:       `{"error":{"message":"Incorrect API key provided: ` + providerKey + `. You can find your API key at https://platform.openai.com/account/api-keys.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}`,
			wantStatus: 502},
		{name: "429 keeps Retry-After", status: 429, hdr: map[string]string{"Retry-After": "7"},
			body:       `{"error":{"message":"Rate limit reached for gpt-4o-mini in organization org-upstream on requests per min (RPM): Limit 3, Used 3, Requested 1.","type":"requests","param":null,"code":"rate_limit_exceeded"}}`,
			wantStatus: 429, wantHdr: map[string]string{"Retry-After": "7"}},
	}
	for _, tc := range tests {
		for _, stream := range []bool{false, true} {
			name := tc.name
			if stream {
				name += ", stream"
			}
			t.Run(name, func(t *testing.T) {
				e.up.reset()
				e.up.handle(func(w http.ResponseWriter, r *http.Request, body []byte) {
					for k, v := range tc.hdr {
						w.Header().Set(k, v)
					}
					w.Header().Set("openai-organization", "org-upstream")
					writeUpstreamError(w, tc.status, tc.body)
				})
				body := `{"model":"gpt-test","stream":` + map[bool]string{false: "false", true: "true"}[stream] +
					`,"messages":[{"role":"user","content":"hi ` + promptCanary + `"}]}`
				resp, b := e.do("POST", "/v1/chat/completions", body, authHeader(teamKeyDefault))
				if resp.StatusCode != tc.wantStatus {
					t.Fatalf("status = %d; want %d\n%s", resp.StatusCode, tc.wantStatus, b)
				}
				msg, _, _ := errorShape(t, b)
				if tc.wantMsg != "" && msg != tc.wantMsg {
					t.Errorf("message = %q; want %q", msg, tc.wantMsg)
				}
				for k, v := range tc.wantHdr {
					if got := resp.Header.Get(k); got != v {
						t.Errorf("%s = %q; want %q", k, got, v)
					}
				}
				for k, vs := range resp.Header {
					for _, v := range vs {
						if strings.Contains(v, providerKey) || strings.Contains(v, "org-upstream") {
							t.Errorf("header %s: %q leaks upstream detail", k, v)
						}
					}
				}
				if strings.Contains(string(b), providerKey) {
					t.Errorf("the provider key reached the client: %s", b)
				}
			})
		}
	}

	t.Run("SDK sees 429 with Retry-After and does not retry a 400", func(t *testing.T) {
		e.up.reset()
		e.up.handle(func(w http.ResponseWriter, r *http.Request, body []byte) {
			w.Header().Set("Retry-After", "7")
			writeUpstreamError(w, 429, `{"error":{"message":"Rate limit reached.","type":"requests","param":null,"code":"rate_limit_exceeded"}}`)
		})
		_, err := e.noRetry().Chat.Completions.New(withTimeout(t), chatParams("gpt-test"))
		var apiErr *openai.Error
		if !errors.As(err, &apiErr) || apiErr.StatusCode != 429 {
			t.Fatalf("err = %v; want a 429 *openai.Error", err)
		}
		if got := apiErr.Response.Header.Get("Retry-After"); got != "7" {
			t.Errorf("Retry-After = %q; want 7", got)
		}

		e.up.reset()
		e.up.handle(func(w http.ResponseWriter, r *http.Request, body []byte) {
			writeUpstreamError(w, 400, `{"error":{"message":"`+badParam+`","type":"invalid_request_error","param":"temperature","code":null}}`)
		})
		_, err = e.client(option.WithMaxRetries(2)).Chat.Completions.New(withTimeout(t), chatParams("gpt-test"))
		if !errors.As(err, &apiErr) || apiErr.StatusCode != 400 || apiErr.Message != badParam {
			t.Fatalf("err = %v; want a 400 *openai.Error with the upstream's message", err)
		}
		if n := e.up.count(); n != 1 {
			t.Errorf("the upstream got %d requests; want 1 (no retry)", n)
		}
	})
}
