package router

import (
	"strings"
	"testing"
	"time"
)

// TestNoHealthyDeployment: with nothing eligible the client gets a generic
// message and a Retry-After of the soonest reopening, and the details,
// which name configured providers and models, go to Err only.
func TestNoHealthyDeployment(t *testing.T) {
	type dep struct {
		fail error
		rpm  int
	}
	tests := []struct {
		name      string
		deps      []dep
		wantKind  Kind
		wantAfter time.Duration
		wantErr   []string
	}{
		{"breaker open: reopens after open_for", []dep{{fail: errHTTP500}}, KindNoProvider, 3 * time.Second,
			[]string{"chat p1/m: breaker open"}},
		{"rate-limit cooldown sooner than an open breaker", []dep{{fail: errHTTP500}, {fail: &Error{Kind: KindUpstreamRateLimited, Message: "slow", RetryAfter: 1500 * time.Millisecond}}},
			KindNoProvider, 2 * time.Second, []string{"chat p1/m: breaker open", "chat p2/m: cooldown (rate_limited)"}},
		{"all rate limited: 429 until the rpm refill", []dep{{rpm: 1}}, KindUpstreamRateLimited, time.Minute,
			[]string{"chat p1/m: over rpm"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clk := &clock{t: time.Unix(1000, 0)}
			var ds []Deployment
			for i, d := range tc.deps {
				p := &fakeProvider{chat: answers(contentChunk("ok"))}
				if d.fail != nil {
					p = &fakeProvider{chat: fails(d.fail)}
				}
				ds = append(ds, Deployment{Provider: "p" + itoa(i+1), Model: "m", Client: p, RPM: d.rpm})
			}
			r, _ := New(Options{Now: clk.Now, Strategy: StrategyPriority, MaxAttempts: len(ds),
				Breaker: BreakerSettings{MinRequests: 1, OpenFor: 2500 * time.Millisecond},
				Routes:  []Route{{Alias: "chat", Deployments: ds}}})
			serveText(t, r, &ChatRequest{Model: "chat"}) // trips, cools down or uses up every deployment
			_, err := serveText(t, r, &ChatRequest{Model: "chat"})
			e := AsError(err)
			if e.Kind != tc.wantKind || e.RetryAfter != tc.wantAfter {
				t.Errorf("Serve() = kind %v, RetryAfter %v; want %v, %v", e.Kind, e.RetryAfter, tc.wantKind, tc.wantAfter)
			}
			if want := `no healthy deployment for model "chat"; retry later`; e.Message != want || e.Provider != "" {
				t.Errorf("client message = %q (provider %q); want %q and no provider", e.Message, e.Provider, want)
			}
			for _, w := range tc.wantErr {
				if e.Err == nil || !strings.Contains(e.Err.Error(), w) {
					t.Errorf("Err = %v; want it to say %q", e.Err, w)
				}
			}
		})
	}
}
