package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"

	"llmproxy/router"
)

// defaultPingEvery is how often an idle stream gets an SSE comment
// (sseBody.ping): the only way to notice a client that left while the
// upstream is silent (a write error is the sole signal fasthttp gives).
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
		return c.Send(out)
	}
	c.Locals(localsStream, true)
	c.Set(fiber.HeaderContentType, "text/event-stream")
	c.Set(fiber.HeaderCacheControl, "no-cache")
	c.Set(fiber.HeaderConnection, "keep-alive")
	c.Set("X-Accel-Buffering", "no")
	rec.requestID = string(c.Response().Header.Peek(fiber.HeaderXRequestID))
	rec.status = fiber.StatusOK
	s.work.add() // done when the writer ends: Shutdown waits for it
	c.Context().SetBodyStream(s.newSSEBody(st, cancel, req, rec, c.Context().Conn()), -1)
	return nil
}

// sseBody is a streamed reply's body. fasthttp pulls it (Read) on the
// connection's own goroutine and writes what each Read returns as one
// HTTP chunk, flushed at once: no pipe and no goroutine hand-off per
// event, and one chunk in flight, so a slow client slows the upstream read
// instead of filling memory. Read calls the stream's Next itself.
//
// While Read waits on a silent upstream, a keep-alive timer writes an SSE
// comment straight to the connection every pingEvery: the only way to
// notice a client that left (a write error is the sole signal), and what
// keeps load balancers from closing an idle stream. It writes only while
// fasthttp is parked in Read after flushing everything it was given, so
// the two writers never interleave. A failed ping cancels the request,
// which ends the Next blocked on the upstream.
//
// Close, called by fasthttp when the body ends or the connection fails,
// settles what the stream's end needs: the upstream call is cancelled,
// the stream closed (budget settlement, ledger, memory), the access line
// written.
type sseBody struct {
	s      *Server
	st     router.Stream
	cancel context.CancelFunc
	req    *router.ChatRequest
	rec    *reqRecord
	conn   net.Conn

	buf   []byte // the pending event(s); buf[off:] not yet returned
	off   int
	ended bool // [DONE] or the error event is in buf: EOF after it

	mu      sync.Mutex
	t       *time.Timer
	reads   int  // Read calls so far
	waiting bool // Read is blocked in Next and fasthttp flushed all it had
	gone    bool // a ping failed: the client left
	closed  bool
}

func (s *Server) newSSEBody(st router.Stream, cancel context.CancelFunc, req *router.ChatRequest, rec *reqRecord, conn net.Conn) *sseBody {
	b := &sseBody{s: s, st: st, cancel: cancel, req: req, rec: rec, conn: conn, buf: make([]byte, 0, 1024)}
	if conn != nil && s.pingEvery > 0 {
		b.t = time.AfterFunc(s.pingEvery, b.ping)
	}
	return b
}

// Read returns the next event, or the rest of one larger than p
// (fasthttp's copy buffer is 4 KiB: a larger event goes out in parts).
func (b *sseBody) Read(p []byte) (int, error) {
	if b.off < len(b.buf) {
		n := copy(p, b.buf[b.off:])
		b.off += n
		return n, nil
	}
	if b.ended {
		return 0, io.EOF
	}
	b.buf, b.off = b.buf[:0], 0
	b.mu.Lock()
	b.reads++
	b.waiting = b.reads > 1 // fasthttp flushed what the last Read returned
	b.mu.Unlock()
	for {
		c, err := b.s.next(b.st, b.rec)
		b.mu.Lock() // waits for a ping being written
		b.waiting = false
		gone := b.gone
		b.mu.Unlock()
		if err != nil {
			if gone {
				b.rec.setErr(errClientGone())
				return 0, errClientGone()
			}
			b.buf = b.s.appendEnd(b.buf, err, b.rec)
			b.ended = true
			if len(b.buf) == 0 {
				return 0, io.EOF
			}
			break
		}
		b.rec.chunk(c)
		if c.UsageOnly && !b.req.IncludeUsage {
			b.mu.Lock()
			b.waiting = b.reads > 1
			b.mu.Unlock()
			continue // asked upstream for budgets, not wanted by the client
		}
		b.buf = appendEvent(b.buf, c.Data)
		if b.t != nil {
			b.t.Reset(b.s.pingEvery)
		}
		break
	}
	n := copy(p, b.buf)
	b.off = n
	return n, nil
}

// pingChunk is ": ping\n\n" as one HTTP/1.1 chunk.
const pingChunk = "8\r\n: ping\n\n\r\n"

// pingWriteTimeout bounds a ping's write to a client that stopped reading.
const pingWriteTimeout = 10 * time.Second

func (b *sseBody) ping() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed || b.gone {
		return
	}
	if b.waiting {
		_ = b.conn.SetWriteDeadline(time.Now().Add(pingWriteTimeout))
		_, err := io.WriteString(b.conn, pingChunk)
		_ = b.conn.SetWriteDeadline(time.Time{})
		if err != nil {
			b.gone = true
			b.cancel() // ends the Next blocked on the silent upstream
			return
		}
	}
	b.t.Reset(b.s.pingEvery)
}

// Close ends the stream: fasthttp calls it once the body was written or
// the write failed (the client left), and when it drops the response.
func (b *sseBody) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	if b.t != nil {
		b.t.Stop()
	}
	b.mu.Unlock()
	if !b.ended || b.off < len(b.buf) {
		b.rec.setErrIfNone(errClientGone()) // fasthttp stopped before the end
	}
	b.cancel() // stops the upstream
	b.st.Close()
	b.s.finish(b.rec)
	b.s.work.done()
	return nil
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

func appendEvent(b, data []byte) []byte {
	b = append(b, "data: "...)
	b = append(b, data...)
	return append(b, "\n\n"...)
}

// appendEnd appends [DONE] after a clean end, or one OpenAI-shaped error
// event after a failure: the status line is gone, so a clean-looking close
// would hide the failure. A stream the drain cut (the server's base
// context is done) ends with errShuttingDown whatever the upstream read
// returned; only a client that left gets no event.
func (s *Server) appendEnd(buf []byte, err error, rec *reqRecord) []byte {
	if err == io.EOF {
		return append(buf, "data: [DONE]\n\n"...)
	}
	e := router.AsError(err)
	switch {
	case s.base.Err() != nil:
		e = errShuttingDown(err)
	case e.Kind == router.KindCanceled:
		rec.setErr(e)
		return buf // the client left: nobody to tell
	}
	rec.setErr(e)
	b, _ := jsonMarshal(errorBody(e))
	return appendEvent(buf, b)
}
