package beamsearch

import (
	"context"
	"errors"
	"fmt"
)

// Joiner is a Decoder that can take in new inputs between two steps, so
// that rows at different steps share one batch (continuous batching).
type Joiner interface {
	Decoder
	// Join appends one row per input after the current rows, with nothing
	// decoded yet: the next Step feeds them their first token. A failed
	// Join leaves the decoder as it was.
	Join(ctx context.Context, inputs [][]int64) error
}

// Request is one request of a Batch: its inputs (token ids, as the
// decoder's Join takes them), its options and its stream (nil for none).
type Request struct {
	Inputs  [][]int64
	Options Options
	Stream  StreamFunc
}

// Finished is a request that left a Batch: its results, or the error that
// ended it (its stream's, or its logits').
type Finished struct {
	ID      int
	Results []Result
	Err     error
}

// member is one request of a Batch: its search over its consecutive rows.
type member struct {
	id int
	s  search
}

// Batch runs the searches of several requests over one decoder, each with
// its own options, one Step of the decoder for all of them at a time: a
// request can join at any step boundary (Admit) and leaves when it is done,
// its rows dropped from the decoder. Each request's results are those
// Generate gives for it alone, as long as the decoder's logits of a row do
// not depend on the other rows (the same search code runs it).
//
// A Batch is not safe for concurrent use; one goroutine drives it.
type Batch struct {
	dec     Joiner
	vocab   int
	members []*member // in the decoder's row order
	nextID  int
	tokens  []int64
	src     []int
	reserve int
}

// ErrEmpty is returned by Batch.Step when no request is left; check with
// errors.Is.
var ErrEmpty = errors.New("beamsearch: the batch holds no request")

// prepare validates opts against the vocabulary and builds the processor
// chain, as Generate does.
func prepare(opts Options, vocab int) (Chain, error) {
	if err := opts.Validate(vocab); err != nil {
		return Chain{}, fmt.Errorf("beamsearch: %w", err)
	}
	chain, err := NewChain(opts)
	if err != nil {
		return Chain{}, fmt.Errorf("beamsearch: %w", err)
	}
	return chain, nil
}

// newSearch starts the search req asks for over n inputs.
func newSearch(req Request, n, vocab int) (search, error) {
	chain, err := prepare(req.Options, vocab)
	if err != nil {
		return nil, err
	}
	if req.Options.NumBeams > 1 {
		return newBeams(n, req.Options, chain, req.Stream, vocab), nil
	}
	return newGreedy(n, req.Options, chain, req.Stream, vocab), nil
}

// NewBatch starts a Batch with req as its first request (ID 0): dec must
// hold one row per input of req, with nothing decoded yet (a fresh
// decoder of req.Inputs).
func NewBatch(dec Joiner, req Request) (*Batch, error) {
	if dec == nil {
		return nil, fmt.Errorf("beamsearch: %w: decoder is nil", ErrDecoder)
	}
	vocab := dec.VocabSize()
	if vocab < 1 {
		return nil, fmt.Errorf("beamsearch: %w: vocabulary size is %d; the decoder must report its logits width", ErrDecoder, vocab)
	}
	if len(req.Inputs) == 0 {
		return nil, fmt.Errorf("beamsearch: %w: the request has no inputs", ErrInvalidOptions)
	}
	if rows := dec.Rows(); rows != len(req.Inputs) {
		return nil, fmt.Errorf("beamsearch: %w: decoder holds %d rows for a request of %d inputs; start it with one row per input", ErrDecoder, rows, len(req.Inputs))
	}
	s, err := newSearch(req, len(req.Inputs), vocab)
	if err != nil {
		return nil, err
	}
	b := &Batch{dec: dec, vocab: vocab}
	b.reserveFor(req.Options)
	if err := expand(dec, len(req.Inputs), s.perInput()); err != nil {
		return nil, err
	}
	b.members = append(b.members, &member{id: b.nextID, s: s})
	b.nextID++
	return b, nil
}

// reserveFor tells a Reserver decoder the slots a request may need: twice
// the longest MaxNewTokens of the batch, so that a decoder whose rows start
// at different slots can move them left instead of growing.
func (b *Batch) reserveFor(opts Options) {
	r, ok := b.dec.(Reserver)
	if !ok {
		return
	}
	if want := 2 * opts.MaxNewTokens; want > b.reserve {
		b.reserve = want
		r.Reserve(want)
	}
}

// Admit adds req to the batch before the next Step and returns its ID: its
// inputs join the decoder (Joiner.Join), then its rows are expanded to its
// beams or draws. A request that fails validation or whose Join fails is
// refused and the batch is unchanged; an error that wraps ErrDecoder (the
// decoder broke its contract, or the expansion failed) leaves the batch
// unusable. A batch whose requests have all left is done (ErrEmpty): its
// decoder still holds the last rows; start a new batch on a new decoder.
func (b *Batch) Admit(ctx context.Context, req Request) (int, error) {
	ids, err := b.AdmitAll(ctx, []Request{req})
	if err != nil {
		return 0, err
	}
	return ids[0], nil
}

