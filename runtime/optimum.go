package runtime

import (
	"context"
	"fmt"

	ort "github.com/yalue/onnxruntime_go"
)

var _ Decoder = (*optimumDecoder)(nil)

// optimumDecoder is the Decoder of the past/present layout Optimum writes
// (and our exporter, through Optimum): each step takes the self-attention
// cache as past_key_values.* and gives it back one position longer as
// present.*, into the spare one of two buffers per tensor; the
// cross-attention cache comes out of the first step and is fed to every
// later one.
type optimumDecoder struct {
	rowState
	lay layout

	// Before the first step, Reorder only maps rows to encoder rows
	// (rowEnc); the first step runs once per distinct (encoder row, token)
	// and then expands to all rows. From then on encRows == rows and
	// rowEnc is the identity.
	encRows int   // rows of mask and hidden
	rowEnc  []int // per row: its row of mask and hidden

	mask    []int64 // [encRows, encLen] encoder attention mask
	maskT   *ort.Tensor[int64]
	hidden  []float32 // [encRows, encLen, hidden]; dropped after the first step when the step graph does not take it
	hiddenT *ort.Tensor[float32]
	noneT   *ort.Tensor[float32] // merged later steps: zero-length hidden states, [rows, 0, hidden]

	// Cross-attention keys and values, [rows, heads, encLen, headDim] each,
	// indexed 2*layer+k; written by the first step.
	cross  [][]float32
	crossT []*ort.Tensor[float32]

	// Self-attention keys and values: two backing buffers per tensor.
	// Side cur holds the past ([rows, heads, steps, headDim]); the step
	// writes the present into the other side, which becomes cur.
	self  [2][][]float32
	cur   int
	pastT []*ort.Tensor[float32] // over self[cur], nil before the first step
	presT []*ort.Tensor[float32] // over self[1-cur], made before each step

	empty  *ort.Tensor[float32]   // merged first step: zero-length past, [rows, heads, 0, headDim]
	unused []*ort.Tensor[float32] // merged later steps: the present.*.encoder outputs the graph gives as placeholders
	spare  [][]float32            // their buffers

	maxTokens int         // tokens the search generates at most (Reserve); 0: unknown
	plan      inPlacePlan // scratch of Reorder: the rows an in-place reorder moves
	scratch   []float32   // scratch of Reorder: rows saved before they are overwritten
	uniqEnc   []int       // scratch of the first step: encoder row of each distinct row
	uniqTok   []int64     // and its token
	rowUniq   []int       // per row: its distinct row
	firstN    int         // rows the first-step graph ran at (for tests)
	shape     [4]int64    // scratch of selfShape
}

// encodeOptimum runs the encoder graph over b and starts an optimumDecoder.
func (m *Model) encodeOptimum(ctx context.Context, b batch) (*optimumDecoder, error) {
	rows, encLen := b.rows, b.encLen
	lay := m.lay
	d := &optimumDecoder{
		rowState: m.newRowState(b),
		lay:      lay,
		encRows:  rows,
		rowEnc:   make([]int, rows),
		mask:     b.mask,
		cross:    make([][]float32, 2*lay.layers),
		crossT:   make([]*ort.Tensor[float32], 2*lay.layers),
		pastT:    make([]*ort.Tensor[float32], 2*lay.layers),
		presT:    make([]*ort.Tensor[float32], 2*lay.layers),
	}
	for i := range d.rowEnc {
		d.rowEnc[i] = i
	}
	d.self[0] = make([][]float32, 2*lay.layers)
	d.self[1] = make([][]float32, 2*lay.layers)
	if p := m.takeBuffers(); p != nil {
		// Every buffer below is written before it is read (by the
		// graphs' outputs), so stale contents do no harm.
		d.logits = p.logits
		d.hidden = p.hidden
		d.cross, d.self, d.scratch = p.cross, p.self, p.scratch
	}
	d.logits = reuse(d.logits, rows*lay.vocab)
	d.hidden = reuse(d.hidden, rows*encLen*lay.hidden)
	if err := d.makeRowTensors(); err != nil {
		d.Close()
		return nil, err
	}
	tokensT, err := header(b.tokens, int64(rows), int64(encLen))
	if err != nil {
		d.Close()
		return nil, fmt.Errorf("runtime: encode: %w", err)
	}
	defer tokensT.Destroy()
	in := make([]ort.Value, len(m.enc.io.ins))
	for i, s := range m.enc.io.ins {
		switch s.kind {
		case slotIDs:
			in[i] = tokensT
		case slotMask:
			in[i] = d.maskT
		}
	}
	if err := m.run(ctx, &m.enc, in, []ort.Value{d.hiddenT}); err != nil {
		d.Close()
		return nil, fmt.Errorf("runtime: encoder: %w", err)
	}
	return d, nil
}

