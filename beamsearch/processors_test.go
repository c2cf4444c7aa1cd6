package beamsearch

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"testing"
	"unicode"
)

var inf = float32(math.Inf(1))

func must[T any](p T, err error) T {
	if err != nil {
		panic(err)
	}
	return p
}

func ln(ps ...float64) []float32 {
	out := make([]float32, len(ps))
	for i, p := range ps {
		out[i] = float32(math.Log(p))
	}
	return out
}

// TestProcessors checks every processor on 4-token rows worked out by
// hand (and matched against transformers' processors on the same rows).
func TestProcessors(t *testing.T) {
	l := ln(0.1, 0.2, 0.3, 0.4)
	cases := []struct {
		name    string
		p       LogitsProcessor
		history []int64
		scores  []float32
		want    []float32
	}{
		{"repetition/divides positive, once per token", must(NewRepetitionPenalty(2)), []int64{0, 2, 2}, []float32{1, -1, 4, -2}, []float32{0.5, -1, 2, -2}},
		{"repetition/multiplies negative", must(NewRepetitionPenalty(2)), []int64{0, 3}, []float32{-1, 0, 0, -2}, []float32{-2, 0, 0, -4}},
		{"repetition/below 1 rewards", must(NewRepetitionPenalty(0.5)), []int64{1}, []float32{1, 2, 3, 4}, []float32{1, 4, 3, 4}},
		{"ngram2/bans what followed the last token", must(NewNoRepeatNGram(2)), []int64{0, 1, 2, 1}, []float32{1, 1, 1, 1}, []float32{1, 1, -inf, 1}},
		{"ngram3", must(NewNoRepeatNGram(3)), []int64{0, 1, 2, 0, 1}, []float32{1, 1, 1, 1}, []float32{1, 1, -inf, 1}},
		{"ngram3/history too short", must(NewNoRepeatNGram(3)), []int64{0, 1}, []float32{1, 1, 1, 1}, []float32{1, 1, 1, 1}},
		{"ngram1/bans the whole history", must(NewNoRepeatNGram(1)), []int64{0, 3}, []float32{1, 1, 1, 1}, []float32{-inf, 1, 1, -inf}},
		{"bad words/single and matching pair", must(NewBadWords([][]int64{{1}, {2, 3}, {0, 2}, {3}}, []int64{3})), []int64{0, 2}, []float32{1, 2, 3, 4}, []float32{1, -inf, 3, -inf}},
		{"bad words/pair longer than history ignored", must(NewBadWords([][]int64{{1}, {2, 3}, {0, 2}, {3}}, []int64{3})), []int64{0}, []float32{1, 2, 3, 4}, []float32{1, -inf, 3, 4}},
		{"bad words/other pair", must(NewBadWords([][]int64{{1}, {2, 3}, {0, 2}, {3}}, []int64{3})), []int64{1, 0}, []float32{1, 2, 3, 4}, []float32{1, -inf, -inf, 4}},
		{"min new tokens/masks every eos", must(NewMinNewTokens(2, []int64{3, 1})), []int64{0, 2}, []float32{1, 2, 3, 4}, []float32{1, -inf, 3, -inf}},
		{"min new tokens/reached", must(NewMinNewTokens(2, []int64{3, 1})), []int64{0, 2, 2}, []float32{1, 2, 3, 4}, []float32{1, 2, 3, 4}},
		{"forced bos/first step", must(NewForcedBOS(2)), []int64{0}, []float32{1, 2, 3, 4}, []float32{-inf, -inf, 0, -inf}},
		{"forced bos/later", must(NewForcedBOS(2)), []int64{0, 1}, []float32{1, 2, 3, 4}, []float32{1, 2, 3, 4}},
		{"forced eos/last step", must(NewForcedEOS(3, []int64{3})), []int64{0, 1, 2}, []float32{1, 2, 3, 4}, []float32{-inf, -inf, -inf, 0}},
		{"forced eos/earlier", must(NewForcedEOS(3, []int64{3})), []int64{0, 1}, []float32{1, 2, 3, 4}, []float32{1, 2, 3, 4}},
		{"suppress", must(NewSuppressTokens([]int64{0, 2})), []int64{0}, []float32{1, 2, 3, 4}, []float32{-inf, 2, -inf, 4}},
		{"temperature", must(NewTemperature(2)), []int64{0}, []float32{1, -2, 4, -inf}, []float32{0.5, -1, 2, -inf}},
		{"top-k 2", must(NewTopK(2, 1)), []int64{0}, []float32{1, 3, 2, 0}, []float32{-inf, 3, 2, -inf}},
		{"top-k keeps ties", must(NewTopK(1, 1)), []int64{0}, []float32{1, 3, 3, 0}, []float32{-inf, 3, 3, -inf}},
		{"top-k min keep", must(NewTopK(1, 3)), []int64{0}, []float32{1, 3, 2, 0}, []float32{1, 3, 2, -inf}},
		{"top-k above vocab", must(NewTopK(9, 1)), []int64{0}, []float32{1, 3, 2, 0}, []float32{1, 3, 2, 0}},
		{"top-p 0.6", must(NewTopP(0.6, 1)), []int64{0}, slices.Clone(l), []float32{-inf, -inf, l[2], l[3]}},
		{"top-p 0.5", must(NewTopP(0.5, 1)), []int64{0}, slices.Clone(l), []float32{-inf, -inf, l[2], l[3]}},
		{"top-p 0.3", must(NewTopP(0.3, 1)), []int64{0}, slices.Clone(l), []float32{-inf, -inf, -inf, l[3]}},
		{"top-p 1", must(NewTopP(1, 1)), []int64{0}, slices.Clone(l), slices.Clone(l)},
		{"top-p min keep", must(NewTopP(0.3, 2)), []int64{0}, slices.Clone(l), []float32{-inf, -inf, l[2], l[3]}},
		{"top-p ignores -inf", must(NewTopP(0.5, 1)), []int64{0}, ln(0, 0.25, 0.35, 0.4), []float32{-inf, -inf, ln(0.35)[0], ln(0.4)[0]}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := slices.Clone(c.scores)
			c.p.Process(c.history, got)
			if !closeRow(got, c.want) {
				t.Errorf("got %v, want %v", got, c.want)
			}
			// A second call on fresh scores gives the same (scratch reuse).
			again := slices.Clone(c.scores)
			c.p.Process(c.history, again)
			if !closeRow(again, c.want) {
				t.Errorf("second call: got %v, want %v", again, c.want)
			}
		})
	}
}

