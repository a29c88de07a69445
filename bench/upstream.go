package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"
)

// upstreamOptions shape the fake OpenAI upstream's streamed replies.
type upstreamOptions struct {
	Chunks int           // content chunks per stream
	Delay  time.Duration // gap between chunks
}

// fakeUpstream is a fast OpenAI-compatible upstream: every reply is
// pre-rendered, so its own cost stays small next to the proxy's. It is the
// baseline the "direct" column measures.
type fakeUpstream struct {
	opt        upstreamOptions
	completion []byte   // non-streamed chat.completion body
	chunks     [][]byte // "data: …\n\n" events, role first, finish last
	usage      []byte   // the include_usage event
	models     []byte
}

// completionJSON is a realistic chat.completion of about 600 bytes.
const completionJSON = `{"id":"chatcmpl-bench0000000000000000000000001","object":"chat.completion","created":1735689600,` +
	`"model":"bench","system_fingerprint":"fp_bench01","choices":[{"index":0,"message":{"role":"assistant",` +
	`"content":"Packets arrive in waves,\nthe balancer hums and sorts them,\nno server left out.\n\nRound robin or least ` +
	`connections: the busiest node rests while quiet ones take the load.",` +
	`"refusal":null,"annotations":[]},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":31,` +
	`"completion_tokens":62,"total_tokens":93,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},` +
	`"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0}},"service_tier":"default"}`

func newFakeUpstream(opt upstreamOptions) *fakeUpstream {
	if opt.Chunks < 1 {
		opt.Chunks = 1
	}
	f := &fakeUpstream{opt: opt, completion: []byte(completionJSON)}
	const head = `{"id":"chatcmpl-bench0000000000000000000000002","object":"chat.completion.chunk","created":1735689600,"model":"bench","system_fingerprint":"fp_bench01","choices":[`
	event := func(body string) []byte { return []byte("data: " + head + body + "]}\n\n") }
	f.chunks = append(f.chunks, event(`{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}`))
	for i := 1; i < opt.Chunks-1; i++ {
		f.chunks = append(f.chunks, event(fmt.Sprintf(`{"index":0,"delta":{"content":" token%d"},"logprobs":null,"finish_reason":null}`, i)))
	}
	if opt.Chunks > 1 {
		f.chunks = append(f.chunks, event(`{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}`))
	}
	f.usage = []byte("data: " + head + `],"usage":{"prompt_tokens":31,"completion_tokens":` +
		strconv.Itoa(opt.Chunks) + `,"total_tokens":` + strconv.Itoa(31+opt.Chunks) + "}}\n\n")
	f.models = []byte(`{"object":"list","data":[{"id":"bench","object":"model","created":1735689600,"owned_by":"bench"}]}`)
	return f
}

// ServeHTTP answers POST /v1/chat/completions and GET /v1/models.
func (f *fakeUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/v1/chat/completions":
		f.chat(w, r)
	case r.Method == http.MethodGet && r.URL.Path == "/v1/models":
		writeFixed(w, "application/json", f.models)
	case r.URL.Path == "/ready" || r.URL.Path == "/health":
		writeFixed(w, "application/json", []byte(`{"status":"ready"}`))
	default:
		http.Error(w, `{"error":{"message":"not found","type":"invalid_request_error"}}`, http.StatusNotFound)
	}
}

func writeFixed(w http.ResponseWriter, ctype string, body []byte) {
	h := w.Header()
	h["Content-Type"] = []string{ctype}
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
	_, _ = w.Write(body) // an error means the client left; nothing to do
}

// chatRequest is the part of the request the fake reads; json skips the rest.
type chatRequest struct {
	Stream        bool `json:"stream"`
	StreamOptions *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
}

func (f *fakeUpstream) chat(w http.ResponseWriter, r *http.Request) {
	var buf bytes.Buffer
	if _, err := io.Copy(&buf, io.LimitReader(r.Body, 1<<20)); err != nil {
		return
	}
	var req chatRequest
	if err := json.Unmarshal(buf.Bytes(), &req); err != nil {
		http.Error(w, `{"error":{"message":"bad json","type":"invalid_request_error"}}`, http.StatusBadRequest)
		return
	}
	if !req.Stream {
		writeFixed(w, "application/json", f.completion)
		return
	}
	f.stream(w, r.Context(), req.StreamOptions != nil && req.StreamOptions.IncludeUsage)
}

// stream sends the first chunk at once and the rest opt.Delay apart, each
// flushed on its own, like a model emitting tokens.
func (f *fakeUpstream) stream(w http.ResponseWriter, ctx context.Context, usage bool) {
	h := w.Header()
	h["Content-Type"] = []string{"text/event-stream"}
	h["Cache-Control"] = []string{"no-cache"}
	fl, _ := w.(http.Flusher)
	var t *time.Timer
	for i, c := range f.chunks {
		if i > 0 && f.opt.Delay > 0 {
			if t == nil {
				t = time.NewTimer(f.opt.Delay)
			} else {
				t.Reset(f.opt.Delay)
			}
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
		if _, err := w.Write(c); err != nil {
			return
		}
		if fl != nil {
			fl.Flush()
		}
	}
	if t != nil {
		t.Stop()
	}
	if usage {
		_, _ = w.Write(f.usage) // as in writeFixed
	}
	_, _ = w.Write([]byte("data: [DONE]\n\n"))
	if fl != nil {
		fl.Flush()
	}
}

// startUpstream serves the fake on ln until ctx ends.
func startUpstream(ctx context.Context, ln net.Listener, opt upstreamOptions) *http.Server {
	srv := &http.Server{
		Handler:           newFakeUpstream(opt),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	go func() { _ = srv.Serve(ln) }() // returns ErrServerClosed on Close
	context.AfterFunc(ctx, func() { srv.Close() })
	return srv
}

// runUpstreamMode is -mode upstream: serve the fake until SIGINT/SIGTERM.
// It prints "listening ADDR" on stdout so a parent that passed port 0 can
// find it.
func runUpstreamMode(ctx context.Context, listen string, opt upstreamOptions) error {
	if err := requireLoopback(listen); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	startUpstream(ctx, ln, opt)
	fmt.Printf("listening %s\n", ln.Addr())
	<-ctx.Done()
	return nil
}
