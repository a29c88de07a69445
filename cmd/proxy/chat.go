package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"

	"llmproxy/router"
)

// defaultPingEvery is how often an idle stream gets an SSE comment. It is
// the only way to notice a client that left while the upstream is silent
// (a write error is the sole signal fasthttp gives).
const defaultPingEvery = 15 * time.Second

func (s *Server) chatHandler(c *fiber.Ctx) error {
	k := c.Locals(localsKey).(*teamKey)
	rec := &reqRecord{route: routeChat, start: time.Now(), team: k.team, keyID: k.id}
	c.Locals(localsReq, rec)
	// readBody's buffer is the request's own: streams outlive fiber's.
	body, err := s.readBody(c)
	if err != nil {
		return err
	}
	req, err := router.ParseChatRequest(body)
	if err != nil {
		return err
	}
	rec.stream = req.Stream
	if err := s.checkModel(k, req.Model, modelTypeChat); err != nil {
		return err
	}
	rec.model = req.Model
	if req.TimeoutCap, err = timeoutHeader(c.Get(headerTimeout)); err != nil {
		return err
	}
	req.Conversation = c.Get(headerConversation)
	req.VectorStoreIDs = c.Get(headerVectorStores)
	ctx, cancel := s.requestContext(c, k)
	req.Result = &rec.result
	st, err := s.chat.Serve(ctx, req)
	rec.fill()
	setResultHeaders(c, &rec.result)
	if err != nil {
		cancel()
		setAttemptHeaders(c, rec.result.Attempts, rec.result.Target.Provider)
		return err
	}
	setRouteHeaders(c, &rec.result)
	if !req.Stream {
		defer cancel()
		out, usage, err := router.Collect(st)
		st.Close()
		if usage != nil {
			rec.usage = *usage
		}
		if err != nil {
			return err
		}
		c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
		return c.Send(withSources(out, rec.result.Sources))
	}
	c.Locals(localsStream, true)
	c.Set(fiber.HeaderContentType, "text/event-stream")
	c.Set(fiber.HeaderCacheControl, "no-cache")
	c.Set(fiber.HeaderConnection, "keep-alive")
	c.Set("X-Accel-Buffering", "no")
	rec.requestID = string(c.Response().Header.Peek(fiber.HeaderXRequestID))
	rec.status = fiber.StatusOK
	s.work.add() // done when the writer ends: Shutdown waits for it
	c.Context().SetBodyStreamWriter(s.streamBody(st, cancel, req, rec))
	return nil
}

// streamBody relays chunks as SSE. It runs after the handler returned, so
// it owns cancel and the stream. It calls Next itself: one chunk in flight,
// so a slow client slows the upstream read instead of filling memory, and
// no goroutine hand-off per chunk. A keep-alive timer pings a client whose
// upstream has been silent for pingEvery (a write error is the only sign
// that a client left); a failed ping cancels the request, which ends the
// Next that is blocked on the upstream.
func (s *Server) streamBody(st router.Stream, cancel context.CancelFunc, req *router.ChatRequest, rec *reqRecord) func(*bufio.Writer) {
	return func(w *bufio.Writer) {
		sources := rec.result.Sources
		ka := newKeepAlive(w, cancel, s.pingEvery)
		defer func() {
			ka.stop() // before returning: fasthttp recycles w
			cancel()  // stops the upstream
			st.Close()
			s.finish(rec)
			s.work.done()
		}()
		for {
			c, err := s.next(st, rec)
			if err != nil {
				if ka.lost() {
					rec.setErr(errClientGone())
					return
				}
				ka.mu.Lock()
				s.endStream(w, err, rec)
				ka.mu.Unlock()
				return
			}
			rec.chunk(c)
			if c.UsageOnly && !req.IncludeUsage {
				continue // asked upstream for budgets, not wanted by the client
			}
			data := c.Data
			if sources != nil {
				data, sources = withSources(data, sources), nil // the first chunk only
			}
			if !ka.write(data) {
				rec.setErr(errClientGone())
				return
			}
		}
	}
}

