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

// DefaultConnectTimeout bounds dialing and the TLS handshake when
// TransportOptions.Connect is zero: short, so the router moves on to
// another deployment instead of waiting out the kernel's SYN retries.
const DefaultConnectTimeout = 5 * time.Second

// TransportOptions tunes one provider's transport.
type TransportOptions struct {
	// ResponseHeaderTimeout bounds the wait for the status line; 0 means
	// none.
	ResponseHeaderTimeout time.Duration
	// Connect bounds dialing and, separately, the TLS handshake (the
	// providers[].timeouts.connect setting); 0 means
	// DefaultConnectTimeout.
	Connect time.Duration
}

// NewHTTPClient returns an HTTP client for adapters, with
// DefaultResponseHeaderTimeout and DefaultConnectTimeout. It has no
// http.Client.Timeout on purpose: that bounds the whole exchange and would
// cut long streams.
func NewHTTPClient() *http.Client {
	return NewHTTPClientWith(TransportOptions{ResponseHeaderTimeout: DefaultResponseHeaderTimeout})
}

// NewHTTPClientWith returns an HTTP client over NewTransportWith(o), again
// without http.Client.Timeout.
func NewHTTPClientWith(o TransportOptions) *http.Client {
	return &http.Client{Transport: NewTransportWith(o)}
}

// NewTransport is NewTransportWith with only a response-header timeout.
func NewTransport(responseHeaderTimeout time.Duration) *http.Transport {
	return NewTransportWith(TransportOptions{ResponseHeaderTimeout: responseHeaderTimeout})
}

// NewTransportWith returns a transport tuned for a gateway: many concurrent
// streams to few hosts, so the idle pool per host is large, and dialing
// fails fast (o.Connect) so the router can move on to another deployment.
func NewTransportWith(o TransportOptions) *http.Transport {
	connect := o.Connect
	if connect <= 0 {
		connect = DefaultConnectTimeout
	}
	d := &net.Dialer{Timeout: connect, KeepAlive: 30 * time.Second}
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           d.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   512,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   connect,
		ExpectContinueTimeout: time.Second,
		ResponseHeaderTimeout: o.ResponseHeaderTimeout,
	}
}