// makeRowTensors (re)makes the tensors whose first dimension is the row
// count: ids and logits (rows), mask and hidden states (encRows).
func (d *optimumDecoder) makeRowTensors() error {
	e, s := int64(d.encRows), int64(d.encLen)
	release(&d.maskT)
	release(&d.hiddenT)
	release(&d.noneT)
	if err := d.makeIDsLogits(); err != nil {
		return err
	}
	var err error
	if d.mask != nil {
		if d.maskT, err = header(d.mask, e, s); err != nil {
			return fmt.Errorf("runtime: %w", err)
		}
	}
	if d.hidden != nil {
		if d.hiddenT, err = header(d.hidden, e, s, int64(d.lay.hidden)); err != nil {
			return fmt.Errorf("runtime: %w", err)
		}
	}
	if d.m.merged {
		if d.noneT, err = header([]float32(nil), int64(d.rows), 0, int64(d.lay.hidden)); err != nil {
			return fmt.Errorf("runtime: %w", err)
		}
	}
	return nil
}

// makeCrossTensors (re)makes the headers of the cross-attention cache.
func (d *optimumDecoder) makeCrossTensors() error {
	n := d.rows * d.crossRow()
	for j := range d.cross {
		release(&d.crossT[j])
		d.cross[j] = grow(d.cross[j], n, 0)
		var err error
		if d.crossT[j], err = header(d.cross[j], int64(d.rows), int64(d.lay.heads), int64(d.encLen), int64(d.lay.headDim)); err != nil {
			return fmt.Errorf("runtime: %w", err)
		}
	}
	return nil
}

// crossRow is the length of one row of a cross-attention tensor.
func (d *optimumDecoder) crossRow() int { return d.lay.heads * d.encLen * d.lay.headDim }

// selfShape is the shape of a self-attention tensor of length t. It is
// valid until the next call (header copies it).
func (d *optimumDecoder) selfShape(t int) []int64 {
	d.shape = [4]int64{int64(d.rows), int64(d.lay.heads), int64(t), int64(d.lay.headDim)}
	return d.shape[:]
}

// Reserve tells the Decoder that the search generates at most tokens
// tokens (beamsearch calls it before the first step). The self-attention
// cache then never grows past that many positions: without it a cache
// grows by doubling, and a 64-token generation ends with room for 128.
func (d *optimumDecoder) Reserve(tokens int) {
	d.maxTokens = max(tokens, 0)
}

// cacheSize returns, for rows rows, the self-attention buffer size to grow
// to at least (minCacheTokens positions, or fewer when the search needs
// fewer) and at most (the positions the search can need; 0: no cap).
func (d *optimumDecoder) cacheSize(rows int) (floor, limit int) {
	row := rows * d.lay.heads * d.lay.headDim
	positions := minCacheTokens
	if d.maxTokens > 0 {
		positions = min(positions, d.maxTokens)
		limit = row * d.maxTokens
	}
	return row * positions, limit
}

// makePresent makes the headers the step writes the present into: length
// steps+1 over the side that does not hold the past. The side grows, when
// needed, to hold at least minCacheTokens positions of capRows rows.
func (d *optimumDecoder) makePresent(capRows int) error {
	t := d.steps + 1
	rowLen := d.lay.heads * d.lay.headDim
	need := d.rows * rowLen * t
	floor, limit := d.cacheSize(capRows)
	side := d.self[1-d.cur]
	for j := range side {
		release(&d.presT[j])
		if len(side[j]) < need {
			side[j] = growTo(side[j], max(need, floor), limit)
		}
		var err error
		if d.presT[j], err = header(side[j], d.selfShape(t)...); err != nil {
			return fmt.Errorf("runtime: %w", err)
		}
	}
	return nil
}

