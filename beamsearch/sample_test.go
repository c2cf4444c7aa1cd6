package beamsearch

import (
	"context"
	"math"
	"slices"
	"testing"
)

func sampleOptions() Options {
	o := greedyOptions()
	o.DoSample = true
	o.TopK = 0
	o.Seed = 20240611
	return o
}

// TestSamplingFollowsFilteredDistribution draws one token for each of many
// inputs (each with its own random stream) from fixed logits and compares
// the counts with the distribution left by temperature, top-k and top-p:
// filtered tokens never come up, and Pearson's chi-square stays under the
// 0.1% critical value. The seed is fixed, so the test is deterministic.
func TestSamplingFollowsFilteredDistribution(t *testing.T) {
	const draws = 6000
	base := ln(0.1, 0.2, 0.3, 0.4)
	cases := []struct {
		name     string
		set      func(*Options)
		want     []float64
		critical float64 // chi-square, 0.1% tail, len(nonzero)-1 degrees of freedom
	}{
		{"plain", func(o *Options) {}, []float64{.1, .2, .3, .4}, 16.27},
		{"top-k 3", func(o *Options) { o.TopK = 3 }, []float64{0, 2. / 9, 3. / 9, 4. / 9}, 13.82},
		{"temperature 0.5 then top-k 3", func(o *Options) { o.Temperature = 0.5; o.TopK = 3 }, []float64{0, 4. / 29, 9. / 29, 16. / 29}, 13.82},
		{"top-p 0.6", func(o *Options) { o.TopP = 0.6 }, []float64{0, 0, 3. / 7, 4. / 7}, 10.83},
		{"temperature 2", func(o *Options) { o.Temperature = 2 }, normalise(math.Sqrt(.1), math.Sqrt(.2), math.Sqrt(.3), math.Sqrt(.4)), 16.27},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			opts := sampleOptions()
			opts.MaxNewTokens = 1
			c.set(&opts)
			sources := make([]int, draws)
			dec := newFakeDecoder(4, sources, tableLogits([][]float32{base}))
			res, err := Generate(context.Background(), dec, draws, opts, nil)
			if err != nil {
				t.Fatal(err)
			}
			counts := make([]float64, 4)
			for _, r := range res {
				counts[r.Sequences[0].Tokens[0]]++
			}
			chi := 0.0
			for v, p := range c.want {
				if p == 0 {
					if counts[v] != 0 {
						t.Errorf("filtered token %d drawn %v times", v, counts[v])
					}
					continue
				}
				e := p * draws
				chi += (counts[v] - e) * (counts[v] - e) / e
			}
			if chi > c.critical {
				t.Errorf("chi-square %.2f above %.2f: counts %v, want proportions %v", chi, c.critical, counts, c.want)
			}
			// The score is the log-probability the token was drawn with.
			s := res[0].Sequences[0]
			if want := math.Log(c.want[s.Tokens[0]]); math.Abs(s.Score-want) > 1e-5 {
				t.Errorf("score %v, want log %v = %v", s.Score, c.want[s.Tokens[0]], want)
			}
		})
	}
}

func normalise(ps ...float64) []float64 {
	var sum float64
	for _, p := range ps {
		sum += p
	}
	out := make([]float64, len(ps))
	for i, p := range ps {
		out[i] = p / sum
	}
	return out
}

func sampleRun(t *testing.T, sources []int, opts Options) []Result {
	t.Helper()
	dec := newFakeDecoder(40, sources, hashLogits([]int64{2}))
	res, err := Generate(context.Background(), dec, len(sources), opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func sampleOpts() Options {
	o := hashOptions()
	o.DoSample = true
	o.Seed = 99
	o.TopK = 20
	o.TopP = 0.95
	return o
}

// TestSamplingIsReproducible checks that the same seed gives the same
// sequences, and another seed other ones.
func TestSamplingIsReproducible(t *testing.T) {
	sources := []int{3, 17, 101, 4242, 9}
	a := sampleRun(t, sources, sampleOpts())
	b := sampleRun(t, sources, sampleOpts())
	other := sampleOpts()
	other.Seed = 100
	c := sampleRun(t, sources, other)
	differ := false
	for i := range sources {
		if !slices.Equal(a[i].Sequences[0].Tokens, b[i].Sequences[0].Tokens) || a[i].Sequences[0].Score != b[i].Sequences[0].Score {
			t.Errorf("input %d: %v then %v with the same seed", i, a[i].Sequences[0], b[i].Sequences[0])
		}
		differ = differ || !slices.Equal(a[i].Sequences[0].Tokens, c[i].Sequences[0].Tokens)
	}
	if !differ {
		t.Error("seeds 99 and 100 gave the same sequences for every input")
	}
}

// TestSamplingStreamsAreIndependent checks that an input's draws depend on
// the seed and its index only, not on the other inputs of the batch (which
// finish at other times, so rows are dropped around it).
func TestSamplingStreamsAreIndependent(t *testing.T) {
	a := sampleRun(t, []int{3, 17, 101}, sampleOpts())
	b := sampleRun(t, []int{555, 17}, sampleOpts())
	if !slices.Equal(a[1].Sequences[0].Tokens, b[1].Sequences[0].Tokens) {
		t.Errorf("input 1: %v beside other inputs, %v beside others", a[1].Sequences[0].Tokens, b[1].Sequences[0].Tokens)
	}
}

// TestSamplingManySequences draws three sequences per input: each stream
// step names its draw, and the draws are told apart.
func TestSamplingManySequences(t *testing.T) {
	sources := []int{3, 17}
	opts := sampleOpts()
	opts.NumReturnSequences = 3
	opts.Temperature = 1.5
	dec := newFakeDecoder(40, sources, hashLogits([]int64{2}))
	streamed := map[[2]int][]int64{}
	finals := 0
	res, err := Generate(context.Background(), dec, len(sources), opts, func(s Step) error {
		if s.Final {
			finals++
			return nil
		}
		k := [2]int{s.Input, s.Sample}
		streamed[k] = append(streamed[k], s.Tokens...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if finals != len(sources) {
		t.Errorf("%d Final steps, want %d", finals, len(sources))
	}
	if dec.rowsPerStep[0] != 6 {
		t.Errorf("first step ran %d rows, want 6", dec.rowsPerStep[0])
	}
	for i, r := range res {
		if len(r.Sequences) != 3 {
			t.Fatalf("input %d: %d sequences", i, len(r.Sequences))
		}
		for k, s := range r.Sequences {
			if !slices.Equal(streamed[[2]int{i, k}], s.Tokens) {
				t.Errorf("input %d draw %d: streamed %v, result %v", i, k, streamed[[2]int{i, k}], s.Tokens)
			}
		}
		if slices.Equal(r.Sequences[0].Tokens, r.Sequences[1].Tokens) && slices.Equal(r.Sequences[1].Tokens, r.Sequences[2].Tokens) {
			t.Errorf("input %d: three identical draws %v", i, r.Sequences[0].Tokens)
		}
	}
}
