package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestE2EClientAbort proves that a client leaving mid-stream cancels the
// upstream request: the fake's request context ends.
func TestE2EClientAbort(t *testing.T) {
	e := startE2E(t)
	upstreamGone := make(chan struct{})
	e.up.handle(func(w http.ResponseWriter, r *http.Request, body []byte) {
		sw := newSSEWriter(w)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		text := "tick"
		for i := 0; i < 500; i++ { // 5 s of slow tokens, far longer than the test waits
			c := chunks(reply{id: "chatcmpl-slow", content: []string{text}}, true)[1]
			if sw.event(c) != nil {
				break // the proxy hung up; its context ends right after
			}
			select {
			case <-r.Context().Done():
				close(upstreamGone)
				return
			case <-tick.C:
			}
		}
		select {
		case <-r.Context().Done():
			close(upstreamGone)
		case <-time.After(time.Second):
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stream := e.client().Chat.Completions.NewStreaming(ctx, chatParams("gpt-test"))
	if !stream.Next() {
		t.Fatalf("no first chunk: %v", stream.Err())
	}
	if got := stream.Current().Choices[0].Delta.Content; got != "tick" {
		t.Errorf("first chunk content = %q; want tick", got)
	}
	cancel()
	stream.Close()
	select {
	case <-upstreamGone:
	case <-time.After(3 * time.Second):
		t.Fatal("the upstream request is still running 3s after the client left")
	}
}

// TestE2EMidStreamFailure checks that an upstream failure after the first
// byte ends the stream with one OpenAI-shaped error event and no [DONE].
func TestE2EMidStreamFailure(t *testing.T) {
	e := startE2E(t)
	const sent = 3
	tests := []struct {
		name string
		fail func(w http.ResponseWriter, sw *sseWriter)
	}{
		{"connection dies", func(w http.ResponseWriter, sw *sseWriter) {
			conn, _, err := http.NewResponseController(w).Hijack()
			if err != nil {
				panic(err)
			}
			conn.Close()
		}},
		{"upstream sends an error event", func(w http.ResponseWriter, sw *sseWriter) {
			sw.raw(`data: {"error":{"message":"The server had an error while processing your request. Sorry about that!","type":"server_error","param":null,"code":null}}` + "\n\n")
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e.up.handle(func(w http.ResponseWriter, r *http.Request, body []byte) {
				sw := newSSEWriter(w)
				for _, c := range chunks(defaultReply, parseAsk(body).includeUsage())[:sent] {
					sw.event(c)
				}
				tc.fail(w, sw)
			})

			t.Run("raw transcript", func(t *testing.T) {
				body := `{"model":"gpt-test","stream":true,"messages":[{"role":"user","content":"hi ` + promptCanary + `"}]}`
				resp, b := e.do("POST", "/v1/chat/completions", body, authHeader(teamKeyDefault))
				if resp.StatusCode != 200 {
					t.Fatalf("status = %d; want 200 (the failure comes after the first byte)", resp.StatusCode)
				}
				evs := sseEvents(t, b)
				if len(evs) != sent+1 {
					t.Fatalf("got %d events; want %d chunks and one error:\n%s", len(evs), sent, b)
				}
				for i, ev := range evs[:sent] {
					var c struct {
						Object string `json:"object"`
					}
					if json.Unmarshal([]byte(ev), &c) != nil || c.Object != "chat.completion.chunk" {
						t.Errorf("event %d = %s; want a chat.completion.chunk", i, ev)
					}
				}
				errorShape(t, []byte(evs[sent]))
				if strings.Contains(string(b), "[DONE]") {
					t.Errorf("transcript has [DONE] after a failure:\n%s", b)
				}
			})

			t.Run("SDK", func(t *testing.T) {
				stream := e.client().Chat.Completions.NewStreaming(withTimeout(t), chatParams("gpt-test"))
				n := 0
				for stream.Next() {
					n++
				}
				if stream.Err() == nil {
					t.Error("stream.Err() = nil; want the mid-stream failure")
				}
				if n != sent {
					t.Errorf("got %d chunks before the error; want %d", n, sent)
				}
			})
		})
	}
}

// TestE2EGracefulShutdown checks that Shutdown lets a stream in flight
// finish with [DONE].
func TestE2EGracefulShutdown(t *testing.T) {
	e := startE2E(t)
	release := make(chan struct{})
	e.up.handle(func(w http.ResponseWriter, r *http.Request, body []byte) {
		cs := chunks(defaultReply, parseAsk(body).includeUsage())
		sw := newSSEWriter(w)
		// The role chunk and the first content delta: the router holds
		// the reply until content arrives (its commit point).
		sw.event(cs[0])
		sw.event(cs[1])
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		for _, c := range cs[2:] {
			sw.event(c)
		}
		sw.done()
	})
	body := `{"model":"gpt-test","stream":true,"messages":[{"role":"user","content":"hi ` + promptCanary + `"}]}`
	req, _ := http.NewRequest("POST", e.url+"/v1/chat/completions", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+teamKeyDefault)
	resp, err := e.hc.Do(req)
	if err != nil {
		t.Fatalf("POST: %v", err)
	}
	defer resp.Body.Close()
	rd := bufio.NewReader(resp.Body)
	if _, err := readEvent(rd); err != nil {
		t.Fatalf("first event: %v", err)
	}

	stopped := make(chan error, 1)
	go func() { stopped <- e.srv.Shutdown(5 * time.Second) }()
	closed := eventually(2*time.Second, func() bool {
		c, err := net.DialTimeout("tcp", e.addr, 100*time.Millisecond)
		if err != nil {
			return true
		}
		c.Close()
		return false
	})
	if !closed {
		t.Fatal("the listener still accepts 2s after Shutdown")
	}
	select {
	case err := <-stopped:
		t.Fatalf("Shutdown returned (%v) while a stream was in flight", err)
	default:
	}
	close(release)
	rest, err := io.ReadAll(rd)
	if err != nil {
		t.Fatalf("rest of the stream: %v", err)
	}
	evs := sseEvents(t, rest)
	if len(evs) == 0 || evs[len(evs)-1] != "[DONE]" {
		t.Errorf("stream after Shutdown = %q; want it to end with [DONE]", evs)
	}
	select {
	case err := <-stopped:
		if err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Shutdown did not return after the stream ended")
	}
}

// TestE2EStreamPingsWhileUpstreamSilent: a stream whose upstream goes
// silent after the first chunk gets ": ping" comments every pingEvery, in
// the HTTP chunking of the stream (the client's parser reads them), and a
// client that leaves during the silence is noticed by the next ping,
// which cancels the upstream request.
func TestE2EStreamPingsWhileUpstreamSilent(t *testing.T) {
	const every = 100 * time.Millisecond
	e := startE2E(t, withServe(func(s *Server, ln net.Listener) error {
		s.pingEvery = every // before Serve: every request sees it
		return s.Serve(ln)
	}))
	upstreamGone := make(chan struct{})
	e.up.handle(func(w http.ResponseWriter, r *http.Request, body []byte) {
		sw := newSSEWriter(w)
		sw.event(chunks(reply{id: "chatcmpl-silent", content: []string{"first"}}, true)[1])
		<-r.Context().Done() // silent until the proxy gives up the call
		close(upstreamGone)
	})
	req, _ := http.NewRequest("POST", e.url+"/v1/chat/completions",
		strings.NewReader(`{"model":"gpt-test","stream":true,"messages":[{"role":"user","content":"hi"}]}`))
	req.Header.Set("Authorization", "Bearer "+teamKeyDefault)
	resp, err := e.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	br := bufio.NewReader(resp.Body)
	var lines []string
	pings := 0
	deadline := time.Now().Add(5 * time.Second)
	for pings < 2 && time.Now().Before(deadline) {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("read after %q: %v", lines, err)
		}
		lines = append(lines, line)
		if line == ": ping\n" {
			pings++
		}
	}
	if pings < 2 || !strings.HasPrefix(lines[0], "data: ") || !strings.Contains(lines[0], "first") {
		t.Fatalf("got %q; want the first chunk, then two pings", lines)
	}
	resp.Body.Close() // leaves mid-stream: the transport closes the connection
	select {
	case <-upstreamGone:
	case <-time.After(20 * every):
		t.Fatal("the upstream request still runs 20 ping intervals after the client left")
	}
}