// makePast (re)makes the headers of the past over side cur.
func (d *optimumDecoder) makePast() error {
	for j, buf := range d.self[d.cur] {
		release(&d.pastT[j])
		var err error
		if d.pastT[j], err = header(buf, d.selfShape(d.steps)...); err != nil {
			return fmt.Errorf("runtime: %w", err)
		}
	}
	return nil
}

// Step feeds one token per row and returns the logits of the next position,
// row-major, Rows()*VocabSize() long. The slice is the Decoder's own buffer:
// it is valid until the next Step, Reorder or Close. A failed Step leaves
// the Decoder as it was.
func (d *optimumDecoder) Step(ctx context.Context, tokens []int64) ([]float32, error) {
	if err := d.checkStep(tokens); err != nil {
		return nil, err
	}
	if d.steps == 0 {
		return d.firstStep(ctx, tokens)
	}
	copy(d.ids, tokens)
	if err := d.makePresent(d.rows); err != nil {
		return nil, err
	}
	s := &d.m.step
	learn := d.fill(s, false)
	if err := d.m.run(ctx, s, d.in, d.out); err != nil {
		d.dropLearned(learn)
		return nil, fmt.Errorf("runtime: decoder step %d: %w", d.steps, err)
	}
	if learn {
		if err := d.keepLearned(); err != nil {
			return nil, err
		}
	}
	releaseAll(d.pastT)
	d.pastT, d.presT = d.presT, d.pastT
	d.cur = 1 - d.cur
	d.steps++
	return d.logits[:d.rows*d.lay.vocab], nil
}

// firstStep runs the first-step graph once per distinct (encoder row,
// token) pair of the rows, so that beams expanded before the first step
// share its work (the cross-attention projections above all), then copies
// the results out to every row.
func (d *optimumDecoder) firstStep(ctx context.Context, tokens []int64) ([]float32, error) {
	rows := d.rows
	d.uniqEnc, d.uniqTok = d.uniqEnc[:0], d.uniqTok[:0]
	d.rowUniq = grow(d.rowUniq[:0], rows, 0)[:rows]
	same := rows == d.encRows // rows are already the distinct rows, in order
	for r, tok := range tokens {
		e, u := d.rowEnc[r], 0
		for u < len(d.uniqEnc) && (d.uniqEnc[u] != e || d.uniqTok[u] != tok) {
			u++
		}
		if u == len(d.uniqEnc) {
			d.uniqEnc = append(d.uniqEnc, e)
			d.uniqTok = append(d.uniqTok, tok)
		}
		d.rowUniq[r] = u
		same = same && u == r && e == r
	}
	n := len(d.uniqEnc)
	// Lay the encoder rows out as the distinct rows.
	if !same {
		d.mask = gatherRows(d.mask[:d.encRows*d.encLen], d.uniqEnc, d.encLen)
		if d.hidden != nil {
			d.hidden = gatherRows(d.hidden[:d.encRows*d.encLen*d.lay.hidden], d.uniqEnc, d.encLen*d.lay.hidden)
		}
		d.encRows = n
		copy(d.rowEnc, d.rowUniq)
	}
	// Run at n rows; the tensors get remade for all rows after.
	d.rows = n
	err := d.runFirst(ctx, rows)
	d.rows = rows
	if err != nil {
		d.makeRowTensors() // back to rows rows; the error reported is the run's
		return nil, err
	}
	releaseAll(d.presT)
	d.cur = 1 - d.cur
	d.steps = 1
	release(&d.empty)
	if !d.lay.hiddenAtStep {
		release(&d.hiddenT)
		d.hidden = nil
	}
	if !same {
		// Copy the distinct rows out to all rows, in place: each row's
		// distinct row comes at or before it.
		v, selfRow, cr := d.lay.vocab, d.lay.heads*d.lay.headDim, d.crossRow()
		d.logits = gatherRows(grow(d.logits, rows*v, n*v), d.rowUniq, v)
		for j, buf := range d.self[d.cur] {
			d.self[d.cur][j] = gatherRows(grow(buf, rows*selfRow, n*selfRow), d.rowUniq, selfRow)
		}
		if d.lay.cross {
			releaseAll(d.crossT)
			for j, buf := range d.cross {
				d.cross[j] = gatherRows(grow(buf, rows*cr, n*cr), d.rowUniq, cr)
			}
		}
		d.mask = gatherRows(grow(d.mask, rows*d.encLen, n*d.encLen), d.rowUniq, d.encLen)
		if d.hidden != nil {
			hr := d.encLen * d.lay.hidden
			d.hidden = gatherRows(grow(d.hidden, rows*hr, n*hr), d.rowUniq, hr)
		}
		d.encRows = rows
		for r := range d.rowEnc {
			d.rowEnc[r] = r
		}
	}
	if err := d.makeRowTensors(); err != nil {
		return nil, err
	}
	if d.lay.cross && !same {
		if err := d.makeCrossTensors(); err != nil {
			return nil, err
		}
	}
	if err := d.makePast(); err != nil {
		return nil, err
	}
	return d.logits[:rows*d.lay.vocab], nil
}

