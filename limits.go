package s2s

import (
	"errors"
	"fmt"
)

// Limits bound what one request may ask of a Generator, so that no input
// can exhaust the process. A zero field takes its default (DefaultLimits);
// a request over a limit fails at once with a *LimitError, before any
// graph runs.
type Limits struct {
	// MaxInputs is the most inputs of one request (one batch).
	MaxInputs int
	// MaxInputTokens is the most tokens of one input, special tokens
	// included. The model's own position limit (max_position_embeddings),
	// where it has one, applies as well.
	MaxInputTokens int
	// MaxNewTokens is the most tokens a request may ask to generate.
	MaxNewTokens int
	// MaxBeams is the most beams of beam search.
	MaxBeams int
	// MaxReturnSequences is the most sequences returned per input.
	MaxReturnSequences int
	// MaxRows is the most decoder rows of one request: inputs times beams
	// (or times returned sequences when sampling).
	MaxRows int
}

// DefaultLimits are the limits a zero Limits field takes.
var DefaultLimits = Limits{
	MaxInputs:          256,
	MaxInputTokens:     1024,
	MaxNewTokens:       1024,
	MaxBeams:           32,
	MaxReturnSequences: 32,
	MaxRows:            1024,
}

// WithDefaults returns l with its zero fields set from DefaultLimits.
func (l Limits) WithDefaults() Limits {
	set := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	set(&l.MaxInputs, DefaultLimits.MaxInputs)
	set(&l.MaxInputTokens, DefaultLimits.MaxInputTokens)
	set(&l.MaxNewTokens, DefaultLimits.MaxNewTokens)
	set(&l.MaxBeams, DefaultLimits.MaxBeams)
	set(&l.MaxReturnSequences, DefaultLimits.MaxReturnSequences)
	set(&l.MaxRows, DefaultLimits.MaxRows)
	return l
}

// Validate reports a negative limit.
func (l Limits) Validate() error {
	for _, f := range []struct {
		name string
		v    int
	}{
		{"max_inputs", l.MaxInputs}, {"max_input_tokens", l.MaxInputTokens}, {"max_new_tokens", l.MaxNewTokens},
		{"max_beams", l.MaxBeams}, {"max_return_sequences", l.MaxReturnSequences}, {"max_rows", l.MaxRows},
	} {
		if f.v < 0 {
			return fmt.Errorf("s2s: limit %s is %d; set it to 1 or more (0 takes the default)", f.name, f.v)
		}
	}
	return nil
}

// ErrLimit is wrapped by every *LimitError; check with errors.Is.
var ErrLimit = errors.New("s2s: over a limit")

// LimitError is a request over one of the Generator's Limits.
type LimitError struct {
	// Limit is the limit's name, as Limits and the configuration spell it
	// (max_input_tokens, ...).
	Limit string
	// Value is what the request asked for; Max is the limit.
	Value, Max int
	// What says what was counted ("input 3 has 2000 tokens").
	What string
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("s2s: %s, over the limit %s = %d; shorten the request or raise %s", e.What, e.Limit, e.Max, e.Limit)
}

// Unwrap makes errors.Is(err, ErrLimit) report every LimitError.
func (e *LimitError) Unwrap() error { return ErrLimit }

// Check returns a *LimitError when a request of ids with opts is over l,
// else nil. A server that merges requests into one batch checks each
// request with it before merging; Generate checks the merged batch.
func (l Limits) Check(ids [][]int64, opts GenerateOptions) error { return l.check(ids, opts) }

// check returns a *LimitError when a request of ids with opts is over l.
func (l Limits) check(ids [][]int64, opts GenerateOptions) error {
	over := func(limit string, value, max int, what string) error {
		if value > max {
			return &LimitError{Limit: limit, Value: value, Max: max, What: what}
		}
		return nil
	}
	if err := over("max_inputs", len(ids), l.MaxInputs, fmt.Sprintf("%d inputs", len(ids))); err != nil {
		return err
	}
	for i, seq := range ids {
		if err := over("max_input_tokens", len(seq), l.MaxInputTokens, fmt.Sprintf("input %d has %d tokens", i, len(seq))); err != nil {
			return err
		}
	}
	if err := over("max_new_tokens", opts.MaxNewTokens, l.MaxNewTokens, fmt.Sprintf("max_new_tokens %d", opts.MaxNewTokens)); err != nil {
		return err
	}
	if err := over("max_beams", opts.NumBeams, l.MaxBeams, fmt.Sprintf("num_beams %d", opts.NumBeams)); err != nil {
		return err
	}
	if err := over("max_return_sequences", opts.NumReturnSequences, l.MaxReturnSequences, fmt.Sprintf("num_return_sequences %d", opts.NumReturnSequences)); err != nil {
		return err
	}
	perInput := max(opts.NumBeams, 1)
	if opts.DoSample {
		perInput = max(opts.NumReturnSequences, 1)
	}
	return over("max_rows", len(ids)*perInput, l.MaxRows, fmt.Sprintf("%d inputs x %d rows each = %d decoder rows", len(ids), perInput, len(ids)*perInput))
}
