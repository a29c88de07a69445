package providertest

import (
	"context"
	"encoding/json"
	"io"
	"testing"
	"time"

	"llmproxy/router"
)

// Timeouts the scenarios use: generous where nothing should stall, so a
// broken adapter fails instead of hanging, and short where a stall is the
// point.
const (
	slack = 10 * time.Second
	stall = 100 * time.Millisecond
)

// Run checks the adapter built by f against every scenario.
func Run(t *testing.T, f Factory) {
	t.Helper()
	for _, r := range Replies() {
		if f.NoReasoningTokens {
			r.Usage.ReasoningTokens = 0
		}
		t.Run("reply/"+r.Name, func(t *testing.T) { runReply(t, f, r) })
	}
	t.Run("stream/chunk_by_chunk", func(t *testing.T) { runStepped(t, f) })
	for _, stream := range []bool{false, true} {
		mode := map[bool]string{false: "plain", true: "stream"}[stream]
		for _, sc := range statusScenarios() {
			t.Run(mode+"/"+sc.name, func(t *testing.T) { runStatus(t, f, stream, sc) })
		}
	}
	t.Run("stream/error_event", func(t *testing.T) { runEnding(t, f, endError, router.KindUpstream) })
	t.Run("stream/early_eof", func(t *testing.T) { runEnding(t, f, endEOF, router.KindUpstream) })
	t.Run("stream/connection_cut", func(t *testing.T) { runEnding(t, f, endCut, router.KindUpstream) })
	t.Run("stream/idle_stall", func(t *testing.T) { runEnding(t, f, endStall, router.KindUpstreamTimeout) })
	t.Run("stream/first_token_stall", func(t *testing.T) { runFirstTokenStall(t, f) })
	t.Run("stream/client_cancel", func(t *testing.T) { runCancel(t, f) })
}

func (f Factory) model() string {
	if f.Model == "" {
		return "test-model"
	}
	return f.Model
}

// chatRequest is the client's request as the router hands it to a provider.
func chatRequest(t *testing.T, f Factory, stream bool, to router.Timeouts) *router.ChatRequest {
	t.Helper()
	body := `{"model":"alias","messages":[{"role":"user","content":"What's the weather in Paris and London?"}],` +
		`"tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"location":{"type":"string"}}}}}]`
	if stream {
		body += `,"stream":true`
	}
	req, err := router.ParseChatRequest([]byte(body + "}"))
	if err != nil {
		t.Fatalf("ParseChatRequest: %v", err)
	}
	req.Target = router.Target{Provider: "fake", Model: f.model()}
	req.Timeouts = to
	return req
}

func transcript(t *testing.T, f Factory, name string) Transcript {
	t.Helper()
	tr, err := f.Fake.Reply(name)
	if err != nil {
		t.Fatalf("Fake.Reply(%q): %v", name, err)
	}
	return tr
}

// start runs the fake for p and builds the adapter under test against it.
func start(t *testing.T, f Factory, p *plan) router.Provider {
	t.Helper()
	p.want = Want{Model: f.model(), Stream: p.want.Stream, APIKey: TestKey}
	return f.New(t, serve(t, f, p))
}

// open starts the fake for p and calls Chat.
func open(t *testing.T, ctx context.Context, f Factory, p *plan, to router.Timeouts) (router.Stream, error) {
	t.Helper()
	req := chatRequest(t, f, p.want.Stream, to)
	s, err := start(t, f, p).Chat(ctx, req)
	if err == nil {
		t.Cleanup(func() { s.Close() })
	}
	return s, err
}

// drain reads s to its end, folding chunks into ra.
func drain(t *testing.T, s router.Stream, ra *reassembly) error {
	t.Helper()
	for i := 0; ; i++ {
		c, err := s.Next()
		if err != nil {
			return err
		}
		if c == nil {
			t.Fatalf("Next #%d = nil chunk with nil error", i)
		}
		if err := ra.add(c); err != nil {
			t.Error(err)
		}
	}
}

func runReply(t *testing.T, f Factory, want Reply) {
	tr := transcript(t, f, want.Name)
	p := &plan{tr: tr, events: -1, want: Want{Stream: want.Stream}}
	s, err := open(t, context.Background(), f, p, router.Timeouts{FirstToken: slack, Idle: slack})
	if err != nil {
		t.Fatalf("Chat: %v", err)
	}
	if !want.Stream {
		checkWhole(t, s, tr, want)
		return
	}
	var ra reassembly
	if err := drain(t, s, &ra); err != io.EOF {
		t.Fatalf("stream ended with %v; want io.EOF", err)
	}
	checkStreamed(t, &ra, tr, want)
	if _, err := s.Next(); err != io.EOF {
		t.Errorf("Next after the end = %v; want io.EOF again", err)
	}
	s.Close()
	s.Close() // must be safe twice
}

