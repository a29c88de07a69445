package anthropic

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if any goroutine (a fake's handler, a stream
// reader, a timer callback) outlives the tests.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
