package runtime

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// TestGatherSavedMatchesGather applies random row orders (beam-like:
// repeats, dropped rows, identities, full permutations) in place and wants
// the rows a gather into a fresh buffer gives; the plan must also say in
// place only when it copies fewer rows than the gather.
func TestGatherSavedMatchesGather(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	const rowLen = 3
	var p inPlacePlan
	var scratch []int
	for trial := range 3000 {
		rows := 1 + rng.IntN(12)
		n := 1 + rng.IntN(rows)
		src := make([]int, n)
		for i := range src {
			switch trial % 3 {
			case 0: // beams: mostly themselves, some copies of a neighbour
				src[i] = i
				if rng.IntN(3) == 0 {
					src[i] = rng.IntN(rows)
				}
			case 1: // any row, repeats allowed
				src[i] = rng.IntN(rows)
			default: // a permutation of a subset
				src[i] = rng.Perm(rows)[0]
			}
		}
		if trial%3 == 2 {
			src = rng.Perm(rows)[:n]
		}
		buf := make([]int, rows*rowLen)
		for i := range buf {
			buf[i] = i
		}
		want := make([]int, n*rowLen)
		gatherInto(want, buf, src, rowLen)
		if !p.plan(src, rows) {
			continue
		}
		if len(p.changed)+len(p.saved) >= n {
			t.Fatalf("src %v: plan copies %d+%d rows of %d", src, len(p.changed), len(p.saved), n)
		}
		scratch = gatherSaved(buf, scratch, src, rowLen, &p)
		if !slices.Equal(buf[:n*rowLen], want) {
			t.Fatalf("src %v over %d rows: in place %v, want %v", src, rows, buf[:n*rowLen], want)
		}
	}
	if p.plan([]int{0, 1, 2}, 2) {
		t.Fatal("plan took a reorder that grows the rows")
	}
	// A swap: both rows change and each reads the other.
	buf := []int{10, 11, 20, 21, 30, 31}
	if p.plan([]int{1, 0, 2}, 3) {
		t.Fatalf("a swap of 2 of 3 rows copies 4 rows; the plan should refuse it")
	}
	if !p.plan([]int{0, 0, 2}, 3) {
		t.Fatal("one changed row should go in place")
	}
	gatherSaved(buf, nil, []int{0, 0, 2}, 2, &p)
	if !slices.Equal(buf, []int{10, 11, 10, 11, 30, 31}) {
		t.Fatalf("got %v", buf)
	}
}
