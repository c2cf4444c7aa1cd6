package beamsearch

import "context"

// search is the state of one request's search (greedy search and sampling,
// or beam search) over its rows of a decoder, which are consecutive: the
// loop of Generate and the steps of a Batch drive the same states, so a
// request gives the same result in either.
type search interface {
	// rows returns the number of rows the search holds.
	rows() int
	// perInput returns the rows each input starts with (beams or draws).
	perInput() int
	// tokens writes the token each row feeds next into dst (rows() long).
	tokens(dst []int64)
	// advance consumes the logits of the search's rows (rows()*vocab; the
	// search may write into them) and appends to src, for each row of the
	// next step, base plus the index of the current row it continues. It
	// reports whether every input is finished (nothing appended then).
	advance(logits []float32, base int, src []int) ([]int, bool, error)
	// results returns one Result per input, complete once finished.
	results() []Result
}

// run drives s over dec, whose rows are s's, until s is finished.
func run(ctx context.Context, dec Decoder, s search) ([]Result, error) {
	vocab := dec.VocabSize()
	tokens := make([]int64, s.rows())
	src := make([]int, 0, s.rows())
	for {
		n := s.rows()
		s.tokens(tokens[:n])
		logits, err := step(ctx, dec, tokens[:n], vocab)
		if err != nil {
			return nil, err
		}
		var done bool
		if src, done, err = s.advance(logits, 0, src[:0]); err != nil {
			return nil, err
		}
		if done {
			return s.results(), nil
		}
		if err := reorder(dec, src, n); err != nil {
			return nil, err
		}
	}
}
