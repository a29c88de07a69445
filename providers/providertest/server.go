package providertest

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
)

// ending is what the fake does after its events.
type ending int

const (
	endDone  ending = iota // write the Done frames: a normal end
	endEOF                 // end the body without Done
	endCut                 // abort the connection mid-body
	endError               // write the Fake's error event
	endStall               // go silent until the client leaves
)

// plan is one scripted upstream exchange; it is the fake's http.Handler.
type plan struct {
	t      *testing.T
	fake   Fake
	want   Want
	tr     Transcript
	events int // how many of tr.Events to write; < 0 means all
	end    ending
	errMsg string
	// step, when set, releases one event per receive, so a test can prove
	// each chunk reached it before the next event was written.
	step chan struct{}
	quit chan struct{} // closed when the test ends: frees a stalled handler
	gone chan struct{} // closed once r.Context() is done while waiting
	once sync.Once
}

// serve starts the fake for p and builds the adapter under test against it.
// Cleanup releases stalled handlers, then closes the server, which waits for
// every handler: no fake goroutine outlives the test.
func serve(t *testing.T, f Factory, p *plan) Upstream {
	t.Helper()
	p.t, p.fake = t, f.Fake
	p.quit, p.gone = make(chan struct{}), make(chan struct{})
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(p.quit) }) // LIFO: runs before srv.Close
	return Upstream{BaseURL: srv.URL + "/v1", APIKey: TestKey, HTTPClient: srv.Client()}
}

func (p *plan) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		p.t.Errorf("fake upstream: read request: %v", err)
		return
	}
	if err := p.fake.Check(r, body, p.want); err != nil {
		p.t.Errorf("upstream request: %v", err)
	}
	for k, vs := range p.tr.Header {
		w.Header()[k] = vs
	}
	status := p.tr.Status
	if status == 0 {
		status = http.StatusOK
	}
	w.WriteHeader(status)
	if p.tr.Events == nil && p.end != endStall {
		w.Write(p.tr.Body)
		return
	}
	fl := w.(http.Flusher)
	fl.Flush() // the adapter's Chat returns on headers, before any event
	evs := p.tr.Events
	if p.events >= 0 && p.events < len(evs) {
		evs = evs[:p.events]
	}
	for _, ev := range evs {
		if p.step != nil && !p.wait(r, p.step) {
			return
		}
		w.Write(ev)
		fl.Flush()
	}
	switch p.end {
	case endDone:
		for _, d := range p.tr.Done {
			w.Write(d)
		}
		fl.Flush()
	case endCut:
		panic(http.ErrAbortHandler) // net/http drops the connection, unlogged
	case endError:
		w.Write(p.fake.ErrorEvent(p.errMsg))
		fl.Flush()
	case endStall:
		p.wait(r, nil)
	}
}

// wait blocks until ch yields (true), the client goes away, or the test
// ends. A nil ch never yields.
func (p *plan) wait(r *http.Request, ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	case <-r.Context().Done():
		p.once.Do(func() { close(p.gone) })
	case <-p.quit:
	}
	return false
}
