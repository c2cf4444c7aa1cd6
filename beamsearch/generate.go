package beamsearch

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
)

// FinishReason says why a sequence ended.
type FinishReason string

// Finish reasons.
const (
	// FinishEOS means the sequence ended with one of the EOS ids.
	FinishEOS FinishReason = "eos"
	// FinishLength means the sequence reached MaxNewTokens without an EOS.
	FinishLength FinishReason = "length"
)

// Sequence is one generated sequence.
type Sequence struct {
	// Tokens are the generated ids, without the decoder start token, with
	// the EOS that ended the sequence.
	Tokens []int64
	// Score is, under beam search, Hugging Face's sequences_scores: the sum
	// of the processed log-probabilities divided by len(Tokens) **
	// LengthPenalty. Under greedy search and sampling it is the sum, over
	// the chosen tokens, of log_softmax of the processed logits (the
	// distribution the token was picked from), with no length penalty.
	Score float64
	// FinishReason is FinishEOS or FinishLength.
	FinishReason FinishReason
}

// Result holds the sequences of one input.
type Result struct {
	// Sequences has NumReturnSequences entries. Under beam search they are
	// best first. Under sampling they are in draw order (Step.Sample
	// numbers them), as generate() returns them.
	Sequences []Sequence
}

// Step is one streaming event.
type Step struct {
	// Input is the index of the input in the batch.
	Input int
	// Sample is which draw Tokens continue when sampling with
	// NumReturnSequences above 1; otherwise 0.
	Sample int
	// Tokens are newly settled tokens. Under greedy search and sampling
	// that is each token as it is chosen. Under beam search it is the
	// part of the best sequence that no later step can change; the
	// Final step carries the rest of Sequences[0]. Concatenated, the
	// Tokens of one input (and sample) equal its final sequence. The
	// slice belongs to the receiver.
	Tokens []int64
	// Final is set once per input, when its sequences are complete.
	Final bool
	// Sequences is the input's Result.Sequences, set when Final.
	Sequences []Sequence
}

// StreamFunc receives steps as generation goes. Returning an error stops
// generation, and Generate returns that error.
type StreamFunc func(Step) error

// ErrDecoder is returned (wrapped) when the decoder breaks its contract:
// a wrong number of rows or logits, or NaN or +Inf logits (-Inf is allowed:
// a token the model rules out); check with errors.Is.
var ErrDecoder = errors.New("decoder broke its contract")

// beamSentinel is the score generate() gives to beams and hypothesis slots
// that must not win (-1e9).
const beamSentinel float32 = -1e9

// Generate runs the search the options ask for over dec and returns one
// Result per input.
//
// dec must hold batch rows, one per input, with nothing decoded yet. The
// first Step feeds opts.DecoderStartTokenID to every row. Beam search first
// expands each input to NumBeams rows (Reorder([0,0,..,1,1,..])), and
// sampling to NumReturnSequences rows; rows of finished inputs are dropped
// with Reorder as generation goes. opts are validated against
// dec.VocabSize() first. stream may be nil.
//
// NumBeams 1 is greedy search, or sampling with DoSample; NumBeams above 1
// is beam search. Beam sampling is not supported.
func Generate(ctx context.Context, dec Decoder, batch int, opts Options, stream StreamFunc) ([]Result, error) {
	if dec == nil {
		return nil, fmt.Errorf("beamsearch: %w: decoder is nil; pass the decoder made for this batch", ErrDecoder)
	}
	vocab := dec.VocabSize()
	if vocab < 1 {
		return nil, fmt.Errorf("beamsearch: %w: vocabulary size is %d; the decoder must report its logits width", ErrDecoder, vocab)
	}
	if err := opts.Validate(vocab); err != nil {
		return nil, fmt.Errorf("beamsearch: %w", err)
	}
	if batch < 1 {
		return nil, fmt.Errorf("beamsearch: %w: batch is %d; pass at least one input", ErrInvalidOptions, batch)
	}
	if rows := dec.Rows(); rows != batch {
		return nil, fmt.Errorf("beamsearch: %w: decoder holds %d rows for a batch of %d; start it with one row per input", ErrDecoder, rows, batch)
	}
	chain, err := NewChain(opts)
	if err != nil {
		return nil, fmt.Errorf("beamsearch: %w", err)
	}
	if r, ok := dec.(Reserver); ok {
		r.Reserve(opts.MaxNewTokens)
	}
	var results []Result
	if opts.NumBeams > 1 {
		results, err = beamSearch(ctx, dec, batch, opts, chain, stream)
	} else {
		results, err = greedySearch(ctx, dec, batch, opts, chain, stream)
	}
	if err != nil {
		return nil, err
	}
	if err := checkScores(results); err != nil {
		return nil, err
	}
	return results, nil
}

// expand makes each of batch rows into n consecutive rows.
func expand(dec Decoder, batch, n int) error {
	if n == 1 {
		return nil
	}
	src := make([]int, 0, batch*n)
	for i := range batch {
		for range n {
			src = append(src, i)
		}
	}
	if err := dec.Reorder(src); err != nil {
		return fmt.Errorf("beamsearch: decoder reorder: %w", err)
	}
	return nil
}

// step feeds tokens to the decoder and checks what comes back.
func step(ctx context.Context, dec Decoder, tokens []int64, vocab int) ([]float32, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	logits, err := dec.Step(ctx, tokens)
	if err != nil {
		return nil, fmt.Errorf("beamsearch: decoder step: %w", err)
	}
	if len(logits) != len(tokens)*vocab {
		return nil, fmt.Errorf("beamsearch: %w: Step returned %d logits for %d rows of %d; it must return rows*vocab", ErrDecoder, len(logits), len(tokens), vocab)
	}
	return logits, nil
}

// reorder calls dec.Reorder unless src keeps every row in place.
func reorder(dec Decoder, src []int, rows int) error {
	if len(src) == rows {
		identity := true
		for i, s := range src {
			if s != i {
				identity = false
				break
			}
		}
		if identity {
			return nil
		}
	}
	if err := dec.Reorder(src); err != nil {
		return fmt.Errorf("beamsearch: decoder reorder: %w", err)
	}
	return nil
}

func isEOS(eos []int64, t int64) bool {
	return slices.Contains(eos, t)
}

func nanError(row int) error {
	return fmt.Errorf("beamsearch: %w: row %d of the logits holds NaN; check the model export", ErrDecoder, row)
}

func infError(row int) error {
	return fmt.Errorf("beamsearch: %w: row %d of the logits holds +Inf; check the model export", ErrDecoder, row)
}

// checkScores reports a sequence scored NaN, which no input may cause:
// the decoder contract check and the options' ranges rule it out.
func checkScores(results []Result) error {
	for i, r := range results {
		for j, s := range r.Sequences {
			if math.IsNaN(s.Score) {
				return fmt.Errorf("beamsearch: sequence %d of input %d scored NaN; this is a bug, report it with the options used", j, i)
			}
		}
	}
	return nil
}

// lengthPenalized divides a beam's summed log-probabilities by
// length ** penalty, in float32 as generate() does.
func lengthPenalized(sum float32, length int, penalty float64) float32 {
	return sum / float32(math.Pow(float64(length), penalty))
}

func finishReason(eos []int64, tokens []int64) FinishReason {
	if len(tokens) > 0 && isEOS(eos, tokens[len(tokens)-1]) {
		return FinishEOS
	}
	return FinishLength
}
