package beamsearch

import (
	"math"
	"strings"
	"testing"
)

func validOptions() Options {
	o := Defaults()
	o.EOSTokenIDs = []int64{2}
	o.DecoderStartTokenID = 0
	return o
}

func TestDefaultsValidate(t *testing.T) {
	if err := validOptions().Validate(10); err != nil {
		t.Fatalf("defaults with model ids: %v", err)
	}
	if err := Defaults().Validate(10); err == nil {
		t.Fatal("defaults without an eos id passed")
	}
}

func TestValidateRejects(t *testing.T) {
	cases := []struct {
		name string
		set  func(*Options)
		says string // part of the message
	}{
		{"max new tokens 0", func(o *Options) { o.MaxNewTokens = 0 }, "max_new_tokens"},
		{"min new tokens negative", func(o *Options) { o.MinNewTokens = -1 }, "min_new_tokens"},
		{"min above max", func(o *Options) { o.MinNewTokens = 30 }, "min_new_tokens"},
		{"no beams", func(o *Options) { o.NumBeams = 0 }, "num_beams"},
		{"no sequences", func(o *Options) { o.NumReturnSequences = 0 }, "num_return_sequences"},
		{"more sequences than beams", func(o *Options) { o.NumBeams = 2; o.NumReturnSequences = 3 }, "num_return_sequences"},
		{"several greedy sequences", func(o *Options) { o.NumReturnSequences = 2 }, "num_return_sequences"},
		{"beam sampling", func(o *Options) { o.NumBeams = 2; o.DoSample = true }, "beam sampling"},
		{"early stopping", func(o *Options) { o.EarlyStopping = "sometimes" }, "early_stopping"},
		{"length penalty nan", func(o *Options) { o.LengthPenalty = math.NaN() }, "length_penalty"},
		{"temperature 0", func(o *Options) { o.Temperature = 0 }, "temperature"},
		{"top-k negative", func(o *Options) { o.TopK = -1 }, "top_k"},
		{"top-p 0", func(o *Options) { o.TopP = 0 }, "top_p"},
		{"top-p above 1", func(o *Options) { o.TopP = 1.01 }, "top_p"},
		{"repetition 0", func(o *Options) { o.RepetitionPenalty = 0 }, "repetition_penalty"},
		{"ngram negative", func(o *Options) { o.NoRepeatNgramSize = -2 }, "no_repeat_ngram_size"},
		{"no eos", func(o *Options) { o.EOSTokenIDs = nil }, "eos_token_id"},
		{"eos outside vocabulary", func(o *Options) { o.EOSTokenIDs = []int64{10} }, "eos_token_id"},
		{"no decoder start", func(o *Options) { o.DecoderStartTokenID = NoToken }, "decoder_start_token_id"},
		{"forced bos outside", func(o *Options) { o.ForcedBOSTokenID = 11 }, "forced_bos_token_id"},
		{"forced eos outside", func(o *Options) { o.ForcedEOSTokenID = 10 }, "forced_eos_token_id"},
		{"pad outside", func(o *Options) { o.PadTokenID = -5 }, "pad_token_id"},
		{"suppress outside", func(o *Options) { o.SuppressTokens = []int64{3, 12} }, "suppress_tokens"},
		{"empty bad words", func(o *Options) { o.BadWordsIDs = [][]int64{{}} }, "bad_words_ids"},
		{"bad words outside", func(o *Options) { o.BadWordsIDs = [][]int64{{1, 40}} }, "bad_words_ids"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := validOptions()
			c.set(&o)
			err := o.Validate(10)
			checkOptionsError(t, err)
			if err != nil && !strings.Contains(err.Error(), c.says) {
				t.Errorf("message %q does not name %s", err, c.says)
			}
		})
	}
}
