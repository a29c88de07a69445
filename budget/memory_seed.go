package budget

import "context"

// Rebuilding Memory's counters from the usage ledger (see seed.go): a
// process that restarts keeps its teams' spend.

var _ Seeder = (*Memory)(nil)

// RebuildFromLedger makes Reserve answer *UnseededError for a bucket until
// Seed has added what earlier processes spent on it this period. The
// guard turns it on when it has a SpendSource.
func (m *Memory) RebuildFromLedger() {
	m.mu.Lock()
	m.rebuild = true
	m.mu.Unlock()
}

// unseeded is Reserve's check; the caller holds m.mu.
func (m *Memory) unseeded(mbs []*memBucket) error {
	if !m.rebuild {
		return nil
	}
	var idx []int
	for i, mb := range mbs {
		if !mb.seeded {
			idx = append(idx, i)
		}
	}
	if idx != nil {
		return &UnseededError{Buckets: idx}
	}
	return nil
}

// Seed implements Seeder: it adds a, the bucket's spend before this
// process counted, once per bucket and period. Adding (rather than
// replacing) keeps what this process charged meanwhile.
func (m *Memory) Seed(_ context.Context, b Bucket, a Amount) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	mb := m.bucket(b)
	if !mb.seeded {
		mb.Tokens += a.Tokens
		mb.NanoUSD += a.NanoUSD
		mb.seeded = true
	}
	return nil
}

// Unseeded implements Seeder.
func (m *Memory) Unseeded(_ context.Context, buckets []Bucket) ([]int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.rebuild {
		return nil, nil
	}
	var idx []int
	for i, b := range buckets {
		if !m.bucket(b).seeded {
			idx = append(idx, i)
		}
	}
	return idx, nil
}
