package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// target is one endpoint under test: the proxy or the fake upstream.
type target struct {
	name string // "proxy" or "direct"
	base string // http://127.0.0.1:PORT, no trailing slash
	key  string // bearer token
	pid  int    // process to read /proc for; 0 when unknown
}

func (t target) chatURL() string { return t.base + "/v1/chat/completions" }

// newClient builds the load generator's client: HTTP/1.1 only (no h2 to
// loopback), no compression, no proxy from the environment, and an idle
// pool as large as the connection count so keep-alive connections are never
// closed and redialled mid-run.
func newClient(conns int, timeout time.Duration) *http.Client {
	tr := &http.Transport{
		Proxy:                  nil,
		DialContext:            (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:      false,
		TLSNextProto:           map[string]func(string, *tls.Conn) http.RoundTripper{},
		MaxIdleConns:           conns,
		MaxIdleConnsPerHost:    conns,
		MaxConnsPerHost:        conns,
		IdleConnTimeout:        90 * time.Second,
		DisableCompression:     true,
		ResponseHeaderTimeout:  timeout,
		WriteBufferSize:        16 << 10,
		ReadBufferSize:         16 << 10,
		MaxResponseHeaderBytes: 64 << 10,
	}
	return &http.Client{Transport: tr, Timeout: timeout}
}

// closeClient drops the pool so the next scenario starts with fresh
// connections and the proxy's idle connections are released.
func closeClient(c *http.Client) {
	c.Transport.(*http.Transport).CloseIdleConnections()
}

// Request bodies: a small, realistic chat request.
const (
	plainBody  = `{"model":"%s","messages":[{"role":"system","content":"You are a helpful assistant."},{"role":"user","content":"Write a haiku about load balancers, then explain it in one paragraph."}],"max_tokens":128,"temperature":0.7}`
	streamBody = `{"model":"%s","messages":[{"role":"system","content":"You are a helpful assistant."},{"role":"user","content":"Write a haiku about load balancers, then explain it in one paragraph."}],"max_tokens":128,"temperature":0.7,"stream":true,"stream_options":{"include_usage":true}}`
)

// requester sends one kind of request to one target.
type requester struct {
	c      *http.Client
	url    string
	auth   string
	body   []byte
	stream bool
	chunks int // data events (excluding [DONE]) a stream must carry at least
}

func newRequester(c *http.Client, t target, model string, stream bool, chunks int) *requester {
	b := plainBody
	if stream {
		b = streamBody
	}
	return &requester{c: c, url: t.chatURL(), auth: "Bearer " + t.key,
		body: fmt.Appendf(nil, b, model), stream: stream, chunks: chunks}
}

// result is one request's outcome. ttfb is zero for plain requests.
type result struct {
	// ttft is the first event with content text: a proxy that holds the
	// role chunk until content arrives (llmproxy's commit point) is then
	// compared like for like.
	ttfb, ttft, total time.Duration
	err               error
}

var errStatus = errors.New("bad status")

// do sends one request and reads the whole reply. Times are measured from
// start, which the caller picks (the intended send time for open loop).
func (q *requester) do(ctx context.Context, start time.Time, br *bufio.Reader) result {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, q.url, bytes.NewReader(q.body))
	if err != nil {
		return result{err: err}
	}
	req.ContentLength = int64(len(q.body))
	req.Header["Content-Type"] = []string{"application/json"}
	req.Header["Authorization"] = []string{q.auth}
	resp, err := q.c.Do(req)
	if err != nil {
		return result{err: err}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, resp.Body)
		return result{err: fmt.Errorf("%w %d", errStatus, resp.StatusCode)}
	}
	if !q.stream {
		if _, err := io.Copy(io.Discard, resp.Body); err != nil {
			return result{err: err}
		}
		return result{total: time.Since(start)}
	}
	return readStream(resp.Body, start, br, q.chunks)
}

var (
	errNoDone    = errors.New("stream ended without [DONE]")
	errFewChunks = errors.New("stream carried too few chunks")
)

// readStream reads an SSE body to its end through br, which the caller owns
// and reuses. TTFB is the first event line, not the headers: a proxy may
// send headers before the upstream answers.
func readStream(body io.Reader, start time.Time, br *bufio.Reader, want int) result {
	br.Reset(body)
	defer br.Reset(nil)
	var r result
	events := 0
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 && r.ttfb == 0 {
			r.ttfb = time.Since(start)
		}
		if bytes.HasPrefix(line, []byte("data: ")) {
			if r.ttft == 0 && hasContent(line) {
				r.ttft = time.Since(start)
			}
			if bytes.HasPrefix(line[6:], []byte("[DONE]")) {
				r.total = time.Since(start)
			} else {
				events++
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil && err != bufio.ErrBufferFull {
			return result{err: err}
		}
	}
	if r.total == 0 {
		return result{err: errNoDone}
	}
	if events < want {
		return result{err: fmt.Errorf("%w: %d < %d", errFewChunks, events, want)}
	}
	return r
}

// hasContent reports an event line with non-empty delta content.
func hasContent(line []byte) bool {
	i := bytes.Index(line, []byte(`"content":"`))
	return i >= 0 && i+11 < len(line) && line[i+11] != '"'
}

// requireLoopback refuses anything but a loopback host: the bench must
// never load a machine it does not own.
func requireLoopback(hostport string) error {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return fmt.Errorf("%q: %w", hostport, err)
	}
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("%q is not a loopback address; the bench only talks to 127.0.0.1/::1", hostport)
	}
	return nil
}

// parseTarget checks a -proxy/-direct URL and returns its base.
func parseTarget(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", err
	}
	if u.Scheme != "http" {
		return "", fmt.Errorf("%q: want an http:// URL", raw)
	}
	hp := u.Host
	if u.Port() == "" {
		hp = net.JoinHostPort(u.Hostname(), "80")
	}
	if err := requireLoopback(hp); err != nil {
		return "", err
	}
	base := u.Scheme + "://" + u.Host + u.Path
	for len(base) > 0 && base[len(base)-1] == '/' {
		base = base[:len(base)-1]
	}
	// Accept a base that already ends in /v1.
	if len(base) >= 3 && base[len(base)-3:] == "/v1" {
		base = base[:len(base)-3]
	}
	return base, nil
}

// itoa is strconv.Itoa, short for table code.
func itoa(n int) string { return strconv.Itoa(n) }
