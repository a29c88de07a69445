package main

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"

	"llmproxy/router"
)

// pingEvery is how often an idle stream gets an SSE comment. It is the only
// way to notice a client that left while the upstream is silent (a write
// error is the sole signal fasthttp gives).
const pingEvery = 15 * time.Second

func (s *Server) chatHandler(c *fiber.Ctx) error {
	k := c.Locals(localsKey).(*teamKey)
	rec := &reqRecord{route: routeChat, start: time.Now(), team: k.team, keyID: k.id}
	c.Locals(localsReq, rec)
	// fiber reuses the request buffer once the handler returns; streams
	// outlive it, so the body is copied once here.
	body := append([]byte(nil), c.Body()...)
	req, err := router.ParseChatRequest(body)
	if err != nil {
		return err
	}
	rec.stream = req.Stream
	if !k.allows(req.Model) || !s.router.Has(req.Model) {
		return router.ModelNotFound(req.Model)
	}
	rec.model = req.Model
	if req.TimeoutCap, err = timeoutHeader(c.Get(headerTimeout)); err != nil {
		return err
	}
	ctx, cancel := s.requestContext(c, k)
	st, err := s.chat.Serve(ctx, req)
	rec.fill(req)
	setMetaHeaders(func(k, v string) { c.Set(k, v) }, req.Meta)
	if err != nil {
		cancel()
		return err
	}
	setRouteHeaders(c, req)
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
		return c.Send(out)
	}
	c.Locals(localsStream, true)
	c.Set(fiber.HeaderContentType, "text/event-stream")
	c.Set(fiber.HeaderCacheControl, "no-cache")
	c.Set(fiber.HeaderConnection, "keep-alive")
	c.Set("X-Accel-Buffering", "no")
	rec.requestID = string(c.Response().Header.Peek(fiber.HeaderXRequestID))
	rec.status = fiber.StatusOK
	c.Context().SetBodyStreamWriter(s.streamBody(st, cancel, req, rec))
	return nil
}

func setRouteHeaders(c *fiber.Ctx, req *router.ChatRequest) {
	alias := req.Model
	if req.FallbackAlias != "" {
		alias = req.FallbackAlias
		c.Set("x-llmproxy-fallback-from", req.Model)
	}
	c.Set("x-llmproxy-model", alias+";upstream="+req.Target.Model)
	c.Set("x-llmproxy-provider", req.Target.Provider)
	c.Set("x-llmproxy-attempts", strconv.Itoa(req.Attempts))
}

type pulled struct {
	c   *router.Chunk
	err error
}

// streamBody relays chunks as SSE. It runs after the handler returned, so
// it owns cancel and the stream. A goroutine pulls Next and hands each
// chunk over an unbuffered channel: one chunk in flight, so a slow client
// slows the upstream read instead of filling memory, while the writer can
// still ping an idle client.
func (s *Server) streamBody(st router.Stream, cancel context.CancelFunc, req *router.ChatRequest, rec *reqRecord) func(*bufio.Writer) {
	return func(w *bufio.Writer) {
		next := make(chan pulled)
		done := make(chan struct{})
		exited := make(chan struct{})
		go func() {
			defer close(exited)
			defer func() {
				if p := recover(); p != nil {
					s.log.Error("panic in stream", slog.String("request_id", rec.requestID), slog.Any("err", p), slog.String("stack", stack()))
					select {
					case next <- pulled{err: &router.Error{Kind: router.KindInternal, Message: "internal error"}}:
					case <-done:
					}
				}
			}()
			for {
				ch, err := st.Next()
				select {
				case next <- pulled{ch, err}:
				case <-done:
					return
				}
				if err != nil {
					return
				}
			}
		}()
		defer func() {
			close(done)
			cancel() // stops the upstream read the pump may be blocked in
			<-exited
			st.Close()
			s.finish(rec)
		}()
		ping := time.NewTimer(pingEvery)
		defer ping.Stop()
		for {
			select {
			case <-ping.C:
				if _, err := w.WriteString(": ping\n\n"); err != nil || w.Flush() != nil {
					rec.setErr(&router.Error{Kind: router.KindCanceled, Message: "client closed the stream"})
					return
				}
				ping.Reset(pingEvery)
			case p := <-next:
				if p.err != nil {
					s.endStream(w, p.err, rec)
					return
				}
				rec.chunk(p.c)
				if p.c.UsageOnly && !req.IncludeUsage {
					continue // asked upstream for budgets, not wanted by the client
				}
				if writeEvent(w, p.c.Data) != nil || w.Flush() != nil {
					rec.setErr(&router.Error{Kind: router.KindCanceled, Message: "client closed the stream"})
					return
				}
				ping.Reset(pingEvery)
			}
		}
	}
}

func writeEvent(w *bufio.Writer, data []byte) error {
	w.WriteString("data: ")
	w.Write(data)
	_, err := w.WriteString("\n\n")
	return err
}

// endStream writes [DONE] after a clean end, or one OpenAI-shaped error
// event after a failure: the status line is gone, so a clean-looking close
// would hide the failure.
func (s *Server) endStream(w *bufio.Writer, err error, rec *reqRecord) {
	if err == io.EOF {
		w.WriteString("data: [DONE]\n\n")
		w.Flush()
		return
	}
	e := router.AsError(err)
	rec.setErr(e)
	if e.Kind == router.KindCanceled {
		return
	}
	b, _ := jsonMarshal(errorBody(e))
	writeEvent(w, b)
	w.Flush()
}
