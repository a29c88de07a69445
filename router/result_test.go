package router

import (
	"context"
	"io"
	"testing"
)

// TestServeDryRunCallsNoUpstream: a dry run plans as Explain does, reports
// the plan in the Result and returns an empty stream without calling a
// provider or counting an attempt.
func TestServeDryRunCallsNoUpstream(t *testing.T) {
	p1 := &fakeProvider{chat: answers(text("one"))}
	r := newRouter(t, &fakeObserver{}, Deployment{Provider: "p1", Model: "m1", Client: p1})
	req := &ChatRequest{Model: "chat", DryRun: true, Result: &Result{}}
	s, err := r.Serve(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if c, err := s.Next(); c != nil || err != io.EOF {
		t.Errorf("Next() = %v, %v; want io.EOF at once", c, err)
	}
	s.Close()
	res := req.Result
	if p1.calls != 0 || res.Attempts != 0 {
		t.Errorf("%d provider calls, %d attempts; want none", p1.calls, res.Attempts)
	}
	if len(res.Candidates) != 1 || !res.Candidates[0].Chosen || res.Candidates[0].Model != "m1" {
		t.Errorf("candidates = %+v; want m1, chosen", res.Candidates)
	}
}

// TestServeReportsIntoResultOnly: the router reports through the Result
// the caller attached; a caller that attached none gets its request back
// as it sent it, Target included.
func TestServeReportsIntoResultOnly(t *testing.T) {
	p1 := &fakeProvider{chat: answers(text("one"))}
	r := newRouter(t, &fakeObserver{}, Deployment{Provider: "p1", Model: "m1", Client: p1})
	req := &ChatRequest{Model: "chat"}
	s, err := r.Serve(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if req.Result != nil || req.Target != (Target{}) || p1.calls != 1 {
		t.Errorf("request after Serve: Result %+v, Target %+v (%d calls); want both untouched after 1 call", req.Result, req.Target, p1.calls)
	}
}