func closeRow(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] && math.Abs(float64(a[i]-b[i])) > 1e-6 {
			return false
		}
	}
	return true
}

// TestNewChainOrder checks that NewChain follows generate()'s order and
// leaves out neutral processors and, without sampling, the warpers.
func TestNewChainOrder(t *testing.T) {
	o := Defaults()
	o.EOSTokenIDs = []int64{3}
	o.DecoderStartTokenID = 0
	o.RepetitionPenalty = 1.2
	o.NoRepeatNgramSize = 2
	o.BadWordsIDs = [][]int64{{1}}
	o.MinNewTokens = 1
	o.ForcedBOSTokenID = 2
	o.ForcedEOSTokenID = 3
	o.SuppressTokens = []int64{1}
	o.Temperature = 0.7
	o.TopK = 3
	o.TopP = 0.9
	names := func(c Chain) []string {
		var out []string
		for _, p := range c {
			out = append(out, fmt.Sprintf("%T", p))
		}
		return out
	}
	all := []string{"*beamsearch.RepetitionPenalty", "*beamsearch.NoRepeatNGram", "*beamsearch.BadWords",
		"*beamsearch.MinNewTokens", "*beamsearch.ForcedBOS", "*beamsearch.ForcedEOS", "*beamsearch.SuppressTokens"}
	c, err := NewChain(o)
	if err != nil {
		t.Fatal(err)
	}
	if got := names(c); !slices.Equal(got, all) {
		t.Errorf("without sampling: %v, want %v", got, all)
	}
	o.DoSample = true
	c, err = NewChain(o)
	if err != nil {
		t.Fatal(err)
	}
	want := append(slices.Clone(all), "*beamsearch.Temperature", "*beamsearch.TopK", "*beamsearch.TopP")
	if got := names(c); !slices.Equal(got, want) {
		t.Errorf("sampling: %v, want %v", got, want)
	}
	d := Defaults()
	d.DoSample = true
	d.TopK = 0
	c, err = NewChain(d)
	if err != nil {
		t.Fatal(err)
	}
	if len(c) != 0 {
		t.Errorf("neutral options gave %v", names(c))
	}
}

// TestProcessorConstructorsReject checks that every constructor refuses bad
// arguments with a lower-case ErrInvalidOptions that says what to do.
func TestProcessorConstructorsReject(t *testing.T) {
	nan := math.NaN()
	cases := map[string]error{
		"repetition 0":       second(NewRepetitionPenalty(0)),
		"repetition -1":      second(NewRepetitionPenalty(-1)),
		"repetition nan":     second(NewRepetitionPenalty(nan)),
		"repetition inf":     second(NewRepetitionPenalty(math.Inf(1))),
		"ngram 0":            second(NewNoRepeatNGram(0)),
		"bad words empty":    second(NewBadWords([][]int64{{}}, nil)),
		"bad words negative": second(NewBadWords([][]int64{{1, -1}}, nil)),
		"min new negative":   second(NewMinNewTokens(-1, []int64{1})),
		"min new eos":        second(NewMinNewTokens(1, []int64{-1})),
		"forced bos":         second(NewForcedBOS(-1)),
		"forced eos length":  second(NewForcedEOS(0, []int64{1})),
		"forced eos empty":   second(NewForcedEOS(3, nil)),
		"suppress":           second(NewSuppressTokens([]int64{-2})),
		"temperature 0":      second(NewTemperature(0)),
		"temperature nan":    second(NewTemperature(nan)),
		"top-k 0":            second(NewTopK(0, 1)),
		"top-k keep 0":       second(NewTopK(1, 0)),
		"top-p 0":            second(NewTopP(0, 1)),
		"top-p 1.5":          second(NewTopP(1.5, 1)),
		"top-p nan":          second(NewTopP(nan, 1)),
		"top-p keep 0":       second(NewTopP(0.5, 0)),
	}
	for name, err := range cases {
		t.Run(name, func(t *testing.T) {
			checkOptionsError(t, err)
		})
	}
}

func second[T any](_ T, err error) error { return err }

func checkOptionsError(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		t.Fatal("no error")
	}
	if !errors.Is(err, ErrInvalidOptions) {
		t.Errorf("%v is not ErrInvalidOptions", err)
	}
	msg := err.Error()
	if r := []rune(msg)[0]; unicode.IsUpper(r) {
		t.Errorf("message %q starts upper-case", msg)
	}
}
