package main

import (
	"context"
	"runtime"
	"syscall"
	"time"
)

// pace calls send(i, due) for i in [0, total), each at its due time
// start + i·interval, and returns how late each call was.
//
// time.Sleep is no good here: below a millisecond the Go runtime wakes
// sleepers from epoll_wait, whose timeout is in whole milliseconds, so a
// 250 µs gap becomes ~1 ms and the "open loop" sends in bursts. pace
// instead sleeps on a locked OS thread with nanosleep(2) and 1 µs timer
// slack, which lands within tens of microseconds. That thread sits in a
// syscall most of the time, so the caller must leave the runtime at least
// one other P for the workers (see main: GOMAXPROCS ≥ 2).
func pace(ctx context.Context, start time.Time, interval time.Duration, total int, send func(i int, due time.Time)) []time.Duration {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	setTimerSlack(time.Microsecond)
	defer setTimerSlack(0)
	// The sender shares its core with the workers and the fake upstream; a
	// higher priority (best effort: needs CAP_SYS_NICE) keeps it on time.
	tid := syscall.Gettid()
	if syscall.Setpriority(syscall.PRIO_PROCESS, tid, -10) == nil {
		defer func() { _ = syscall.Setpriority(syscall.PRIO_PROCESS, tid, 0) }() // lowering needs no privilege
	}
	lags := make([]time.Duration, 0, total)
	for i := 0; i < total && ctx.Err() == nil; i++ {
		due := start.Add(time.Duration(i) * interval)
		sleepUntil(due)
		lags = append(lags, time.Since(due))
		send(i, due)
	}
	return lags
}

// sleepUntil sleeps coarsely with the runtime timer while far off (so the
// thread is not stuck in a syscall for long) and finely with nanosleep for
// the last 2 ms.
func sleepUntil(t time.Time) {
	if d := time.Until(t) - 2*time.Millisecond; d > 0 {
		time.Sleep(d)
	}
	if d := time.Until(t); d > 0 {
		ts := syscall.NsecToTimespec(int64(d))
		_ = syscall.Nanosleep(&ts, nil) // EINTR only makes us early by a little
	}
}

// setTimerSlack sets this thread's timer slack (0 restores the default,
// 50 µs). The kernel may otherwise defer a nanosleep wake-up by the slack.
func setTimerSlack(d time.Duration) {
	const prSetTimerslack = 29
	_, _, _ = syscall.RawSyscall(syscall.SYS_PRCTL, prSetTimerslack, uintptr(d.Nanoseconds()), 0)
}