func errClientGone() *router.Error {
	return &router.Error{Kind: router.KindCanceled, Message: "client closed the stream"}
}

// next is st.Next with a panic turned into an internal error: the writer
// runs on a goroutine of fasthttp's that has no recover.
func (s *Server) next(st router.Stream, rec *reqRecord) (c *router.Chunk, err error) {
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("panic in stream", slog.String("request_id", rec.requestID), slog.Any("err", p), slog.String("stack", stack()))
			c, err = nil, &router.Error{Kind: router.KindInternal, Message: "internal error"}
		}
	}()
	return st.Next()
}

// keepAlive serialises the stream writer's events with the pings its timer
// sends while the upstream is silent.
type keepAlive struct {
	mu     sync.Mutex
	w      *bufio.Writer
	t      *time.Timer
	every  time.Duration
	cancel context.CancelFunc
	done   bool // the writer returned: w is no longer ours
	gone   bool // a ping failed: the client left
}

func newKeepAlive(w *bufio.Writer, cancel context.CancelFunc, every time.Duration) *keepAlive {
	ka := &keepAlive{w: w, cancel: cancel, every: every}
	ka.t = time.AfterFunc(every, ka.ping)
	return ka
}

// write sends one event and re-arms the ping; false means the client left.
func (ka *keepAlive) write(data []byte) bool {
	ka.mu.Lock()
	err := writeEvent(ka.w, data)
	if err == nil {
		err = ka.w.Flush()
	}
	ok := err == nil && !ka.gone
	ka.mu.Unlock()
	ka.t.Reset(ka.every)
	return ok
}

func (ka *keepAlive) ping() {
	ka.mu.Lock()
	defer ka.mu.Unlock()
	if ka.done || ka.gone {
		return
	}
	if _, err := ka.w.WriteString(": ping\n\n"); err != nil || ka.w.Flush() != nil {
		ka.gone = true
		ka.cancel() // ends the Next blocked on the silent upstream
		return
	}
	ka.t.Reset(ka.every)
}

func (ka *keepAlive) lost() bool {
	ka.mu.Lock()
	defer ka.mu.Unlock()
	return ka.gone
}

func (ka *keepAlive) stop() {
	ka.t.Stop()
	ka.mu.Lock()
	ka.done = true
	ka.mu.Unlock()
}

func writeEvent(w *bufio.Writer, data []byte) error {
	w.WriteString("data: ")
	w.Write(data)
	_, err := w.WriteString("\n\n")
	return err
}

// endStream writes [DONE] after a clean end, or one OpenAI-shaped error
// event after a failure: the status line is gone, so a clean-looking close
// would hide the failure. A stream the drain cut (the server's base
// context is done) ends with errShuttingDown whatever the upstream read
// returned; only a client that left gets no event.
func (s *Server) endStream(w *bufio.Writer, err error, rec *reqRecord) {
	if err == io.EOF {
		w.WriteString("data: [DONE]\n\n")
		w.Flush()
		return
	}
	e := router.AsError(err)
	switch {
	case s.base.Err() != nil:
		e = errShuttingDown(err)
	case e.Kind == router.KindCanceled:
		rec.setErr(e)
		return // the client left: nobody to tell
	}
	rec.setErr(e)
	b, _ := jsonMarshal(errorBody(e))
	writeEvent(w, b)
	w.Flush()
}

// withSources adds RAG's references to a chat.completion object, or to a
// stream's first chat.completion.chunk, as the top-level field "sources"
// (issue 12). SDKs ignore fields they do not know: openai-go keeps them
// in JSON.ExtraFields, the Node SDK passes them through. Without sources
// data is returned as it is.
func withSources(data []byte, sources []router.Source) []byte {
	if len(sources) == 0 {
		return data
	}
	b, err := json.Marshal(sources)
	if err != nil {
		return data
	}
	return router.SetField(data, "sources", b)
}
