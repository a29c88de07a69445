package main

import (
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"llmproxy/router"
)

// Request bodies are read by the handlers, after auth, never by fasthttp
// up front (issue 16). With fiber's StreamRequestBody, fasthttp reads only
// the headers and the first 8 KiB of a body before the handlers run; a
// request without a valid key is refused before the rest is read, and the
// rest is read into a buffer that grows with the bytes that arrive, not
// with the Content-Length the client declared. fiber's c.Body() is never
// called: on a streamed body it reads without a limit, and it decodes any
// Content-Encoding without one.
//
// Content-Encoding: a single gzip (or x-gzip) or deflate (zlib) coding is
// decoded as a stream, and server.max_body_bytes applies to the decoded
// bytes as well as to the bytes received: a bomb stops at the limit with a
// 413. Every other coding, and more than one ("gzip, gzip"), is refused
// with 415 before a byte of the body is read.

// bodyPrefetch is how much of a body fasthttp reads before the handler
// runs (readBodyWithStreaming's 8 KiB): within server.body_read_timeout.
const bodyPrefetch = 8 << 10

// bodyInitial caps the first allocation for a body: a declared length
// below it is allocated at once, a larger one grows as bytes arrive.
const bodyInitial = 64 << 10

// errBodyTooLarge is the 413 for a body over server.max_body_bytes,
// the same one fasthttp's own limit produced.
func errBodyTooLarge() *router.Error {
	return toRouterError(fiber.ErrRequestEntityTooLarge)
}

func errBodyTimeout() *router.Error {
	return &router.Error{Kind: router.KindInvalidRequest, Status: fiber.StatusRequestTimeout, Code: "request_timeout",
		Message: "The request body was not received in time: send it without pauses longer than server.body_read_timeout."}
}

// readBody returns the request body, decoded, in a buffer of its own that
// outlives the handler (streams keep it). It reads at most
// server.max_body_bytes (413 beyond); each read waits at most
// server.body_read_timeout and the whole body server.read_timeout.
func (s *Server) readBody(c *fiber.Ctx) ([]byte, error) {
	coding, err := contentCoding(c.Request().Header.Peek(fiber.HeaderContentEncoding))
	if err != nil {
		return nil, err
	}
	declared := c.Request().Header.ContentLength() // -1: chunked
	if declared > s.maxBody {
		return nil, errBodyTooLarge()
	}
	r := s.bodyStream(c)
	body, err := decodeBody(coding, r, s.maxBody, declared)
	if err != nil {
		return nil, bodyError(err, coding)
	}
	if r.eof {
		// Read to its end: the connection can carry the next request.
		c.Request().CloseBodyStream()
	}
	return body, nil
}

// bodyStream is the request's body as it arrives, each read bounded by
// server.body_read_timeout and all of them by server.read_timeout.
func (s *Server) bodyStream(c *fiber.Ctx) *bodyReader {
	declared := c.Request().Header.ContentLength() // -1: chunked
	stream := c.Request().BodyStream()
	if stream == nil { // no body (or a server built without streaming)
		stream = bytes.NewReader(c.Request().Body())
	}
	r := &bodyReader{r: stream}
	if (declared < 0 || declared > bodyPrefetch) && (s.bodyIdle > 0 || s.bodyTotal > 0) {
		// The rest is still on the wire: bound each read of it.
		r.conn, r.idle = c.Context().Conn(), s.bodyIdle
		if s.bodyTotal > 0 {
			r.end = c.Context().Time().Add(s.bodyTotal)
		}
	}
	return r
}

// contentCoding returns "" (identity), "gzip" or "deflate" for a
// Content-Encoding header, or the 415 for anything else.
func contentCoding(h []byte) (string, error) {
	if len(h) == 0 {
		return "", nil
	}
	coding := ""
	for _, part := range strings.Split(string(h), ",") {
		switch p := strings.ToLower(strings.TrimSpace(part)); p {
		case "", "identity":
		case "gzip", "x-gzip", "deflate":
			if coding != "" {
				return "", errUnsupportedCoding(h)
			}
			coding = strings.TrimPrefix(p, "x-")
		default:
			return "", errUnsupportedCoding(h)
		}
	}
	return coding, nil
}

func errUnsupportedCoding(h []byte) *router.Error {
	return &router.Error{Kind: router.KindInvalidRequest, Status: fiber.StatusUnsupportedMediaType, Code: "unsupported_content_encoding",
		Message: "Content-Encoding '" + router.Clip(string(h)) + "' is not supported: send the body uncompressed, or with one gzip or deflate coding."}
}

// decodeBody reads r, decoding coding, into a new buffer of at most max
// bytes. declared is the Content-Length (negative when unknown). Its
// errors are raw; bodyError turns them into client errors.
func decodeBody(coding string, r io.Reader, max, declared int) ([]byte, error) {
	if coding == "" {
		return readCapped(r, max, declared)
	}
	// The encoded bytes are capped too: a body is never read past max.
	raw := &capReader{r: r, n: max}
	var dec io.ReadCloser
	if coding == "gzip" {
		zr, err := gzip.NewReader(raw)
		if err != nil {
			return nil, err
		}
		dec = zr
	} else {
		zr, err := zlib.NewReader(raw)
		if err != nil {
			return nil, err
		}
		dec = zr
	}
	defer dec.Close()
	return readCapped(dec, max, -1)
}

