package beamsearch

import (
	"context"
	"math"
	"slices"
	"testing"
)

func hashOptions() Options {
	o := Defaults()
	o.EOSTokenIDs = []int64{2}
	o.DecoderStartTokenID = 0
	o.MaxNewTokens = 14
	return o
}

// TestOneBeamIsGreedy runs beam search with one beam against greedy search:
// same tokens; with length_penalty 0 and no processor that renormalises,
// the same score too.
func TestOneBeamIsGreedy(t *testing.T) {
	sources := []int{3, 17, 101, 4242, 9, 55}
	cases := []struct {
		name       string
		set        func(*Options)
		sameScores bool
	}{
		{"plain", func(o *Options) {}, true},
		{"length penalty 0", func(o *Options) { o.LengthPenalty = 0 }, true},
		{"early stopping true", func(o *Options) { o.EarlyStopping = EarlyStoppingTrue; o.LengthPenalty = 0 }, true},
		{"no repeat ngram", func(o *Options) { o.NoRepeatNgramSize = 2 }, false},
		{"bad words and suppress", func(o *Options) { o.BadWordsIDs = [][]int64{{11}, {20, 22}}; o.SuppressTokens = []int64{9} }, false},
		{"min new tokens", func(o *Options) { o.MinNewTokens = 11 }, false},
		{"forced bos and eos", func(o *Options) { o.ForcedBOSTokenID = 5; o.ForcedEOSTokenID = 2; o.MaxNewTokens = 8 }, false},
		{"two eos", func(o *Options) { o.EOSTokenIDs = []int64{2, 7} }, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			opts := hashOptions()
			c.set(&opts)
			chain, err := NewChain(opts)
			if err != nil {
				t.Fatal(err)
			}
			gd := newFakeDecoder(40, sources, hashLogits([]int64{2}))
			greedy, err := greedySearch(context.Background(), gd, len(sources), opts, chain, nil)
			if err != nil {
				t.Fatal(err)
			}
			bd := newFakeDecoder(40, sources, hashLogits([]int64{2}))
			beam, err := beamSearch(context.Background(), bd, len(sources), opts, chain, nil)
			if err != nil {
				t.Fatal(err)
			}
			for i := range sources {
				g, b := greedy[i].Sequences[0], beam[i].Sequences[0]
				if !slices.Equal(g.Tokens, b.Tokens) || g.FinishReason != b.FinishReason {
					t.Errorf("input %d: greedy %v (%s), beam %v (%s)", i, g.Tokens, g.FinishReason, b.Tokens, b.FinishReason)
				}
				penalised := b.Score * math.Pow(float64(len(b.Tokens)), opts.LengthPenalty)
				if c.sameScores && math.Abs(g.Score-penalised) > 1e-4 {
					t.Errorf("input %d: greedy score %v, beam %v", i, g.Score, penalised)
				}
			}
			if !slices.Equal(gd.rowsPerStep, bd.rowsPerStep) {
				t.Errorf("rows per step: greedy %v, beam %v", gd.rowsPerStep, bd.rowsPerStep)
			}
		})
	}
}

