package s2s

import (
	"errors"
	"fmt"
	"strings"
)

// Limits bound what one request may ask of a Generator, so that no input
// can exhaust the process. A zero field takes its default (DefaultLimits);
// a request over a limit fails at once with a *LimitError, before any
// graph runs. The model's own position limit (max_position_embeddings,
// see models.Manifest.MaxPositions) applies on top of them.
//
// Each limit has a configuration key, which is also how gen spells it as a
// flag (with dashes: -max-input-tokens) and as an environment variable
// (S2S_MAX_INPUT_TOKENS): the keys are the limits' names below, except
// limit_max_new_tokens, whose name would clash with the max_new_tokens a
// request asks for.
type Limits struct {
	// MaxInputs is the most inputs of one request (one batch). Key
	// max_inputs.
	MaxInputs int
	// MaxInputBytes is the most bytes of one input text, checked before it
	// is tokenized (tokenizing takes time linear in the bytes). Key
	// max_input_bytes; its default is 64 bytes per token of MaxInputTokens.
	MaxInputBytes int
	// MaxInputTokens is the most tokens of one input, special tokens
	// included. Key max_input_tokens.
	MaxInputTokens int
	// MaxNewTokens is the most tokens a request may ask to generate. Key
	// limit_max_new_tokens.
	MaxNewTokens int
	// MaxBeams is the most beams of beam search. Key max_beams.
	MaxBeams int
	// MaxReturnSequences is the most sequences returned per input. Key
	// max_return_sequences.
	MaxReturnSequences int
	// MaxRows is the most decoder rows of one request: inputs times beams
	// (or times returned sequences when sampling). Key max_rows.
	MaxRows int
}

// DefaultLimits are the limits a zero Limits field takes (MaxInputBytes:
// 64 times MaxInputTokens).
var DefaultLimits = Limits{
	MaxInputs:          256,
	MaxInputBytes:      64 * 1024,
	MaxInputTokens:     1024,
	MaxNewTokens:       1024,
	MaxBeams:           32,
	MaxReturnSequences: 32,
	MaxRows:            1024,
}

// maxLimit bounds every limit: past it a count could overflow int
// arithmetic (rows = inputs x beams) on 32-bit hosts.
const maxLimit = 1 << 24

// bytesPerToken is how many bytes of text MaxInputBytes allows per token
// of MaxInputTokens when it is not set.
const bytesPerToken = 64

// WithDefaults returns l with its zero fields set from DefaultLimits.
func (l Limits) WithDefaults() Limits {
	set := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	set(&l.MaxInputs, DefaultLimits.MaxInputs)
	set(&l.MaxInputTokens, DefaultLimits.MaxInputTokens)
	set(&l.MaxInputBytes, min(bytesPerToken*l.MaxInputTokens, maxLimit))
	set(&l.MaxNewTokens, DefaultLimits.MaxNewTokens)
	set(&l.MaxBeams, DefaultLimits.MaxBeams)
	set(&l.MaxReturnSequences, DefaultLimits.MaxReturnSequences)
	set(&l.MaxRows, DefaultLimits.MaxRows)
	return l
}

// limitFields lists the limits with their keys.
func (l *Limits) fields() []struct {
	key string
	v   *int
} {
	return []struct {
		key string
		v   *int
	}{
		{"max_inputs", &l.MaxInputs}, {"max_input_bytes", &l.MaxInputBytes}, {"max_input_tokens", &l.MaxInputTokens},
		{"limit_max_new_tokens", &l.MaxNewTokens}, {"max_beams", &l.MaxBeams},
		{"max_return_sequences", &l.MaxReturnSequences}, {"max_rows", &l.MaxRows},
	}
}

// Validate reports a negative limit or one past 2^24.
func (l Limits) Validate() error {
	for _, f := range l.fields() {
		if *f.v < 0 || *f.v > maxLimit {
			return fmt.Errorf("s2s: limit %s is %d; set it between 1 and %d (0 takes the default) with %s", f.key, *f.v, maxLimit, setting(f.key))
		}
	}
	return nil
}

// setting says how a limit's key is set: its flag and environment variable.
func setting(key string) string {
	return fmt.Sprintf("-%s (S2S_%s)", strings.ReplaceAll(key, "_", "-"), strings.ToUpper(key))
}

// ErrLimit is wrapped by every *LimitError; check with errors.Is.
var ErrLimit = errors.New("s2s: over a limit")

// LimitError is a request over one of the Generator's Limits, or over the
// model's own position limit.
type LimitError struct {
	// Limit is the limit's configuration key (max_input_tokens,
	// limit_max_new_tokens, ...), or max_position_embeddings for the
	// model's position limit.
	Limit string
	// Value is what the request asked for; Max is the limit.
	Value, Max int
	// What says what was counted ("input 3 has 2000 tokens").
	What string
	// Model is set when the limit is the model's own, which no setting
	// raises.
	Model bool
}

