package providers

import (
	"errors"
	"net"
	"net/http"
	"testing"
	"time"

	"llmproxy/providers/providertest"
)

func TestNewHTTPClient(t *testing.T) {
	hc := NewHTTPClient()
	if hc.Timeout != 0 {
		t.Errorf("Timeout = %v; want 0 (it would cut long streams)", hc.Timeout)
	}
	tr, ok := hc.Transport.(*http.Transport)
	if !ok {
		t.Fatalf("Transport = %T; want *http.Transport", hc.Transport)
	}
	if tr.ResponseHeaderTimeout != DefaultResponseHeaderTimeout {
		t.Errorf("ResponseHeaderTimeout = %v; want %v", tr.ResponseHeaderTimeout, DefaultResponseHeaderTimeout)
	}
	if tr.MaxIdleConns != 1024 || tr.MaxIdleConnsPerHost != 512 || tr.IdleConnTimeout != 90*time.Second || !tr.ForceAttemptHTTP2 {
		t.Errorf("pool = %d/%d/%v/h2=%v; want 1024/512/90s/true", tr.MaxIdleConns, tr.MaxIdleConnsPerHost, tr.IdleConnTimeout, tr.ForceAttemptHTTP2)
	}
	if got := NewTransport(3 * time.Second).ResponseHeaderTimeout; got != 3*time.Second {
		t.Errorf("NewTransport(3s).ResponseHeaderTimeout = %v; want 3s", got)
	}
}

// TestConnectTimeout: a dial to an address that never answers the SYN
// fails within TransportOptions.Connect, not the 5 s default.
func TestConnectTimeout(t *testing.T) {
	addr := providertest.Blackhole(t)
	tr := NewTransportWith(TransportOptions{Connect: 150 * time.Millisecond})
	defer tr.CloseIdleConnections()
	if tr.TLSHandshakeTimeout != 150*time.Millisecond {
		t.Errorf("TLSHandshakeTimeout = %v; want the connect timeout, 150ms", tr.TLSHandshakeTimeout)
	}
	hc := &http.Client{Transport: tr}
	start := time.Now()
	resp, err := hc.Get("http://" + addr + "/v1/models")
	took := time.Since(start)
	if err == nil {
		resp.Body.Close()
		t.Fatalf("GET to a blackhole succeeded; want a connect timeout")
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("GET error = %v; want a timeout", err)
	}
	if took < 100*time.Millisecond || took > time.Second {
		t.Errorf("connect gave up after %v; want about 150ms", took)
	}
}

func TestConnectTimeoutDefault(t *testing.T) {
	if got := NewTransportWith(TransportOptions{}).TLSHandshakeTimeout; got != DefaultConnectTimeout {
		t.Errorf("TLSHandshakeTimeout = %v; want DefaultConnectTimeout %v", got, DefaultConnectTimeout)
	}
}
