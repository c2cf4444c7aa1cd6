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

// TestReserveCapsTheCache runs 40 steps with and without Reserve(40): the
// self-attention buffers grow by doubling (32, then 64 positions) without
// it and stop at 40 positions with it, and the logits are the same.
func TestReserveCapsTheCache(t *testing.T) {
	const steps = 40
	positions := func(reserve bool) (int, [][]float32) {
		// A model of its own: a shared one would hand over the buffers of
		// an earlier Decoder (the pool).
		man, m := openModel(t, testModels[0], GraphsMerged)
		src := sources(man)[:2]
		tokens := forcedSteps(man, len(src), steps)
		d := encode(t, m, man, src).(*optimumDecoder)
		defer d.Close()
		if reserve {
			d.Reserve(steps)
		}
		logits := run(t, d, tokens)
		most := 0
		for _, side := range d.self {
			for _, buf := range side {
				most = max(most, len(buf))
			}
		}
		return most / (len(src) * d.lay.heads * d.lay.headDim), logits
	}
	free, want := positions(false)
	capped, got := positions(true)
	if free != 64 || capped != steps {
		t.Fatalf("cache buffers hold %d positions without Reserve (want 64) and %d with Reserve(%d)", free, capped, steps)
	}
	for s := range got {
		if d := maxDiff(got[s], want[s]); d != 0 {
			t.Fatalf("step %d: logits differ by %g with Reserve", s, d)
		}
	}
}

// TestBuffersReused runs two generations on one model and wants the second
// Decoder to run on the first one's buffers (no new cache, logits or
// cross-attention buffers) and to give the same logits; a third Decoder
// open at the same time gets fresh ones.
func TestBuffersReused(t *testing.T) {
	man, m := openModel(t, testModels[0], GraphsMerged)
	src := sources(man)[:2]
	tokens := forcedSteps(man, len(src), 6)
	d1 := encode(t, m, man, src).(*optimumDecoder)
	want := run(t, d1, tokens)
	self0, logits := &d1.self[0][0][0], &d1.logits[0]
	d1.Close()
	d2 := encode(t, m, man, src).(*optimumDecoder)
	d3 := encode(t, m, man, src).(*optimumDecoder)
	got := run(t, d2, tokens)
	if &d2.self[0][0][0] != self0 || &d2.logits[0] != logits {
		t.Error("the second Decoder did not reuse the first one's buffers")
	}
	if len(d3.self[0][0]) != 0 || &d3.logits[0] == logits {
		t.Error("a Decoder open at the same time shares buffers")
	}
	for s := range got {
		if d := maxDiff(got[s], want[s]); d != 0 {
			t.Fatalf("step %d: logits differ by %g on reused buffers", s, d)
		}
	}
	d2.Close()
	d3.Close()
}
