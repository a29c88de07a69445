package ledger

import (
	"sync"
	"time"
)

// The pending index: what the queue holds, summed by team, key, alias
// and UTC day, so that a budget counter rebuilt from the database can add
// the records this replica has not written yet (budget/seed.go). Records
// enter it when Add queues them and leave when their batch is written or
// dropped.

type pendingKey struct {
	team, keyID, alias string
	day                int64 // UTC day number since the epoch
}

type pendingSum struct {
	records int64
	tokens  int64
	cost    float64
	// first is the earliest Record.Time the entry has held: entries newer
	// than a query's end are left out (see Pending).
	first time.Time
}

type pendingIndex struct {
	mu sync.Mutex
	m  map[pendingKey]*pendingSum
}

func dayOf(t time.Time) int64 { return t.UTC().Unix() / 86400 }

func keyOf(r *Record) pendingKey {
	return pendingKey{team: r.Team, keyID: r.KeyID, alias: r.Alias, day: dayOf(r.Time)}
}

func (p *pendingIndex) add(r *Record) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.m == nil {
		p.m = map[pendingKey]*pendingSum{}
	}
	k := keyOf(r)
	s := p.m[k]
	if s == nil {
		s = &pendingSum{first: r.Time}
		p.m[k] = s
	}
	s.records++
	s.tokens += int64(r.PromptTokens + r.CompletionTokens)
	s.cost += r.CostUSD
	if r.Time.Before(s.first) {
		s.first = r.Time
	}
}

func (p *pendingIndex) remove(batch []Record) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := range batch {
		r := &batch[i]
		k := keyOf(r)
		s := p.m[k]
		if s == nil {
			continue
		}
		s.records--
		s.tokens -= int64(r.PromptTokens + r.CompletionTokens)
		s.cost -= r.CostUSD
		if s.records <= 0 {
			delete(p.m, k)
		}
	}
}

// Pending sums the tokens (prompt plus completion) and cost of the
// records queued and not yet written for team, narrowed to one key and
// one alias when those are not empty, whose time lies in [from, to).
// Records are grouped by UTC day, so from should be a UTC midnight (every
// budget period starts at one); a day's records are all counted unless
// every one of them is at or after to. It errs high, never low.
func (l *Ledger) Pending(team, keyID, alias string, from, to time.Time) (tokens int64, costUSD float64) {
	p := &l.pending
	p.mu.Lock()
	defer p.mu.Unlock()
	lo, hi := dayOf(from), dayOf(to)
	for k, s := range p.m {
		if k.team != team || (keyID != "" && k.keyID != keyID) || (alias != "" && k.alias != alias) ||
			k.day < lo || k.day > hi || !s.first.Before(to) {
			continue
		}
		tokens += s.tokens
		costUSD += s.cost
	}
	return tokens, costUSD
}

// WriteSeq is a sequence number for reading Pending and the database
// consistently: it is odd while a batch is being written (its records may
// be in the database and still in Pending) and changes with every write.
// A reader that saw the same even number before reading Pending and after
// reading the database counted every record exactly once.
func (l *Ledger) WriteSeq() uint64 { return l.writeSeq.Load() }