// readCapped reads r to its end into a buffer that grows (doubling) with
// what arrives, never with what was declared: at most max bytes, else
// errCapped.
func readCapped(r io.Reader, max, declared int) ([]byte, error) {
	limit := max + 1 // room to notice one byte too many
	size := min(bodyInitial, limit)
	if declared >= 0 && declared < size {
		size = declared + 1 // +1: the read that sees the end
	}
	buf := make([]byte, 0, size)
	for {
		if len(buf) == cap(buf) {
			if len(buf) >= limit {
				return nil, errCapped
			}
			nb := make([]byte, len(buf), min(2*cap(buf), limit))
			copy(nb, buf)
			buf = nb
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if len(buf) > max {
			return nil, errCapped
		}
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// bodyError is the client-facing error for a failed body read.
func bodyError(err error, coding string) error {
	var re *router.Error
	switch {
	case errors.As(err, &re):
		return re
	case errors.Is(err, errCapped):
		return errBodyTooLarge()
	case isTimeout(err):
		return errBodyTimeout()
	case coding != "":
		return &router.Error{Kind: router.KindInvalidRequest, Code: "invalid_content_encoding",
			Message: "The request body is not valid " + coding + " data.", Err: err}
	}
	return &router.Error{Kind: router.KindInvalidRequest, Message: "The request body could not be read.", Err: err}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

// errCapped is capReader's error past its limit.
var errCapped = errors.New("body over the limit")

// capReader reads at most n bytes of r; reading more is errCapped.
type capReader struct {
	r io.Reader
	n int
}

func (c *capReader) Read(p []byte) (int, error) {
	if c.n < 0 {
		return 0, errCapped
	}
	if len(p) > c.n+1 {
		p = p[:c.n+1]
	}
	n, err := c.r.Read(p)
	c.n -= n
	if c.n < 0 {
		return n, errCapped
	}
	return n, err
}

// bodyReader reads the request's body stream and notes its end. With a
// conn, it bounds each read by idle and all of them by end (zero values:
// no bound): a client that stops sending mid-body is cut after idle, not
// after the read timeout.
type bodyReader struct {
	r    io.Reader
	eof  bool
	conn net.Conn
	idle time.Duration
	end  time.Time
}

func (b *bodyReader) Read(p []byte) (int, error) {
	if b.eof {
		// fasthttp's chunked stream would parse the next request as a
		// chunk header if asked again.
		return 0, io.EOF
	}
	if b.conn != nil {
		dl := b.end // zero: none
		if b.idle > 0 {
			if next := time.Now().Add(b.idle); dl.IsZero() || next.Before(dl) {
				dl = next
			}
		}
		if err := b.conn.SetReadDeadline(dl); err != nil {
			return 0, err
		}
	}
	n, err := b.r.Read(p)
	b.eof = err == io.EOF
	return n, err
}

// lingerFor bounds how long a refused request's unread body is read and
// discarded before the reply goes out (see closeUnread).
const lingerFor = 500 * time.Millisecond

// closeUnread runs after every request: a body the handler did not read
// to its end (a refused request) is still on the wire, where fasthttp
// would parse it as the next request. It is read and discarded — no
// memory, at most lingerFor and about twice max_body_bytes — before the
// reply goes out: closing a socket with unread bytes makes the kernel
// send a reset, and a client still uploading (every SDK does) would lose
// the 413 or 401 and see a connection error, which the SDKs retry. A
// client that stalls or sends more than that gets the reply after
// lingerFor and the connection is closed.
func (s *Server) closeUnread(c *fiber.Ctx) {
	stream := c.Request().BodyStream()
	if stream == nil {
		return
	}
	if conn := c.Context().Conn(); conn != nil && c.Request().Header.ContentLength() != 0 {
		_ = conn.SetReadDeadline(time.Now().Add(lingerFor))
	}
	if _, err := io.CopyN(io.Discard, stream, 2*int64(s.maxBody)+64<<10); err != io.EOF {
		c.Context().SetConnectionClose()
	}
	c.Request().CloseBodyStream()
}

// firstReadTimeout is fasthttp's ReadTimeout: the time a request's headers
// and first 8 KiB of body may take, before any handler runs. It is the
// shorter of server.body_read_timeout and server.read_timeout, so a client
// that declares a body and goes silent is cut after the former.
func firstReadTimeout(s ServerConfig) time.Duration {
	rt, bt := time.Duration(s.ReadTimeout), time.Duration(s.BodyReadTimeout)
	if bt > 0 && (rt <= 0 || bt < rt) {
		return bt
	}
	return rt
}