// runFirst runs the first-step graph over d.rows rows (the distinct ones)
// with their tokens in d.uniqTok; capRows is the row count the buffers are
// sized for.
func (d *optimumDecoder) runFirst(ctx context.Context, capRows int) error {
	if err := d.makeRowTensors(); err != nil {
		return err
	}
	copy(d.ids, d.uniqTok)
	if d.lay.cross {
		if err := d.makeCrossTensors(); err != nil {
			return err
		}
	}
	if err := d.makePresent(capRows); err != nil {
		return err
	}
	s := &d.m.first
	if d.m.merged {
		release(&d.empty)
		var err error
		if d.empty, err = header([]float32(nil), d.selfShape(0)...); err != nil {
			return fmt.Errorf("runtime: %w", err)
		}
	}
	d.fill(s, true)
	if err := d.m.run(ctx, s, d.in, d.out); err != nil {
		return fmt.Errorf("runtime: decoder step 0: %w", err)
	}
	d.firstN = d.rows
	return nil
}

// fill sets d.in and d.out for a run of s. It reports whether the run must
// learn the shapes of the merged graph's placeholder outputs (their slots
// are left nil for onnxruntime_go to allocate once).
func (d *optimumDecoder) fill(s *session, first bool) (learn bool) {
	io := s.io
	d.in = d.in[:0]
	for _, sl := range io.ins {
		var v ort.Value
		switch sl.kind {
		case slotIDs:
			v = d.idsT
		case slotMask:
			v = d.maskT
		case slotHidden:
			v = d.hiddenT
			if !first && d.m.merged {
				v = d.noneT
			}
		case slotUseCache:
			v = d.m.useCache[0]
			if !first {
				v = d.m.useCache[1]
			}
		case slotSelf:
			if first {
				v = d.empty
			} else {
				v = d.pastT[sl.idx]
			}
		case slotCross:
			if first {
				v = d.empty
			} else {
				v = d.crossT[sl.idx]
			}
		}
		d.in = append(d.in, v)
	}
	d.out = d.out[:0]
	for _, sl := range io.outs {
		var v ort.Value
		switch sl.kind {
		case slotLogits:
			v = d.logitsT
		case slotSelf:
			v = d.presT[sl.idx]
		case slotCross:
			switch {
			case first:
				v = d.crossT[sl.idx]
			case d.unused != nil:
				v = d.unused[sl.idx]
			default:
				learn = true // left nil: onnxruntime_go allocates it
			}
		}
		d.out = append(d.out, v)
	}
	return learn
}

// keepLearned keeps, after the first later step of a merged graph, tensors
// shaped like the placeholder present.*.encoder outputs it gave, so that
// later steps pass preallocated outputs for them too.
func (d *optimumDecoder) keepLearned() error {
	d.unused = make([]*ort.Tensor[float32], 2*d.lay.layers)
	d.spare = make([][]float32, 2*d.lay.layers)
	var err error
	for i, sl := range d.m.step.io.outs {
		if sl.kind != slotCross || d.out[i] == nil {
			continue
		}
		shape := d.out[i].GetShape()
		d.out[i].Destroy()
		d.out[i] = nil
		if err != nil {
			continue
		}
		d.spare[sl.idx] = make([]float32, shape.FlattenedSize())
		d.unused[sl.idx], err = header(d.spare[sl.idx], shape...)
	}
	if err != nil {
		d.dropUnused()
		return fmt.Errorf("runtime: %w", err)
	}
	return nil
}

