package main

import (
	"bufio"
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// outcome collects one scenario's results on one target.
type outcome struct {
	lat    []time.Duration // successful requests: total time
	ttfb   []time.Duration // streams only
	ttft   []time.Duration // streams only: first content event
	errs   int
	first  error         // first error seen, for the notes
	wall   time.Duration // first send to last reply
	lagP99 time.Duration // open loop: how late the dispatcher sent, p99
	lagMax time.Duration
}

// collector gathers results from many workers.
type collector struct {
	mu sync.Mutex
	o  outcome
}

func (c *collector) add(r result) {
	c.mu.Lock()
	if r.err != nil {
		c.o.errs++
		if c.o.first == nil {
			c.o.first = r.err
		}
	} else {
		c.o.lat = append(c.o.lat, r.total)
		if r.ttfb > 0 {
			c.o.ttfb = append(c.o.ttfb, r.ttfb)
		}
		if r.ttft > 0 {
			c.o.ttft = append(c.o.ttft, r.ttft)
		}
	}
	c.mu.Unlock()
}

func newReader() *bufio.Reader { return bufio.NewReaderSize(nil, 16<<10) }

// drainGrace is how long a scenario waits past its duration for replies
// already in flight; with the request timeout it bounds every scenario.
const drainGrace = 2 * time.Second

// openLoop sends rate requests per second for dur on a fixed timeline:
// request i is due at start + i/rate whether or not earlier ones have
// returned, and its latency runs from that due time. A slow server thus
// pays for the queue it causes instead of slowing the sender down
// (coordinated omission). workers bounds connections, not the schedule.
func openLoop(ctx context.Context, q *requester, rate float64, dur time.Duration, workers int, timeout time.Duration) outcome {
	total := int(rate * dur.Seconds())
	if total < 1 {
		total = 1
	}
	ctx, cancel := context.WithTimeout(ctx, dur+timeout+drainGrace)
	defer cancel()
	interval := time.Duration(float64(time.Second) / rate)
	start := time.Now().Add(5 * time.Millisecond)
	jobs := make(chan int, total)
	var c collector
	var wg sync.WaitGroup
	for range min(workers, total) {
		wg.Go(func() {
			br := newReader()
			for i := range jobs {
				due := start.Add(time.Duration(i) * interval)
				if ctx.Err() != nil {
					c.add(result{err: ctx.Err()})
					continue
				}
				c.add(q.do(ctx, due, br))
			}
		})
	}
	lags := pace(ctx, start, interval, total, func(i int, _ time.Time) { jobs <- i })
	for i := len(lags); i < total; i++ {
		c.add(result{err: context.Canceled}) // never sent: interrupted
	}
	close(jobs)
	wg.Wait()
	c.o.wall = time.Since(start)
	slices.Sort(lags)
	c.o.lagP99 = percentile(lags, 99)
	if len(lags) > 0 {
		c.o.lagMax = lags[len(lags)-1]
	}
	return c.o
}

// closedLoop runs conns workers, each sending its next request as soon as
// the previous one returns, for dur. With conns=1 it is the serial
// scenario; with streaming requests it is the streaming scenario.
func closedLoop(ctx context.Context, q *requester, conns int, dur time.Duration) outcome {
	ctx, cancel := context.WithTimeout(ctx, dur+q.c.Timeout+drainGrace)
	defer cancel()
	var c collector
	var wg sync.WaitGroup
	var stop atomic.Bool
	timer := time.AfterFunc(dur, func() { stop.Store(true) })
	defer timer.Stop()
	start := time.Now()
	for range conns {
		wg.Go(func() {
			br := newReader()
			for !stop.Load() && ctx.Err() == nil {
				c.add(q.do(ctx, time.Now(), br))
			}
		})
	}
	wg.Wait()
	c.o.wall = time.Since(start)
	return c.o
}

// warm opens conns connections to the target and primes both ends (the
// proxy's upstream pool, lazily built state) without measuring anything.
func warm(ctx context.Context, q *requester, conns int, dur time.Duration) {
	closedLoop(ctx, q, conns, dur)
}
