//go:build race

package openai

// raceEnabled skips allocation counts: under -race sync.Pool drops items
// at random, so encoding/json's pooled scanner allocates.
const raceEnabled = true
