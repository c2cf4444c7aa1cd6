package beamsearch

import "context"

// Decoder is the model side of a search. It holds one row of decoder state
// (attention cache or recurrent state) per live hypothesis and turns the last
// token of each row into next-token logits.
//
// The runtime package implements it over ONNX Runtime; tests implement it
// with scripted fakes. Implementations own their buffers: the slice returned
// by Step is only valid until the next call to Step, Reorder or Close, and
// the search may write into it (greedy search applies its processors in
// place) — so it must not alias anything the decoder reads later.
type Decoder interface {
	// Step feeds one token per live row (len(tokens) == Rows()) and returns
	// the raw logits of the next position, row-major, len Rows()*VocabSize().
	Step(ctx context.Context, tokens []int64) ([]float32, error)

	// Reorder makes new row i continue the history of current row src[i].
	// len(src) may differ from Rows(): it grows rows when beams are expanded
	// before the first step and shrinks them when inputs finish. An identity
	// src must be cheap (implementations should detect it and do nothing).
	Reorder(src []int) error

	// Rows returns the number of live rows.
	Rows() int

	// VocabSize returns the width of one row of logits.
	VocabSize() int
}

// Reserver is implemented by decoders that can size their state for a
// whole search: Generate calls Reserve(MaxNewTokens) before the first step,
// so that a cache that grows with the output need not grow past it.
type Reserver interface {
	Reserve(tokens int)
}