func checkWhole(t *testing.T, s router.Stream, tr Transcript, want Reply) {
	t.Helper()
	c, err := s.Next()
	if err != nil {
		t.Fatalf("Next = %v; want the whole reply", err)
	}
	if !c.Whole {
		t.Errorf("chunk Whole = false; want true for a plain reply")
	}
	var wr wholeReply
	if err := json.Unmarshal(c.Data, &wr); err != nil || wr.Object != "chat.completion" || len(wr.Choices) == 0 {
		t.Fatalf("Data = %s (%v); want a chat.completion with choices", c.Data, err)
	}
	if got := wr.Choices[0].Message.Content; got == nil || *got != want.Text {
		t.Errorf("content = %v; want %q", got, want.Text)
	}
	if !sameUsage(c.Usage, want.Usage) {
		t.Errorf("Usage = %+v; want %+v", c.Usage, want.Usage)
	}
	if c.Model != tr.Model {
		t.Errorf("Model = %q; want %q", c.Model, tr.Model)
	}
	if _, err := s.Next(); err != io.EOF {
		t.Errorf("second Next = %v; want io.EOF", err)
	}
	s.Close()
	s.Close()
}

func checkStreamed(t *testing.T, ra *reassembly, tr Transcript, want Reply) {
	t.Helper()
	if got := ra.text.String(); got != want.Text {
		t.Errorf("streamed text = %q; want %q", got, want.Text)
	}
	if err := checkTools(ra.tools, want.ToolCalls); err != nil {
		t.Error(err)
	}
	if len(ra.usage) != 1 || !sameUsage(ra.usage[0], want.Usage) {
		t.Errorf("usage reports = %+v; want exactly one, %+v", ra.usage, want.Usage)
	}
	if n := len(ra.chunks); n == 0 || !ra.chunks[n-1].UsageOnly || ra.chunks[n-1].Usage == nil {
		t.Errorf("last chunk is not the UsageOnly usage chunk")
	}
	for i, c := range ra.chunks {
		if c.Model != tr.Model {
			t.Errorf("chunk %d Model = %q; want %q", i, c.Model, tr.Model)
		}
	}
}

// runStepped releases the stream one event at a time and proves each text
// chunk reached the caller before the next event was written: no two text
// chunks may arrive between the same two releases. An event that yields no
// chunk (a ping, a vendor's start event) is detected by a short wait, after
// which the next event is released.
func runStepped(t *testing.T, f Factory) {
	tr := transcript(t, f, ReplyStreamText)
	p := &plan{tr: tr, events: -1, step: make(chan struct{}), want: Want{Stream: true}}
	ctx, cancel := context.WithCancel(context.Background())
	prov := start(t, f, p)
	req := chatRequest(t, f, true, router.Timeouts{FirstToken: slack, Idle: slack})
	type result struct {
		c   *router.Chunk
		err error
	}
	out := make(chan result)
	// Chat runs here too: an adapter that buffers inside Chat must fail the
	// delivery check below, not deadlock against the stepping fake.
	go func() {
		defer close(out)
		s, err := prov.Chat(ctx, req)
		if err != nil {
			out <- result{err: err}
			return
		}
		defer s.Close()
		for {
			c, err := s.Next()
			out <- result{c, err}
			if err != nil {
				return
			}
		}
	}()
	defer func() { // the reader must end before the test does
		cancel()
		for range out {
		}
	}()
	var ra reassembly
	var textAt []int // how many events were released when each text chunk came
	released := 0
	take := func(r result) bool {
		if r.err != nil {
			if r.err != io.EOF {
				t.Fatalf("stream ended with %v; want io.EOF", r.err)
			}
			return false
		}
		before := ra.text.Len()
		if err := ra.add(r.c); err != nil {
			t.Error(err)
		}
		if ra.text.Len() > before {
			textAt = append(textAt, released)
		}
		return true
	}
	for released < len(tr.Events) {
		select {
		case p.step <- struct{}{}:
		case <-time.After(slack):
			t.Fatalf("the fake never asked for event %d", released)
		}
		released++
		// Take everything this event yields: a first wait long enough for a
		// slow machine, then a short one to catch chunks an adapter held
		// back and released together. An event may also yield nothing.
		wait := 200 * time.Millisecond
	drain:
		for {
			select {
			case r, ok := <-out:
				if ok && take(r) {
					wait = 50 * time.Millisecond
					continue
				}
				if released < len(tr.Events) {
					t.Fatalf("stream ended after %d of %d events", released, len(tr.Events))
				}
				break drain // the Done frames follow the last event at once
			case <-time.After(wait):
				break drain
			}
		}
	}
	for r := range out { // Done frames and anything still buffered
		if !take(r) {
			break
		}
	}
	checkStreamed(t, &ra, tr, replyNamed(ReplyStreamText))
	for i := 1; i < len(textAt); i++ {
		if textAt[i] == textAt[i-1] {
			t.Fatalf("text chunks %d and %d both arrived after event %d: delivery is not chunk by chunk (%v)", i-1, i, textAt[i], textAt)
		}
	}
	if len(textAt) < 2 {
		t.Fatalf("got %d text chunks; want the greeting in several", len(textAt))
	}
}

func replyNamed(name string) Reply {
	for _, r := range Replies() {
		if r.Name == name {
			return r
		}
	}
	panic("providertest: no reply " + name) // programmer error in the kit
}
