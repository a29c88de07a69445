package providertest

import (
	"errors"
	"net"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// Blackhole returns a loopback address ("127.0.0.1:port") where a TCP
// connect hangs until the dialer gives up: a listening socket that never
// accepts, with a backlog of 0 already filled. Linux drops SYNs to a full
// accept queue (tcp_abort_on_overflow is off by default), so the client
// retransmits and waits, as it would for a host that went silent. It works
// offline; everything is released in cleanup.
func Blackhole(tb testing.TB) string {
	tb.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		tb.Fatalf("blackhole socket: %v", err)
	}
	tb.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		tb.Fatalf("blackhole bind: %v", err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		tb.Fatalf("blackhole listen: %v", err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		tb.Fatalf("blackhole getsockname: %v", err)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(sa.(*syscall.SockaddrInet4).Port))
	// Fill the accept queue: connects succeed until it is full, then one
	// hangs. The kernel's exact slack (backlog+1) does not matter.
	for i := 0; ; i++ {
		if i == 64 {
			tb.Skip("could not fill a listen backlog: connects to a full queue do not hang here")
		}
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return addr
			}
			tb.Fatalf("blackhole fill: %v", err)
		}
		tb.Cleanup(func() { c.Close() })
	}
}
