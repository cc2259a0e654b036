package bench

import (
	"context"
	"os/exec"
	"slices"
	"testing"
)

// TestInterleaveShufflesRounds: every contender runs once per round (plus the warm-up),
// each round in its own order, and only the timed rounds are kept.
func TestInterleaveShufflesRounds(t *testing.T) {
	var order []int
	cs := make([]Contender, 4)
	for i := range cs {
		cs[i] = Contender{
			Name:   string(rune('a' + i)),
			Before: func() error { order = append(order, i); return nil },
			Cmd:    func() *exec.Cmd { return exec.Command("true") },
		}
	}
	const rounds = 6
	samples, errs := Interleave(context.Background(), rounds, cs)
	for i := range cs {
		if errs[i] != nil || len(samples[i]) != rounds {
			t.Fatalf("contender %d: %d samples, %v", i, len(samples[i]), errs[i])
		}
	}
	if len(order) != (rounds+1)*len(cs) {
		t.Fatalf("%d runs, want %d", len(order), (rounds+1)*len(cs))
	}
	distinct := map[string]bool{}
	for r := 0; r <= rounds; r++ {
		round := order[r*len(cs) : (r+1)*len(cs)]
		sorted := slices.Sorted(slices.Values(round))
		if !slices.Equal(sorted, []int{0, 1, 2, 3}) {
			t.Fatalf("round %d ran %v", r, round)
		}
		distinct[string(rune('0'+round[0]))+string(rune('0'+round[1]))+string(rune('0'+round[2]))] = true
	}
	if len(distinct) < 3 {
		t.Errorf("rounds ran in too few orders: %v", order)
	}
}
