package providers

import (
	"net"
	"net/http"
	"time"
)

// DefaultResponseHeaderTimeout bounds the wait for an upstream's status
// line when nothing else is configured. A non-streamed completion sends its
// headers only once generation is done, so this must cover the slowest
// whole reply; the router's per-attempt FirstToken/Idle timers are the tight
// bounds.
const DefaultResponseHeaderTimeout = 10 * time.Minute

// NewHTTPClient returns the HTTP client adapters share, with
// DefaultResponseHeaderTimeout. It has no http.Client.Timeout on purpose:
// that bounds the whole exchange and would cut long streams.
func NewHTTPClient() *http.Client {
	return &http.Client{Transport: NewTransport(DefaultResponseHeaderTimeout)}
}

// NewTransport returns a transport tuned for a gateway: many concurrent
// streams to few hosts, so the idle pool per host is large, and dialing
// fails fast so the router can move on to another deployment.
// responseHeaderTimeout bounds the wait for the status line; 0 means none.
func NewTransport(responseHeaderTimeout time.Duration) *http.Transport {
	d := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           d.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   512,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   5 * time.Second,
		ExpectContinueTimeout: time.Second,
		ResponseHeaderTimeout: responseHeaderTimeout,
	}
}
