package beamsearch

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"
)

// TestTinyTemperatureIsRefused: a temperature that is not a normal
// float32 rounds to 0 or infinity inside the processor; 1e-40 used to pass
// and sample with NaN scores.
func TestTinyTemperatureIsRefused(t *testing.T) {
	for _, temp := range []float64{1e-40, 1e-39, 5e-324, 1e39, math.MaxFloat64} {
		o := validOptions()
		o.DoSample, o.Temperature = true, temp
		err := o.Validate(10)
		if !errors.Is(err, ErrInvalidOptions) || !strings.Contains(err.Error(), "temperature") {
			t.Errorf("temperature %v: got %v, want an error naming temperature", temp, err)
		}
	}
}

// TestSmallTemperatureNoNaN: a temperature that is valid but pushes the
// scores past float32's range (logits of 10 over 1e-37) samples the top
// token, scored 0; it used to give +Inf scores and a NaN score.
func TestSmallTemperatureNoNaN(t *testing.T) {
	scaled := func(tok int) []float32 {
		row := prefer(tok)
		for i := range row {
			row[i] = 20 + 10*row[i]
		}
		return row
	}
	for _, temp := range []float64{1e-30, 1e-37, 2e-38} {
		o := greedyOptions()
		o.DoSample, o.Temperature, o.TopK = true, temp, 0
		dec := newFakeDecoder(4, []int{0}, tableLogits([][]float32{scaled(1), scaled(2), scaled(3)}))
		res, err := Generate(context.Background(), dec, 1, o, nil)
		if err != nil {
			t.Fatalf("temperature %v: %v", temp, err)
		}
		s := res[0].Sequences[0]
		if math.IsNaN(s.Score) || s.Score != 0 || len(s.Tokens) != 3 || s.Tokens[0] != 1 || s.Tokens[2] != 3 {
			t.Errorf("temperature %v: got %+v, want the top tokens 1 2 3 scored 0", temp, s)
		}
	}
}

// TestInfiniteLogitsBreakTheContract: +Inf logits are refused as NaN ones
// are; -Inf is a token the model rules out.
func TestInfiniteLogitsBreakTheContract(t *testing.T) {
	inf := float32(math.Inf(1))
	beam := greedyOptions()
	beam.NumBeams = 2
	for _, c := range []struct {
		name   string
		opts   Options
		logits []float32
	}{
		{"greedy", greedyOptions(), []float32{0, inf, 0, 0}},
		{"beam", beam, []float32{0, inf, 0, 0, 0, inf, 0, 0}},
		{"sampling", func() Options { o := greedyOptions(); o.DoSample = true; return o }(), []float32{0, inf, 0, 0}},
	} {
		dec := &brokenDecoder{rows: 1, vocab: 4, logits: c.logits}
		_, err := Generate(context.Background(), dec, 1, c.opts, nil)
		if !errors.Is(err, ErrDecoder) || !strings.Contains(err.Error(), "+Inf") {
			t.Errorf("%s: got %v, want ErrDecoder naming +Inf", c.name, err)
		}
	}
	// -Inf everywhere but one token is fine.
	ninf := float32(math.Inf(-1))
	dec := newFakeDecoder(4, []int{0}, tableLogits([][]float32{{ninf, 0, ninf, ninf}, {ninf, ninf, ninf, 0}}))
	res, err := Generate(context.Background(), dec, 1, greedyOptions(), nil)
	if err != nil || len(res[0].Sequences[0].Tokens) != 2 || res[0].Sequences[0].Score != 0 {
		t.Errorf("-Inf logits: %+v, %v", res, err)
	}
}

