package vectorstore

import (
	"math"
	"testing"
)

func hits(ids ...int64) []Hit {
	out := make([]Hit, len(ids))
	for i, id := range ids {
		out[i] = Hit{ChunkID: id}
	}
	return out
}

func TestFuse(t *testing.T) {
	for _, tc := range []struct {
		name      string
		vec, text []Hit
		want      []int64
		scores    []float64
	}{
		{"first in both scores 1", hits(1, 2), hits(1, 3), []int64{1, 2, 3}, []float64{1, 0.5 * 61 / 62, 0.5 * 61 / 62}},
		{"agreement beats one list's top", hits(1, 2, 3), hits(3, 2), []int64{3, 2, 1}, nil},
		{"vector only: top gets 0.5", hits(7, 8), nil, []int64{7, 8}, []float64{0.5, 0.5 * 61 / 62}},
		{"ties keep first sight", hits(1), hits(2), []int64{1, 2}, []float64{0.5, 0.5}},
		{"nothing", nil, nil, []int64{}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Fuse(tc.vec, tc.text)
			if len(got) != len(tc.want) {
				t.Fatalf("Fuse = %d hits; want %d", len(got), len(tc.want))
			}
			for i, h := range got {
				if h.ChunkID != tc.want[i] {
					t.Errorf("Fuse[%d] = chunk %d; want %d", i, h.ChunkID, tc.want[i])
				}
				if h.Score < 0 || h.Score > 1 {
					t.Errorf("Fuse[%d].Score = %v; want within [0, 1]", i, h.Score)
				}
				if tc.scores != nil && math.Abs(h.Score-tc.scores[i]) > 1e-9 {
					t.Errorf("Fuse[%d].Score = %v; want %v", i, h.Score, tc.scores[i])
				}
			}
		})
	}
}

func TestTerms(t *testing.T) {
	got := Terms(`What's the "quick" brown fox? fox & a Fuchs; 2024 x`)
	want := []string{"quick", "brown", "fox", "fuchs", "2024"}
	if len(got) != len(want) {
		t.Fatalf("Terms = %q; want %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("Terms = %q; want %q", got, want)
			break
		}
	}
}
