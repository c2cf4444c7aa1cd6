package beamsearch

import (
	"errors"
	"fmt"
	"math"
)

// NoToken marks an unset token id option (forced BOS/EOS, pad).
const NoToken int64 = -1

// Early stopping modes, named as Hugging Face's generate() names them.
const (
	EarlyStoppingTrue  = "true"
	EarlyStoppingFalse = "false"
	EarlyStoppingNever = "never"
)

// Options are the per-request generation options. Field names follow the
// Hugging Face generate() parameters. Start from Defaults (or from a model's
// generation_config.json) and call Validate before use.
type Options struct {
	// MaxNewTokens bounds the number of generated tokens (EOS included).
	MaxNewTokens int
	// MinNewTokens masks every EOS token until this many tokens exist.
	MinNewTokens int

	// NumBeams is 1 for greedy search or sampling, more for beam search.
	NumBeams int
	// NumReturnSequences is how many hypotheses to return per input
	// (at most NumBeams under beam search).
	NumReturnSequences int
	// LengthPenalty is the exponent of the length in beam scores.
	LengthPenalty float64
	// EarlyStopping is "true", "false" or "never" (HF semantics).
	EarlyStopping string

	// DoSample picks tokens at random from the processed distribution.
	DoSample bool
	// Temperature divides the logits (1 leaves them as they are).
	Temperature float64
	// TopK keeps the K most likely tokens when sampling (0 disables).
	TopK int
	// TopP keeps the smallest set of tokens whose probability reaches P (1 disables).
	TopP float64
	// Seed makes sampling reproducible per request.
	Seed uint64

	// RepetitionPenalty divides positive (multiplies negative) logits of
	// tokens already generated (1 disables).
	RepetitionPenalty float64
	// NoRepeatNgramSize forbids repeating any n-gram of this size (0 disables).
	NoRepeatNgramSize int
	// BadWordsIDs lists token sequences that must never be generated.
	BadWordsIDs [][]int64
	// SuppressTokens are never generated.
	SuppressTokens []int64
	// ForcedBOSTokenID is forced as the first generated token (NoToken disables).
	ForcedBOSTokenID int64
	// ForcedEOSTokenID is forced when MaxNewTokens is reached (NoToken disables).
	ForcedEOSTokenID int64

	// EOSTokenIDs end a hypothesis; any of them counts.
	EOSTokenIDs []int64
	// PadTokenID fills finished rows (NoToken if the model has none).
	PadTokenID int64
	// DecoderStartTokenID is fed at the first decoder step.
	DecoderStartTokenID int64
}

// Defaults returns the options generate() uses when nothing else is set,
// less the model's own ids (EOS, pad, decoder start), which come from the
// model's config.
//
// MaxNewTokens is 20: for an encoder-decoder, generate() adds the decoder
// start token to its default max_length of 20 when max_length is not passed
// to it (so 20 new tokens). A max_length L that differs from 20 means L-1
// new tokens.
func Defaults() Options {
	return Options{
		MaxNewTokens:        20, // generate() turns its default max_length 20 into 20 new tokens
		NumBeams:            1,
		NumReturnSequences:  1,
		LengthPenalty:       1.0,
		EarlyStopping:       EarlyStoppingFalse,
		Temperature:         1.0,
		TopK:                50, // transformers' default; used only when sampling
		TopP:                1.0,
		RepetitionPenalty:   1.0,
		ForcedBOSTokenID:    NoToken,
		ForcedEOSTokenID:    NoToken,
		PadTokenID:          NoToken,
		DecoderStartTokenID: NoToken,
	}
}

// MaxCount bounds max_new_tokens, num_beams and num_return_sequences, so
// that no arithmetic on them (rows, candidates per step) overflows. It is
// far above what fits in memory: callers that serve requests set their
// own, lower limits (s2s.Limits).
const MaxCount = 1 << 24

// ErrInvalidOptions is returned (wrapped) by Validate; check with errors.Is.
var ErrInvalidOptions = errors.New("invalid generation options")

