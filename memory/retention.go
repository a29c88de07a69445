package memory

import (
	"context"
	"fmt"
	"time"
)

// Sweep deletes the conversations not updated for retention and returns
// how many. It is the whole retention job; the river worker (job.go)
// only schedules it.
func (m *Memory) Sweep(ctx context.Context, retention time.Duration) (int64, error) {
	if retention <= 0 {
		return 0, fmt.Errorf("memory: retention %v is not positive", retention)
	}
	n, err := m.o.Store.DeleteIdle(ctx, m.o.Now().Add(-retention))
	if err != nil {
		return 0, fmt.Errorf("memory: retention sweep: %w", err)
	}
	return n, nil
}
