package runtime

import (
	"context"
	"errors"
	"fmt"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/s2s-dev/s2s/beamsearch"
)

// Decoder is the decoder state of one encoded batch: what the encoder gave
// and the cache (attention keys and values, or recurrent state) of each
// live row. It implements beamsearch.Decoder and beamsearch.Reserver. Each
// cache layout is a type of its own (optimumDecoder for the past/present
// graphs Optimum writes, rnnDecoder for recurrent models); Model.Encode
// picks the one the model's graphs need. A Decoder is not safe for
// concurrent use; many Decoders may share one Model. Close it when done.
type Decoder interface {
	beamsearch.Decoder
	beamsearch.Reserver
	// Steps returns the number of tokens fed so far.
	Steps() int
	// Close releases the Decoder's tensors. Closing twice is harmless.
	Close() error
}

// rowState is what every Decoder type keeps of its rows: which input each
// row continues, the tokens of a step and the logits it gives, and the
// argument lists of the graph runs.
type rowState struct {
	m      *Model
	vocab  int
	rows   int // live rows
	encLen int // padded input length
	steps  int // tokens fed so far
	closed bool

	inputOf []int // per row: the Encode input it continues
	next    []int // scratch of mapInputs

	ids     []int64 // [rows, 1] tokens of the step
	idsT    *ort.Tensor[int64]
	logits  []float32 // [rows, 1, vocab]
	logitsT *ort.Tensor[float32]

	in, out []ort.Value // reused argument lists of Run
}

// Rows returns the number of live rows.
func (r *rowState) Rows() int { return r.rows }

// VocabSize returns the width of one row of logits.
func (r *rowState) VocabSize() int { return r.vocab }

// Steps returns the number of tokens fed so far.
func (r *rowState) Steps() int { return r.steps }

// checkStep checks the tokens of a Step.
func (r *rowState) checkStep(tokens []int64) error {
	if r.closed {
		return fmt.Errorf("%w: step on a closed decoder; encode again", ErrClosed)
	}
	if len(tokens) != r.rows {
		return fmt.Errorf("runtime: step: %d tokens for %d rows; pass one token per row", len(tokens), r.rows)
	}
	for i, t := range tokens {
		if t < 0 || t >= int64(r.vocab) {
			return fmt.Errorf("runtime: step: row %d has the token id %d outside the vocabulary [0, %d); pass the tokenizer's ids", i, t, r.vocab)
		}
	}
	return nil
}

// checkReorder checks the rows of a Reorder and reports whether src keeps
// every row where it is (nothing to do).
func (r *rowState) checkReorder(src []int) (identity bool, err error) {
	if r.closed {
		return false, fmt.Errorf("%w: reorder on a closed decoder; encode again", ErrClosed)
	}
	if len(src) == 0 {
		return false, errors.New("runtime: reorder to no rows; close the decoder instead")
	}
	identity = len(src) == r.rows
	for i, s := range src {
		if s < 0 || s >= r.rows {
			return false, fmt.Errorf("runtime: reorder: src[%d] = %d is not a row (there are %d); pass indexes of current rows", i, s, r.rows)
		}
		if s != i {
			identity = false
		}
	}
	return identity, nil
}

// mapInputs sets r.next[i] to the input new row i continues and reports
// whether any row now continues another input than before (rows dropped
// or moved across inputs), which the per-input tensors must follow.
func (r *rowState) mapInputs(src []int) (moved bool) {
	n := len(src)
	r.next = grow(r.next[:0], n, 0)[:n]
	moved = n != r.rows
	for i, s := range src {
		r.next[i] = r.inputOf[s]
		if i < r.rows && r.next[i] != r.inputOf[i] {
			moved = true
		}
	}
	return moved
}

// makeIDsLogits (re)makes the tensors of the step's tokens and logits for
// the current rows.
func (r *rowState) makeIDsLogits() error {
	release(&r.idsT)
	release(&r.logitsT)
	r.ids = grow(r.ids, r.rows, 0)
	r.logits = grow(r.logits, r.rows*r.vocab, 0)
	var err error
	if r.idsT, err = header(r.ids, int64(r.rows), 1); err != nil {
		return fmt.Errorf("runtime: %w", err)
	}
	if r.logitsT, err = header(r.logits, int64(r.rows), 1, int64(r.vocab)); err != nil {
		return fmt.Errorf("runtime: %w", err)
	}
	return nil
}

// closeRows releases the row tensors; it reports false when the state was
// closed already.
func (r *rowState) closeRows() bool {
	if r.closed {
		return false
	}
	r.closed = true
	release(&r.idsT)
	release(&r.logitsT)
	r.in, r.out = nil, nil
	return true
}

// batch is an Encode's inputs padded into one [rows, encLen] batch.
type batch struct {
	rows, encLen int
	tokens       []int64 // [rows, encLen], padded on the right
	mask         []int64 // [rows, encLen], 1 on real tokens
}

// padBatch checks inputs and pads them on the right with padID to the
// longest (a negative padID pads with 0).
func padBatch(inputs [][]int64, padID int64) (batch, error) {
	if padID < 0 {
		padID = 0
	}
	if len(inputs) == 0 {
		return batch{}, errors.New("runtime: encode: no inputs; pass at least one token sequence")
	}
	encLen := 0
	for i, in := range inputs {
		if len(in) == 0 {
			return batch{}, fmt.Errorf("runtime: encode: input %d is empty; tokenize it with its end-of-sequence token", i)
		}
		for _, id := range in {
			if id < 0 {
				return batch{}, fmt.Errorf("runtime: encode: input %d has the negative token id %d; pass the tokenizer's ids", i, id)
			}
		}
		encLen = max(encLen, len(in))
	}
	b := batch{rows: len(inputs), encLen: encLen, tokens: make([]int64, len(inputs)*encLen), mask: make([]int64, len(inputs)*encLen)}
	for i, in := range inputs {
		row := b.tokens[i*encLen : (i+1)*encLen]
		copy(row, in)
		for j := len(in); j < encLen; j++ {
			row[j] = padID
		}
		for j := range in {
			b.mask[i*encLen+j] = 1
		}
	}
	return b, nil
}

// newRowState starts the row bookkeeping of a Decoder over b: row i
// continues input i.
func (m *Model) newRowState(b batch) rowState {
	r := rowState{m: m, vocab: m.lay.vocab, rows: b.rows, encLen: b.encLen, inputOf: make([]int, b.rows)}
	for i := range r.inputOf {
		r.inputOf[i] = i
	}
	return r
}

// Encode runs the encoder once over inputs, padded on the right with padID
// to the longest (padded positions are masked out; a negative padID pads
// with 0), and returns a Decoder with one row per input. When ctx ends,
// the graph run in flight stops at its next node and returns an error
// wrapping ctx's cause (so do the Decoder's Steps).
func (m *Model) Encode(ctx context.Context, inputs [][]int64, padID int64) (Decoder, error) {
	b, err := padBatch(inputs, padID)
	if err != nil {
		return nil, err
	}
	if m.rnn != nil {
		return m.encodeRNN(ctx, b)
	}
	if m.inp != nil {
		return m.encodeInplace(ctx, b, padID)
	}
	return m.encodeOptimum(ctx, b)
}