// Validate checks the options against each other and against the
// vocabulary size (0 skips the token id range checks).
func (o Options) Validate(vocabSize int) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidOptions, fmt.Sprintf(format, args...))
	}
	switch {
	case o.MaxNewTokens < 1:
		return bad("max_new_tokens is %d; set it to 1 or more", o.MaxNewTokens)
	case o.MaxNewTokens > MaxCount:
		return bad("max_new_tokens is %d; the most is %d", o.MaxNewTokens, MaxCount)
	case o.NumBeams > MaxCount:
		return bad("num_beams is %d; the most is %d", o.NumBeams, MaxCount)
	case o.NumReturnSequences > MaxCount:
		return bad("num_return_sequences is %d; the most is %d", o.NumReturnSequences, MaxCount)
	case o.MinNewTokens < 0:
		return bad("min_new_tokens is %d; it cannot be negative", o.MinNewTokens)
	case o.MinNewTokens > o.MaxNewTokens:
		return bad("min_new_tokens (%d) is above max_new_tokens (%d); lower it or raise max_new_tokens", o.MinNewTokens, o.MaxNewTokens)
	case o.NumBeams < 1:
		return bad("num_beams is %d; set it to 1 or more", o.NumBeams)
	case o.NumReturnSequences < 1:
		return bad("num_return_sequences is %d; set it to 1 or more", o.NumReturnSequences)
	case !o.DoSample && o.NumReturnSequences > o.NumBeams:
		return bad("num_return_sequences (%d) is above num_beams (%d); raise num_beams or sample with do_sample", o.NumReturnSequences, o.NumBeams)
	case o.DoSample && o.NumBeams > 1:
		return bad("beam sampling (do_sample with num_beams %d) is not supported; set num_beams to 1 or do_sample to false", o.NumBeams)
	case o.EarlyStopping != EarlyStoppingTrue && o.EarlyStopping != EarlyStoppingFalse && o.EarlyStopping != EarlyStoppingNever:
		return bad("early_stopping is %q; use true, false or never", o.EarlyStopping)
	case math.IsNaN(o.LengthPenalty) || math.IsInf(o.LengthPenalty, 0):
		return bad("length_penalty is %v; give a finite number", o.LengthPenalty)
	case !lengthPenaltyFits(o.LengthPenalty, o.MaxNewTokens):
		return bad("length_penalty is %v: with max_new_tokens %d, length ** length_penalty leaves float32's range and every beam score would be 0 or infinite; keep it within ±%.4g",
			o.LengthPenalty, o.MaxNewTokens, maxLengthPenalty(o.MaxNewTokens))
	case !float32Factor(o.Temperature):
		return bad("temperature is %v; set it between %.3g and %.3g (it divides float32 logits; 1 leaves them as they are)", o.Temperature, minFactor, maxFactor)
	case o.TopK < 0:
		return bad("top_k is %d; use 0 to disable it", o.TopK)
	case !(o.TopP > 0 && o.TopP <= 1):
		return bad("top_p is %v; set it in (0, 1]", o.TopP)
	case !float32Factor(o.RepetitionPenalty):
		return bad("repetition_penalty is %v; set it between %.3g and %.3g (1 disables it)", o.RepetitionPenalty, minFactor, maxFactor)
	case o.NoRepeatNgramSize < 0:
		return bad("no_repeat_ngram_size is %d; use 0 to disable it", o.NoRepeatNgramSize)
	case len(o.EOSTokenIDs) == 0:
		return bad("no eos_token_id; set one (the model's config.json usually has it)")
	case o.DecoderStartTokenID < 0:
		return bad("no decoder_start_token_id; set one (the model's config.json usually has it)")
	}
	checkID := func(name string, id int64) error {
		if id < 0 || (vocabSize > 0 && id >= int64(vocabSize)) {
			return bad("%s %d is outside the vocabulary [0, %d)", name, id, vocabSize)
		}
		return nil
	}
	for _, id := range o.EOSTokenIDs {
		if err := checkID("eos_token_id", id); err != nil {
			return err
		}
	}
	if err := checkID("decoder_start_token_id", o.DecoderStartTokenID); err != nil {
		return err
	}
	for name, id := range map[string]int64{"forced_bos_token_id": o.ForcedBOSTokenID, "forced_eos_token_id": o.ForcedEOSTokenID, "pad_token_id": o.PadTokenID} {
		if id != NoToken {
			if err := checkID(name, id); err != nil {
				return err
			}
		}
	}
	for _, id := range o.SuppressTokens {
		if err := checkID("suppress_tokens entry", id); err != nil {
			return err
		}
	}
	for _, seq := range o.BadWordsIDs {
		if len(seq) == 0 {
			return bad("bad_words_ids holds an empty sequence; remove it")
		}
		for _, id := range seq {
			if err := checkID("bad_words_ids entry", id); err != nil {
				return err
			}
		}
	}
	return nil
}

// The range of a factor that multiplies or divides float32 scores
// (temperature, repetition_penalty): it must be a normal float32, or it
// would round to 0 or to infinity and turn scores into NaN.
const (
	minFactor = 0x1p-126 // the smallest normal float32, about 1.2e-38
	maxFactor = math.MaxFloat32
)

// float32Factor reports whether x is a usable factor: positive and a
// normal float32.
func float32Factor(x float64) bool {
	return x >= minFactor && x <= maxFactor
}

// maxLengthPenalty is the largest |length_penalty| for which
// length ** length_penalty stays a normal, finite float32 for every length
// up to maxNewTokens (lengthPenalized divides a float32 sum by it).
func maxLengthPenalty(maxNewTokens int) float64 {
	if maxNewTokens <= 1 {
		return math.Inf(1)
	}
	// ln(smallest normal float32) is about -87.3; ln(MaxFloat32) about 88.7.
	return math.Log(minFactor) / -math.Log(float64(maxNewTokens))
}

// lengthPenaltyFits reports whether length_penalty lp keeps every length
// factor in float32's normal range.
func lengthPenaltyFits(lp float64, maxNewTokens int) bool {
	return math.Abs(lp) < maxLengthPenalty(maxNewTokens)
}
