package main

import (
	"math"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"llmproxy/router"
)

// Load shedding (server.max_inflight, issue 15). Every request and every
// stream still being written holds memory: its body, its buffers, an
// upstream connection, goroutines. Past max_inflight a new API request is
// refused at once with 503 overloaded and Retry-After, before its body is
// read or its key looked up, so memory stays bounded however fast clients
// arrive. Probes, metrics and admin routes are never shed.

// inflightCost is what one request in flight is budgeted at when the
// default limit is derived from memory: a 16 KiB read buffer, a body of a
// few KiB, the upstream connection's buffers and goroutines, the reply.
// Measured at about 60–90 KiB under the bench's overload; 256 KiB leaves
// room for larger bodies.
const inflightCost = 256 << 10

// Bounds of the derived default.
const (
	minDefaultInflight = 64
	maxDefaultInflight = 4096
)

// defaultMaxInflight derives server.max_inflight from the memory the
// process may use: a quarter of the smallest of GOMEMLIMIT, the cgroup's
// memory.max and the machine's memory, at inflightCost a request, within
// [64, 4096]. A 512 MiB pod gets 512; a machine without limits, 4096.
func defaultMaxInflight() int {
	limit := int64(math.MaxInt64)
	if l := debug.SetMemoryLimit(-1); l > 0 && l < limit {
		limit = l
	}
	if l := cgroupMemoryMax(); l > 0 && l < limit {
		limit = l
	}
	if l := memTotal(); l > 0 && l < limit {
		limit = l
	}
	return clampInflight(limit / 4 / inflightCost)
}

func clampInflight(n int64) int {
	return int(min(max(n, minDefaultInflight), maxDefaultInflight))
}

// cgroupMemoryMax is cgroup v2's memory.max (v1's limit_in_bytes), or 0.
func cgroupMemoryMax() int64 {
	for _, p := range []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"} {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		if n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); err == nil && n > 0 && n < 1<<60 {
			return n
		}
	}
	return 0
}

// memTotal is /proc/meminfo's MemTotal in bytes, or 0.
func memTotal() int64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "MemTotal:"); ok {
			f := strings.Fields(v)
			if len(f) > 0 {
				if kb, err := strconv.ParseInt(f[0], 10, 64); err == nil {
					return kb << 10
				}
			}
		}
	}
	return 0
}

// sheddable reports whether a request to path counts against
// max_inflight: the API, not probes, metrics or admin.
func sheddable(path string) bool {
	return strings.HasPrefix(path, "/v1/")
}

// errOverloaded is the 503 a shed request gets.
func errOverloaded() *router.Error {
	return &router.Error{Kind: router.KindNoProvider, Status: fiber.StatusServiceUnavailable, Type: "server_error", Code: "overloaded",
		Message:    "The server is overloaded (server.max_inflight requests in flight); retry after a short wait.",
		RetryAfter: time.Second}
}
