package upstream

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"llmproxy/router"
)

// Client is what an exchange needs to know about one configured provider.
// A vendor adapter fills it once in its New and keeps it for its lifetime;
// it must not be changed while calls are in flight.
type Client struct {
	// Name is the configured provider name, stamped on every error.
	Name string
	// Key is the credential. It is redacted from every error's text.
	Key string
	// Redactor removes Key, credential headers and base-URL credentials
	// from every upstream error (NewRedactor, built once in the vendor's
	// New). Nil builds one from Key and Headers on each error.
	Redactor *Redactor
	// HTTP sends the requests. Cancelling a call's context closes its
	// connection.
	HTTP *http.Client
	// Headers are the operator's static extra headers, set first so they
	// cannot replace Content-Type, Accept or Pinned.
	Headers map[string]string
	// Pinned are set last: the credential header and, for some vendors, a
	// protocol version. Empty values are skipped.
	Pinned map[string]string
	// Status turns a non-2xx reply into the vendor's *router.Error; it is
	// the vendor's errors.go. Post closes the body after it returns.
	Status func(*http.Response) *router.Error
}

// Call is one attempt against the upstream. Its context is derived from the
// caller's with a cancel cause, so a failure can tell the watchdog's timers
// and End apart from the caller leaving. A Call is ended exactly once: by a
// failed Post, by Read or Reply, by End, or by closing the Stream it
// became.
type Call struct {
	c      *Client
	ctx    context.Context // per call: canceled by the watchdog, End or the caller
	parent context.Context // the caller's
	wd     *Watchdog       // holds ctx's cancel function
}

// Start begins a call bounded by firstToken until the first stream event
// (for a plain reply, until the reply is read); firstToken <= 0 means no
// bound.
func (c *Client) Start(parent context.Context, firstToken time.Duration) *Call {
	ctx, cancel := context.WithCancelCause(parent)
	k := c.NewCall(ctx, parent, NewWatchdog(cancel))
	k.wd.Arm(firstToken, ErrFirstToken)
	return k
}

// NewCall wraps a context the caller derived itself: ctx comes from parent
// by context.WithCancelCause, and wd is NewWatchdog of its cancel function.
// Start is the usual way in; NewCall lets a stream decoder be driven over a
// body that did not come from Post, as the vendors' stream tests do.
func (c *Client) NewCall(ctx, parent context.Context, wd *Watchdog) *Call {
	return &Call{c: c, ctx: ctx, parent: parent, wd: wd}
}

// End stops the watchdog and cancels the call's context. It is safe to call
// more than once.
func (k *Call) End() {
	k.wd.Stop()
	k.wd.cancel(ErrClosed)
}

// Post sends body as JSON to url and returns the response when its status
// is 2xx. Nothing from the client's HTTP request is forwarded, so its
// Authorization, OpenAI-Organization or X-Stainless-* headers never reach
// the upstream. stream asks for text/event-stream instead of JSON. On a
// transport failure or a non-2xx status (mapped by Client.Status) the call
// is ended and the error is a *router.Error.
func (k *Call) Post(url string, body []byte, stream bool) (*http.Response, error) {
	resp, err := k.do(url, body, stream)
	if err != nil {
		e := k.c.TransportError(k.ctx, k.parent, err) // before End sets its own cause
		k.End()
		return nil, e
	}
	if resp.StatusCode/100 != 2 {
		e := k.c.RedactError(k.c.Status(resp))
		resp.Body.Close()
		k.End()
		return nil, e
	}
	return resp, nil
}

func (k *Call) do(url string, body []byte, stream bool) (*http.Response, error) {
	hr, err := http.NewRequestWithContext(k.ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	for name, v := range k.c.Headers {
		hr.Header.Set(name, v)
	}
	hr.Header.Set("Content-Type", "application/json")
	if stream {
		hr.Header.Set("Accept", "text/event-stream")
	} else {
		hr.Header.Set("Accept", "application/json")
	}
	for name, v := range k.c.Pinned {
		if v != "" {
			hr.Header.Set(name, v)
		}
	}
	return k.c.HTTP.Do(hr)
}

// Read reads a whole response body, at most limit bytes, closes it and
// ends the call.
func (k *Call) Read(resp *http.Response, limit int64) ([]byte, error) {
	defer k.End()
	defer resp.Body.Close()
	body, err := readAll(resp.Body, resp.ContentLength, limit)
	if err != nil {
		return nil, k.c.TransportError(k.ctx, k.parent, err)
	}
	if int64(len(body)) > limit {
		return nil, &router.Error{Kind: router.KindUpstream, Provider: k.c.Name,
			Message: fmt.Sprintf("provider %q sent a reply larger than %d bytes", k.c.Name, limit)}
	}
	return body, nil
}

// readAll reads r up to limit+1 bytes. With a declared length within the
// limit it reads into a buffer of that size at once: io.ReadAll starts at
// 512 bytes and grows, which was 1.4 KB of garbage per ~700-byte reply in
// the proxy's allocation profile (issue 15). The declared length only
// sizes the buffer: what is read is what the body holds.
func readAll(r io.Reader, declared, limit int64) ([]byte, error) {
	if declared <= 0 || declared > limit {
		return io.ReadAll(io.LimitReader(r, limit+1))
	}
	b := make([]byte, 0, declared+1) // +1: room to see EOF without growing
	for {
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
		if len(b) == cap(b) {
			// Longer than declared (not possible over HTTP/1.1 with a
			// Content-Length, but an io.Reader may): the rest the slow way.
			rest, err := io.ReadAll(io.LimitReader(r, limit+1-int64(len(b))))
			return append(b, rest...), err
		}
	}
}

// Reply reads a plain reply with Read and returns decode's chunk as a
// one-chunk Stream. stream says the client asked for a stream: some
// compatible servers answer a stream request that fails early with a JSON
// body and status 200, so the decoded error is reported, and a body that
// decodes as a reply is an error too.
func (k *Call) Reply(resp *http.Response, limit int64, stream bool, decode func([]byte) (*router.Chunk, error)) (router.Stream, error) {
	body, err := k.Read(resp, limit)
	if err != nil {
		return nil, err
	}
	ch, err := decode(body)
	if err != nil {
		return nil, k.c.redactError(err)
	}
	if stream {
		return nil, &router.Error{Kind: router.KindUpstream, Provider: k.c.Name,
			Message: fmt.Sprintf("provider %q answered a stream request without streaming", k.c.Name)}
	}
	return &whole{chunk: ch}, nil
}

// IsJSON reports whether resp carries a JSON body rather than an event
// stream.
func IsJSON(resp *http.Response) bool {
	return strings.HasPrefix(strings.TrimSpace(resp.Header.Get("Content-Type")), "application/json")
}

// whole is the one-chunk Stream of a plain reply.
type whole struct {
	chunk *router.Chunk
	done  bool
}

func (w *whole) Next() (*router.Chunk, error) {
	if w.done {
		return nil, io.EOF
	}
	w.done = true
	return w.chunk, nil
}

func (w *whole) Close() error { return nil }