// TestLengthPenaltyRange: a length penalty for which length **
// length_penalty leaves float32's range is refused (-1e308 used to return
// an empty sequence scored with the internal -1e9 sentinel).
func TestLengthPenaltyRange(t *testing.T) {
	for _, c := range []struct {
		lp      float64
		maxNew  int
		refused bool
	}{
		{-1e308, 20, true}, {1e308, 20, true}, {50, 20, true}, {-50, 20, true},
		{2, 1024, false}, {-2, 1024, false}, {12, 1024, false}, {13, 1024, true}, {1e308, 1, false},
	} {
		o := validOptions()
		o.NumBeams, o.MaxNewTokens, o.LengthPenalty = 2, c.maxNew, c.lp
		err := o.Validate(10)
		if refused := err != nil; refused != c.refused || refused && !strings.Contains(err.Error(), "length_penalty") {
			t.Errorf("length_penalty %v with max_new_tokens %d: got %v, want refused %v", c.lp, c.maxNew, err, c.refused)
		}
	}
	// Penalties in range give real scores. (One so negative that every
	// score falls below generate()'s -1e9 sentinel gives what generate()
	// gives: empty sequences scored -1e9.)
	o := greedyOptions()
	o.NumBeams, o.LengthPenalty = 2, -5
	dec := newFakeDecoder(4, []int{0}, tableLogits([][]float32{prefer(1), prefer(2), prefer(3)}))
	res, err := Generate(context.Background(), dec, 1, o, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range res[0].Sequences {
		if len(s.Tokens) == 0 || s.Score <= float64(beamSentinel) || math.IsInf(s.Score, 0) || math.IsNaN(s.Score) {
			t.Errorf("length_penalty %v: got %+v, want a real hypothesis", o.LengthPenalty, s)
		}
	}
}

// TestEveryOptionAtItsEdges sets each numeric option to 0, -1, a huge
// value, NaN and the infinities: Validate refuses it with a message naming
// the option, or Generate runs on a fake decoder without NaN scores.
func TestEveryOptionAtItsEdges(t *testing.T) {
	ints := map[string]func(*Options, int){
		"max_new_tokens":       func(o *Options, v int) { o.MaxNewTokens = v },
		"min_new_tokens":       func(o *Options, v int) { o.MinNewTokens = v },
		"num_beams":            func(o *Options, v int) { o.NumBeams = v },
		"num_return_sequences": func(o *Options, v int) { o.NumReturnSequences = v },
		"top_k":                func(o *Options, v int) { o.TopK = v },
		"no_repeat_ngram_size": func(o *Options, v int) { o.NoRepeatNgramSize = v },
	}
	ids := map[string]func(*Options, int64){
		"forced_bos_token_id":    func(o *Options, v int64) { o.ForcedBOSTokenID = v },
		"forced_eos_token_id":    func(o *Options, v int64) { o.ForcedEOSTokenID = v },
		"pad_token_id":           func(o *Options, v int64) { o.PadTokenID = v },
		"decoder_start_token_id": func(o *Options, v int64) { o.DecoderStartTokenID = v },
		"eos_token_id":           func(o *Options, v int64) { o.EOSTokenIDs = []int64{v} },
		"suppress_tokens":        func(o *Options, v int64) { o.SuppressTokens = []int64{v} },
		"bad_words_ids":          func(o *Options, v int64) { o.BadWordsIDs = [][]int64{{v}} },
	}
	floats := map[string]func(*Options, float64){
		"length_penalty":     func(o *Options, v float64) { o.LengthPenalty = v },
		"temperature":        func(o *Options, v float64) { o.Temperature = v },
		"top_p":              func(o *Options, v float64) { o.TopP = v },
		"repetition_penalty": func(o *Options, v float64) { o.RepetitionPenalty = v },
	}
	run := func(t *testing.T, name string, o Options) {
		t.Helper()
		if err := o.Validate(4); err != nil {
			if !errors.Is(err, ErrInvalidOptions) || !strings.Contains(err.Error(), strings.SplitN(name, "/", 2)[0]) {
				t.Errorf("%s: %v does not name the option", name, err)
			}
			return
		}
		// Valid: run it (counts beyond the fake's reach are bounded by
		// the caller's limits, not tried here).
		if o.NumBeams > 8 || o.NumReturnSequences > 8 || o.MaxNewTokens > 64 {
			return
		}
		dec := newFakeDecoder(4, []int{0, 1}, hashLogits(o.EOSTokenIDs))
		res, err := Generate(context.Background(), dec, 2, o, nil)
		if err != nil {
			t.Errorf("%s: valid options failed: %v", name, err)
			return
		}
		for _, r := range res {
			for _, s := range r.Sequences {
				if math.IsNaN(s.Score) {
					t.Errorf("%s: NaN score", name)
				}
			}
		}
	}
	base := func(sample bool) Options {
		o := greedyOptions()
		o.DoSample = sample
		return o
	}
	for _, sample := range []bool{false, true} {
		for name, set := range ints {
			for _, v := range []int{0, -1, math.MinInt, 1 << 62, math.MaxInt, 3} {
				o := base(sample)
				set(&o, v)
				run(t, name, o)
			}
		}
		for name, set := range ids {
			for _, v := range []int64{0, -1, -2, math.MinInt64, math.MaxInt64, 4} {
				o := base(sample)
				set(&o, v)
				run(t, name, o)
			}
		}
		for name, set := range floats {
			for _, v := range []float64{0, -1, -math.MaxFloat64, math.MaxFloat64, 1e-40, 1e308, math.NaN(), math.Inf(1), math.Inf(-1), 0.5, 3} {
				o := base(sample)
				set(&o, v)
				run(t, name, o)
				o.NumBeams = 2
				if !sample {
					run(t, name+"/beam", o)
				}
			}
		}
	}
}