// dropLearned releases the outputs onnxruntime_go allocated for a run that
// failed.
func (d *optimumDecoder) dropLearned(learn bool) {
	if !learn {
		return
	}
	for i, sl := range d.m.step.io.outs {
		if sl.kind == slotCross && i < len(d.out) && d.out[i] != nil {
			d.out[i].Destroy()
			d.out[i] = nil
		}
	}
}

// dropUnused releases the placeholder outputs; the next step learns them
// again.
func (d *optimumDecoder) dropUnused() {
	releaseAll(d.unused)
	d.unused, d.spare = nil, nil
}

// Reorder makes new row i continue the history of current row src[i]. It
// gathers the self-attention cache (one pass per layer tensor, into the
// spare side of its buffers), and the cross-attention cache, the encoder
// outputs and the mask only when the rows' inputs change (a different
// number of rows, or a row taking the history of another input). An
// identity src costs nothing. Before the first Step it only records which
// encoder row each new row reads; the first Step then runs once per
// distinct row and token.
func (d *optimumDecoder) Reorder(src []int) error {
	if identity, err := d.checkReorder(src); identity || err != nil {
		return err
	}
	n := len(src)
	if d.steps == 0 {
		d.next = grow(d.next[:0], 2*n, 0)[:2*n]
		for i, s := range src {
			d.next[i], d.next[n+i] = d.inputOf[s], d.rowEnc[s]
		}
		d.inputOf = append(d.inputOf[:0], d.next[:n]...)
		d.rowEnc = append(d.rowEnc[:0], d.next[n:]...)
		d.rows = n
		return nil
	}
	moved := d.mapInputs(src)
	// Self-attention cache: gather side cur into the other side.
	block := d.lay.heads * d.steps * d.lay.headDim
	need := n * block
	floor, limit := d.cacheSize(n)
	from, to := d.self[d.cur], d.self[1-d.cur]
	releaseAll(d.presT) // no header may outlive a buffer replaced below
	if d.plan.plan(src, d.rows) {
		// Few rows change (the usual beam step): move them in place.
		for j := range from {
			d.scratch = gatherSaved(from[j], d.scratch, src, block, &d.plan)
		}
	} else {
		for j := range from {
			if len(to[j]) < need {
				to[j] = growTo(to[j], max(need, floor), limit)
			}
			gatherInto(to[j], from[j], src, block)
		}
		d.cur = 1 - d.cur
	}
	if moved {
		if d.lay.cross {
			cr := d.crossRow()
			releaseAll(d.crossT)
			for j := range d.cross {
				d.cross[j] = gatherRows(d.cross[j][:d.rows*cr], src, cr)
			}
		}
		release(&d.maskT)
		release(&d.hiddenT)
		d.mask = gatherRows(d.mask[:d.rows*d.encLen], src, d.encLen)
		if d.hidden != nil {
			hr := d.encLen * d.lay.hidden
			d.hidden = gatherRows(d.hidden[:d.rows*hr], src, hr)
		}
	}
	d.inputOf = append(d.inputOf[:0], d.next...)
	rowsChanged := n != d.rows
	d.rows = n
	if rowsChanged {
		d.encRows = n
		d.rowEnc = grow(d.rowEnc[:0], n, 0)[:n]
		for r := range d.rowEnc {
			d.rowEnc[r] = r
		}
	}
	if err := d.makePast(); err != nil {
		return err
	}
	if moved {
		if err := d.makeRowTensors(); err != nil {
			return err
		}
		if d.lay.cross {
			if err := d.makeCrossTensors(); err != nil {
				return err
			}
		}
	}
	if rowsChanged {
		d.dropUnused()
	}
	return nil
}

// Close releases the Decoder's tensors and keeps its large buffers for the
// Model's next Encode. Closing twice is harmless.
func (d *optimumDecoder) Close() error {
	if !d.closeRows() {
		return nil
	}
	release(&d.maskT)
	release(&d.hiddenT)
	release(&d.noneT)
	release(&d.empty)
	releaseAll(d.crossT)
	releaseAll(d.pastT)
	releaseAll(d.presT)
	d.dropUnused()
	d.m.putBuffers(&bufferSet{logits: d.logits, hidden: d.hidden, scratch: d.scratch, cross: d.cross, self: d.self})
	d.ids, d.mask, d.hidden, d.logits, d.cross, d.scratch = nil, nil, nil, nil, nil, nil
	d.self = [2][][]float32{}
	return nil
}