func (e *LimitError) Error() string {
	if e.Model {
		what := "shorten the input"
		if strings.HasPrefix(e.What, "max_new_tokens") {
			what = "lower max_new_tokens"
		}
		return fmt.Sprintf("s2s: %s, over the model's %s = %d (its position embeddings end there); %s", e.What, e.Limit, e.Max, what)
	}
	return fmt.Sprintf("s2s: %s, over the limit %s = %d; shorten the request or raise the limit with %s", e.What, e.Limit, e.Max, setting(e.Limit))
}

// Unwrap makes errors.Is(err, ErrLimit) report every LimitError.
func (e *LimitError) Unwrap() error { return ErrLimit }

// over returns a *LimitError when value is above max.
func over(limit string, value, max int, what string) error {
	if value > max {
		return &LimitError{Limit: limit, Value: value, Max: max, What: what}
	}
	return nil
}

// checkTexts returns a *LimitError when a request of texts is over l.
func (l Limits) checkTexts(texts []string) error {
	if err := over("max_inputs", len(texts), l.MaxInputs, fmt.Sprintf("%d inputs", len(texts))); err != nil {
		return err
	}
	for i, t := range texts {
		if err := over("max_input_bytes", len(t), l.MaxInputBytes, fmt.Sprintf("input %d has %d bytes", i, len(t))); err != nil {
			return err
		}
	}
	return nil
}

// CheckOptions returns a *LimitError when options ask for more than l
// allows, or, for maxPositions > 0, for more new tokens than the decoder
// has positions.
func (l Limits) CheckOptions(opts GenerateOptions, maxPositions int) error {
	if maxPositions > 0 && opts.MaxNewTokens > maxPositions && maxPositions <= l.MaxNewTokens {
		return &LimitError{Limit: "max_position_embeddings", Value: opts.MaxNewTokens, Max: maxPositions, Model: true,
			What: fmt.Sprintf("max_new_tokens %d (one decoder position each)", opts.MaxNewTokens)}
	}
	if err := over("limit_max_new_tokens", opts.MaxNewTokens, l.MaxNewTokens, fmt.Sprintf("max_new_tokens %d", opts.MaxNewTokens)); err != nil {
		return err
	}
	if err := over("max_beams", opts.NumBeams, l.MaxBeams, fmt.Sprintf("num_beams %d", opts.NumBeams)); err != nil {
		return err
	}
	return over("max_return_sequences", opts.NumReturnSequences, l.MaxReturnSequences, fmt.Sprintf("num_return_sequences %d", opts.NumReturnSequences))
}

// Check returns a *LimitError when a request of ids with opts is over l
// or, for maxPositions > 0 (the model's max_position_embeddings), over the
// model's positions; else nil. A server that merges requests into one
// batch checks each request with it before merging; Generate checks the
// merged batch against the Generator's own limits.
func (l Limits) Check(ids [][]int64, opts GenerateOptions, maxPositions int) error {
	return l.WithDefaults().check(ids, opts, maxPositions)
}

// check returns a *LimitError when a request of ids with opts is over l
// or, for maxPositions > 0, over the model's positions.
func (l Limits) check(ids [][]int64, opts GenerateOptions, maxPositions int) error {
	if err := over("max_inputs", len(ids), l.MaxInputs, fmt.Sprintf("%d inputs", len(ids))); err != nil {
		return err
	}
	for i, seq := range ids {
		what := fmt.Sprintf("input %d has %d tokens", i, len(seq))
		if maxPositions > 0 && len(seq) > maxPositions && maxPositions <= l.MaxInputTokens {
			return &LimitError{Limit: "max_position_embeddings", Value: len(seq), Max: maxPositions, What: what, Model: true}
		}
		if err := over("max_input_tokens", len(seq), l.MaxInputTokens, what); err != nil {
			return err
		}
	}
	if err := l.CheckOptions(opts, maxPositions); err != nil {
		return err
	}
	perInput := max(opts.NumBeams, 1)
	if opts.DoSample {
		perInput = max(opts.NumReturnSequences, 1)
	}
	// Both factors are at most 2^24 here; their product fits in an int64.
	rows := int64(len(ids)) * int64(perInput)
	if rows > int64(l.MaxRows) {
		return &LimitError{Limit: "max_rows", Value: int(min(rows, 1<<62)), Max: l.MaxRows,
			What: fmt.Sprintf("%d inputs x %d rows each = %d decoder rows", len(ids), perInput, rows)}
	}
	return nil
}

// Cap lowers o.MaxNewTokens to what l and the model's positions
// (maxPositions > 0) allow. It applies to the defaults a model's
// generation_config.json gives (its max_length is a bound on the output,
// so a lower bound keeps its meaning), never to what a request asks.
func (l Limits) Cap(o GenerateOptions, maxPositions int) GenerateOptions {
	l = l.WithDefaults()
	o.MaxNewTokens = min(o.MaxNewTokens, l.MaxNewTokens)
	if maxPositions > 0 {
		o.MaxNewTokens = min(o.MaxNewTokens, maxPositions)
	}
	return o
}
