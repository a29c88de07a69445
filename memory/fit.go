package memory

// Fit returns the history that fits in limit tokens (limit < 0: all of it)
// and how many turns it dropped. A turn starts at a user message and runs
// to the next one, so an assistant message that calls tools and the tool
// results that answer it are kept or dropped together. The oldest turns go
// first; system and developer messages are always kept.
func Fit(hist []Message, limit int) (kept []Message, droppedTurns int) {
	if limit < 0 {
		return hist, 0
	}
	total := 0
	for i := range hist {
		total += cost(&hist[i])
	}
	if total <= limit {
		return hist, 0
	}
	drop := make([]bool, len(hist))
	for start := 0; start < len(hist) && total > limit; {
		end := start + 1
		for end < len(hist) && hist[end].Role != "user" {
			end++
		}
		dropped := false
		for i := start; i < end; i++ {
			if !pinned(&hist[i]) {
				drop[i], dropped = true, true
				total -= cost(&hist[i])
			}
		}
		if dropped {
			droppedTurns++
		}
		start = end
	}
	kept = make([]Message, 0, len(hist))
	for i := range hist {
		if !drop[i] {
			kept = append(kept, hist[i])
		}
	}
	return kept, droppedTurns
}

func pinned(m *Message) bool { return m.Role == "system" || m.Role == "developer" }

func cost(m *Message) int { return m.Tokens + perMessageTokens }
