package beamsearch

import (
	"context"
	"reflect"
	"testing"
)

// TestSplitStepsMatchOneGoroutine runs greedy search, sampling and beam
// search with every step's rows split over two goroutines and on one: the
// same results and streams, processors included.
func TestSplitStepsMatchOneGoroutine(t *testing.T) {
	const vocab = 64
	eos := []int64{3}
	sources := []int{0, 1, 2, 3, 4}
	cases := map[string]func(o *Options){
		"greedy":   func(o *Options) { o.RepetitionPenalty, o.NoRepeatNgramSize, o.MinNewTokens = 1.2, 2, 4 },
		"sampling": func(o *Options) { o.DoSample, o.NumReturnSequences, o.Seed, o.TopK, o.TopP = true, 3, 5, 12, 0.9 },
		"beam":     func(o *Options) { o.NumBeams, o.NumReturnSequences, o.RepetitionPenalty, o.MinNewTokens = 4, 2, 1.3, 3 },
	}
	for name, f := range cases {
		t.Run(name, func(t *testing.T) {
			gen := func(threshold int) ([]Result, []Step) {
				old := parallelLogits
				parallelLogits = threshold
				defer func() { parallelLogits = old }()
				var steps []Step
				res, err := Generate(context.Background(), newFakeDecoder(vocab, sources, hashLogits(eos)), len(sources),
					batchOptions(eos, f), func(s Step) error { steps = append(steps, s); return nil })
				if err != nil {
					t.Fatal(err)
				}
				return res, steps
			}
			one, oneSteps := gen(1 << 40)
			split, splitSteps := gen(1)
			if !reflect.DeepEqual(one, split) {
				t.Fatalf("split %+v\none goroutine %+v", split, one)
			}
			if !reflect.DeepEqual(oneSteps, splitSteps) {
				t.Fatal("the streams differ")
			}
		})
	}
}
