package providers

import (
	"net/http"
	"testing"
	"time"
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
