//go:build !linux

package providertest

import "testing"

// Blackhole needs Linux's drop-SYN-on-full-backlog behaviour; elsewhere
// the test is skipped.
func Blackhole(tb testing.TB) string {
	tb.Helper()
	tb.Skip("Blackhole needs Linux")
	return ""
}
