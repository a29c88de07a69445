package vectorstore

import (
	"cmp"
	"slices"
)

// rrfK is reciprocal-rank fusion's constant (Cormack et al., 2009): a
// chunk at rank r (from 1) of a list adds 1/(rrfK+r) to its score.
const rrfK = 60

// Fuse merges ranked lists of hits (each best first; a chunk appears at
// most once per list) by reciprocal-rank fusion and returns the fused
// hits best first, with Score normalised to [0, 1]: 1 is a chunk ranked
// first in every list, and a chunk ranked first in one of two lists gets
// 0.5. Ties keep the order of the first list that holds them.
func Fuse(lists ...[]Hit) []Hit {
	type acc struct {
		hit   Hit
		score float64
		first int // position of first sight, for stable ties
	}
	byID := map[int64]*acc{}
	var order []*acc
	for _, l := range lists {
		for r, h := range l {
			a := byID[h.ChunkID]
			if a == nil {
				a = &acc{hit: h, first: len(order)}
				byID[h.ChunkID] = a
				order = append(order, a)
			}
			a.score += 1 / float64(rrfK+r+1)
		}
	}
	slices.SortStableFunc(order, func(x, y *acc) int {
		if c := cmp.Compare(y.score, x.score); c != 0 {
			return c
		}
		return cmp.Compare(x.first, y.first)
	})
	best := float64(len(lists)) / float64(rrfK+1)
	out := make([]Hit, len(order))
	for i, a := range order {
		out[i] = a.hit
		out[i].Score = min(1, a.score/best)
	}
	return out
}