// TestBeamSkipsIdentityReorder scripts a search whose beams keep their
// order after the first step: only the expansion and the first step's
// reorder may reach the decoder.
func TestBeamSkipsIdentityReorder(t *testing.T) {
	const vocab = 16
	first := make([]float32, vocab)
	later := make([]float32, vocab)
	for v := range vocab {
		first[v] = -20 - 0.01*float32(v)
		later[v] = -50 - 0.01*float32(v)
	}
	first[5], later[5] = 0, 0
	opts := hashOptions()
	opts.NumBeams = 4
	opts.MaxNewTokens = 6
	dec := newFakeDecoder(vocab, []int{1}, tableLogits([][]float32{first, later}))
	res, err := Generate(context.Background(), dec, 1, opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	if dec.reorders != 2 || dec.identityReorders != 0 {
		t.Errorf("%d reorders (%d identity), want 2: the expansion and step 1", dec.reorders, dec.identityReorders)
	}
	if got := res[0].Sequences[0].Tokens; !slices.Equal(got, []int64{5, 5, 5, 5, 5, 5}) {
		t.Errorf("best %v, want six 5s", got)
	}
}

// TestBeamDropsFinishedInputs scripts one input that fills its n-best at
// step 2 (early stopping true) and one that runs to MaxNewTokens: the first
// input's rows leave the decoder.
func TestBeamDropsFinishedInputs(t *testing.T) {
	const vocab = 8
	eosFirst := make([]float32, vocab)
	noEOS := make([]float32, vocab)
	for v := range vocab {
		eosFirst[v] = -float32(v)
		noEOS[v] = -float32(v)
	}
	eosFirst[2] = 1 // EOS is the best continuation of every beam
	noEOS[2] = -40
	opts := hashOptions()
	opts.NumBeams = 2
	opts.EarlyStopping = EarlyStoppingTrue
	opts.MaxNewTokens = 5
	dec := newFakeDecoder(vocab, []int{0, 1}, bySource(map[int][][]float32{0: {eosFirst}, 1: {noEOS}}))
	rec := newStreamRecorder(2)
	res, err := Generate(context.Background(), dec, 2, opts, rec.record)
	if err != nil {
		t.Fatal(err)
	}
	if want := []int{4, 4, 2, 2, 2}; !slices.Equal(dec.rowsPerStep, want) {
		t.Errorf("rows per step %v, want %v", dec.rowsPerStep, want)
	}
	if got := res[0].Sequences[0]; !slices.Equal(got.Tokens, []int64{2}) || got.FinishReason != FinishEOS {
		t.Errorf("input 0 best %+v, want [2] eos", got)
	}
	if got := res[1].Sequences[0]; len(got.Tokens) != 5 || got.FinishReason != FinishLength {
		t.Errorf("input 1 best %+v, want 5 tokens, length", got)
	}
	rec.check(t, res)
}

// TestBeamStreamsBeforeTheEnd checks that beam streaming hands over settled
// tokens while the search runs, not only in the Final step, and that every
// streamed prefix is a prefix of the final best (the recorder checks that
// the concatenation equals it).
func TestBeamStreamsBeforeTheEnd(t *testing.T) {
	sources := []int{3, 17, 101, 4242, 9}
	opts := hashOptions()
	opts.NumBeams = 4
	opts.NumReturnSequences = 2
	dec := newFakeDecoder(40, sources, hashLogits([]int64{2}))
	early := 0
	var seen [][]int64 = make([][]int64, len(sources))
	var prefixes [][][]int64 = make([][][]int64, len(sources))
	res, err := Generate(context.Background(), dec, len(sources), opts, func(s Step) error {
		seen[s.Input] = append(seen[s.Input], s.Tokens...)
		prefixes[s.Input] = append(prefixes[s.Input], slices.Clone(seen[s.Input]))
		if !s.Final && len(s.Tokens) > 0 {
			early++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if early == 0 {
		t.Error("no tokens streamed before the Final steps")
	}
	for i, r := range res {
		for _, p := range prefixes[i] {
			if !slices.Equal(p, r.Sequences[0].Tokens[:len(p)]) {
				t.Errorf("input %d: streamed %v, not a prefix of %v", i, p, r.Sequences[0].Tokens)
			}
		}
		if !slices.Equal(seen[i], r.Sequences[0].Tokens) {
			t.Errorf("input %d: streamed %v, best %v", i, seen[i], r.Sequences[0].Tokens)
		}
	}
}

// TestHypotheses checks the n-best bookkeeping by hand: length penalty on
// the generated length (EOS counted), order, ties, and when each early
// stopping mode lets an input finish.
func TestHypotheses(t *testing.T) {
	opts := hashOptions()
	opts.MaxNewTokens = 10
	opts.LengthPenalty = 1

	h := newHypotheses(2, opts)
	if h.full() || h.done() {
		t.Fatal("a fresh list is full or done")
	}
	h.update(-5, 1) // an empty slot can always be beaten
	if h.done() {
		t.Fatal("done with empty slots")
	}
	h.add([]int64{7, 8, 2}, -3)    // -3/3 = -1
	h.add([]int64{7, 2}, -1)       // -1/2 = -0.5
	h.add([]int64{9, 9, 9, 2}, -4) // -4/4 = -1: ties with an earlier entry and loses
	scores := []float32{h.slots[0].score, h.slots[1].score}
	if !slices.Equal(scores, []float32{-0.5, -1}) || !slices.Equal(h.slots[1].tokens, []int64{7, 8, 2}) {
		t.Fatalf("slots %+v, want [7 2] at -0.5 then [7 8 2] at -1", h.slots)
	}
	if !h.full() {
		t.Fatal("two finished hypotheses do not fill two slots")
	}
	seqs := h.sequences(2, []int64{2})
	if seqs[0].Score != -0.5 || seqs[0].FinishReason != FinishEOS || !slices.Equal(seqs[1].Tokens, []int64{7, 8, 2}) {
		t.Errorf("sequences %+v", seqs)
	}

	cases := []struct {
		name          string
		earlyStopping string
		lengthPenalty float64
		best          float32
		generated     int
		done          bool
	}{
		{"true stops once full", EarlyStoppingTrue, 1, -0.1, 3, true},
		{"false: best running beam can still win", EarlyStoppingFalse, 1, -2.5, 3, false}, // -2.5/3 > worst
		{"false: it cannot", EarlyStoppingFalse, 1, -3.3, 3, true},                        // -3.3/3 < worst
		{"never: judged at max length", EarlyStoppingNever, 1, -3.3, 3, false},            // -3.3/10 > worst
		{"never, length penalty 0: judged now", EarlyStoppingNever, 0, -3.3, 3, true},     // -3.3 < worst -3
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := opts
			o.EarlyStopping = c.earlyStopping
			o.LengthPenalty = c.lengthPenalty
			h := newHypotheses(2, o)
			h.add([]int64{7, 8, 2}, -3)
			h.add([]int64{7, 2}, -1)
			h.update(c.best, c.generated)
			if h.done() != c.done {
				t.Errorf("done %v, want %v (slots %+v)", h.done(), c.done, h.slots)
			}
		})
	}
}

// TestHypothesesReuseBuffers checks that a full list replaces entries
// without growing: the dropped entry's buffer is reused.
func TestHypothesesReuseBuffers(t *testing.T) {
	h := newHypotheses(2, hashOptions())
	h.add([]int64{1, 2}, -4)
	h.add([]int64{1, 1, 2}, -3)
	allocs := testing.AllocsPerRun(10, func() {
		h.add([]int64{3, 2}, -0.5)
	})
	if allocs != 0 {
		t.Errorf("%v allocations per add", allocs)
	}
}