// AdmitAll adds reqs to the batch as Admit does, with one Join of all their
// inputs (one encoder run for all the newcomers), and returns their IDs.
// When one request fails validation none is admitted.
func (b *Batch) AdmitAll(ctx context.Context, reqs []Request) ([]int, error) {
	if len(b.members) == 0 {
		return nil, ErrEmpty
	}
	searches := make([]search, len(reqs))
	var inputs [][]int64
	for i, req := range reqs {
		if len(req.Inputs) == 0 {
			return nil, fmt.Errorf("beamsearch: %w: request %d has no inputs", ErrInvalidOptions, i)
		}
		s, err := newSearch(req, len(req.Inputs), b.vocab)
		if err != nil {
			return nil, err
		}
		searches[i] = s
		inputs = append(inputs, req.Inputs...)
	}
	if len(reqs) == 0 {
		return nil, nil
	}
	old := b.dec.Rows()
	if err := b.dec.Join(ctx, inputs); err != nil {
		return nil, fmt.Errorf("beamsearch: decoder join: %w", err)
	}
	if got := b.dec.Rows(); got != old+len(inputs) {
		return nil, fmt.Errorf("beamsearch: %w: decoder holds %d rows after joining %d inputs to %d", ErrDecoder, got, len(inputs), old)
	}
	expand := false
	for i, req := range reqs {
		b.reserveFor(req.Options)
		expand = expand || searches[i].perInput() > 1
	}
	if expand {
		src := make([]int, 0, old+len(inputs))
		for r := range old {
			src = append(src, r)
		}
		row := old
		for i, req := range reqs {
			for range req.Inputs {
				for range searches[i].perInput() {
					src = append(src, row)
				}
				row++
			}
		}
		if err := b.dec.Reorder(src); err != nil {
			return nil, fmt.Errorf("beamsearch: %w: decoder reorder after a join: %w", ErrDecoder, err)
		}
	}
	ids := make([]int, len(reqs))
	for i := range reqs {
		ids[i] = b.nextID
		b.nextID++
		b.members = append(b.members, &member{id: ids[i], s: searches[i]})
	}
	return ids, nil
}

// Len returns the number of requests in the batch.
func (b *Batch) Len() int { return len(b.members) }

// Rows returns the decoder rows the batch's requests hold.
func (b *Batch) Rows() int {
	n := 0
	for _, m := range b.members {
		n += m.s.rows()
	}
	return n
}

// Step runs one decoder step for every request and returns those that
// finished in it (their rows are dropped from the decoder before Step
// returns). A request whose stream returns an error, or whose logits hold
// NaN, finishes with that error; the others go on. An error of the decoder
// itself is returned and ends the batch: every request in it is lost.
func (b *Batch) Step(ctx context.Context) ([]Finished, error) {
	if len(b.members) == 0 {
		return nil, ErrEmpty
	}
	rows := b.Rows()
	b.tokens = growTokens(b.tokens, rows)
	base := 0
	for _, m := range b.members {
		n := m.s.rows()
		m.s.tokens(b.tokens[base : base+n])
		base += n
	}
	logits, err := step(ctx, b.dec, b.tokens[:rows], b.vocab)
	if err != nil {
		return nil, err
	}
	var done []Finished
	src := b.src[:0]
	base = 0
	next := b.members[:0]
	for _, m := range b.members {
		n := m.s.rows()
		mark := len(src)
		var fin bool
		src, fin, err = m.s.advance(logits[base*b.vocab:(base+n)*b.vocab], base, src)
		base += n
		switch {
		case err != nil:
			src = src[:mark]
			done = append(done, Finished{ID: m.id, Err: err})
		case fin:
			done = append(done, Finished{ID: m.id, Results: m.s.results()})
		default:
			next = append(next, m)
		}
	}
	clear(b.members[len(next):])
	b.members = next
	b.src = src
	if len(next) == 0 {
		return done, nil
	}
	if err := reorder(b.dec, src, rows); err != nil {
		return done, err
	}
	return done, nil
}

// Cancel removes request id from the batch now, dropping its rows from the
// decoder; it reports whether the request was there. Cancelling the last
// request leaves the batch done, as Step does.
func (b *Batch) Cancel(id int) (bool, error) {
	at, base := -1, 0
	for i, m := range b.members {
		if m.id == id {
			at = i
			break
		}
		base += m.s.rows()
	}
	if at < 0 {
		return false, nil
	}
	rows := b.Rows()
	n := b.members[at].s.rows()
	b.members = append(b.members[:at], b.members[at+1:]...)
	if len(b.members) == 0 {
		return true, nil
	}
	src := b.src[:0]
	for r := range rows {
		if r < base || r >= base+n {
			src = append(src, r)
		}
	}
	b.src = src
	if err := reorder(b.dec, src, rows); err != nil {
		return true, err
	}
	return true, nil
}

// growTokens returns buf with room for n tokens.
func growTokens(buf []int64, n int) []int64 {
	if cap(buf) >= n {
		return buf[:n]
	}
	return make([]int64, n)
}
