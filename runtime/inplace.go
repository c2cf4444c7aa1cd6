package runtime

import (
	"context"
	"fmt"

	ort "github.com/yalue/onnxruntime_go"
)

var _ Decoder = (*inplaceDecoder)(nil)

// inplaceDecoder is the Decoder of the inplace layout (docs/model-format.md,
// export/s2s_export/inplace.py; export/s2s_export/inplace_run.py runs the
// same protocol in Python for the exporter's self-check).
//
// The self-attention cache is one buffer per layer tensor,
// [rows, heads, maxLen, headDim], bound once as both the step graph's past
// and its present: each step writes every row's new key and value at slot
// pos in place, with no Concat and no copy. Rows that joined later start at
// a later slot (start); their earlier slots are masked. A row reads each
// slot through the indirection table (indir[row*maxLen+slot] is the buffer
// row that holds it), so a beam reorder rewrites that table and moves no
// cache; rows that leave free their buffer rows, and only buffer rows past
// the new row count that are still read are moved into the freed ones.
//
// The cross-attention keys and values are computed once per input by the
// cross graph and kept once per input ([inputs, heads, S, headDim]); the
// step graph's cross-attention takes the rows of an input together, so the
// beams of an input share one copy. When the inputs hold different numbers
// of rows (or their rows are not consecutive), a copy per row is fed
// instead (perRow).
//
// Join adds inputs between two steps (encoder and cross graph on the
// newcomers only), which is what continuous batching needs.
type inplaceDecoder struct {
	rowState
	lay *inplaceLayout
	pad int64

	// Self-attention cache.
	self    [][]float32 // 2*layers buffers, capRows*heads*maxLen*headDim
	capRows int         // rows the buffers hold
	maxLen  int         // slots per row; 0 until the first Step
	want    int         // slots Reserve asked for
	pos     int         // slots in use (cache_length)
	start   []int32     // per row: its first slot
	indir   []int32     // [capRows*maxLen] the cache indirection
	spare   []int32     // the next indirection, built by Reorder
	posBuf  []int32     // [1] cache_length
	bwBuf   []int32     // [1] beam_width: the rows

	// Inputs: slot g of the cross storage holds input inputs[g].
	inputs   []int       // per slot: the input number (rowState.inputOf's)
	encLens  []int       // per slot: the input's length
	encS     int         // the storage's source length S (the longest live input)
	cross    [][]float32 // 2*layers buffers, [slots, heads, encS, headDim]
	mask     []int32     // [slots, encS]
	rowSlot  []int       // per row: its slot
	perRow   bool        // feed rowCross/rowMask: a copy per row
	rowCross [][]float32
	rowMask  []int32
	nextIn   int // the number of the next joining input
	joinBuf  [][]float32
	hidden   []float32

	dirty  bool // the row tensors need remaking before the next Step
	startT *ort.Tensor[int32]
	posT   *ort.Tensor[int32]
	bwT    *ort.Tensor[int32]
	indirT *ort.Tensor[int32]
	maskT  *ort.Tensor[int32]
	crossT []*ort.Tensor[float32]
	pastT  []*ort.Tensor[float32]
	presT  []*ort.Tensor[float32]

	// Scratch of Reorder.
	used   []bool
	phi    []int
	free   []int
	slots  []int
	moves  int // buffer rows copied by reorders (for tests)
	shifts int
}

// encodeInplace starts an inplaceDecoder and joins the inputs of b.
func (m *Model) encodeInplace(ctx context.Context, b batch, padID int64) (*inplaceDecoder, error) {
	lay := m.inp
	n := 2 * lay.layers
	d := &inplaceDecoder{
		rowState: rowState{m: m, vocab: lay.vocab},
		lay:      lay,
		pad:      padID,
		self:     make([][]float32, n),
		cross:    make([][]float32, n),
		crossT:   make([]*ort.Tensor[float32], n),
		pastT:    make([]*ort.Tensor[float32], n),
		presT:    make([]*ort.Tensor[float32], n),
		joinBuf:  make([][]float32, n),
		posBuf:   make([]int32, 1),
		bwBuf:    make([]int32, 1),
	}
	if p := m.takeBuffers(); p != nil {
		// Every buffer below is written before it is read.
		d.logits, d.hidden = p.logits, p.hidden
		if len(p.self[0]) == n {
			d.self = p.self[0]
		}
		if len(p.cross) == n {
			d.cross = p.cross
		}
	}
	var err error
	if d.posT, err = header(d.posBuf, 1); err != nil {
		return nil, fmt.Errorf("runtime: %w", err)
	}
	if d.bwT, err = header(d.bwBuf, 1); err != nil {
		d.Close()
		return nil, fmt.Errorf("runtime: %w", err)
	}
	if err := d.join(ctx, b); err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}

// Reserve tells the Decoder that its rows generate at most tokens tokens:
// the cache is then made with that many slots (beamsearch calls it before
// the first step). Asked later for more, it grows at the next Step.
func (d *inplaceDecoder) Reserve(tokens int) {
	d.want = max(tokens, 0)
}

// Join adds one row per input at the next Step, after the rows already
// there: the newcomers are encoded and their cross-attention keys and
// values computed now; their rows start at the current slot.
func (d *inplaceDecoder) Join(ctx context.Context, inputs [][]int64) error {
	if d.closed {
		return fmt.Errorf("%w: join on a closed decoder; encode again", ErrClosed)
	}
	b, err := padBatch(inputs, d.pad)
	if err != nil {
		return err
	}
	return d.join(ctx, b)
}

// cap is the per-tensor length of n rows of the self-attention cache.
func (d *inplaceDecoder) rowLen() int { return d.lay.heads * d.maxLen * d.lay.headDim }

// slotLen is the per-tensor length of one slot of the cross storage.
func (d *inplaceDecoder) slotLen() int { return d.lay.heads * d.encS * d.lay.headDim }

// join encodes b and appends its inputs and one row per input.
func (d *inplaceDecoder) join(ctx context.Context, b batch) error {
	m, lay := d.m, d.lay
	n, s := b.rows, b.encLen
	// Encoder.
	d.hidden = reuse(d.hidden, n*s*lay.hidden)
	tokensT, err := header(b.tokens, int64(n), int64(s))
	if err != nil {
		return fmt.Errorf("runtime: encode: %w", err)
	}
	defer tokensT.Destroy()
	maskT, err := header(b.mask, int64(n), int64(s))
	if err != nil {
		return fmt.Errorf("runtime: encode: %w", err)
	}
	defer maskT.Destroy()
	hiddenT, err := header(d.hidden, int64(n), int64(s), int64(lay.hidden))
	if err != nil {
		return fmt.Errorf("runtime: encode: %w", err)
	}
	defer hiddenT.Destroy()
	in := make([]ort.Value, len(m.enc.io.ins))
	for i, sl := range m.enc.io.ins {
		if sl.kind == slotIDs {
			in[i] = tokensT
		} else {
			in[i] = maskT
		}
	}
	if err := m.run(ctx, &m.enc, in, []ort.Value{hiddenT}); err != nil {
		return fmt.Errorf("runtime: encoder: %w", err)
	}

	// Cross graph: straight into the storage when it is empty, else into
	// scratch and then into new slots of the storage.
	g := len(d.inputs)
	fresh := g == 0
	per := lay.heads * s * lay.headDim
	outs := make([]ort.Value, len(m.first.io.outs))
	var made []*ort.Tensor[float32]
	defer func() {
		for _, t := range made {
			t.Destroy()
		}
	}()
	for i, sl := range m.first.io.outs {
		var buf []float32
		if fresh {
			d.cross[sl.idx] = reuse(d.cross[sl.idx], n*per)
			buf = d.cross[sl.idx]
		} else {
			d.joinBuf[sl.idx] = reuse(d.joinBuf[sl.idx], n*per)
			buf = d.joinBuf[sl.idx]
		}
		t, err := header(buf, int64(n), int64(lay.heads), int64(s), int64(lay.headDim))
		if err != nil {
			return fmt.Errorf("runtime: %w", err)
		}
		made = append(made, t)
		outs[i] = t
	}
	if err := m.run(ctx, &m.first, []ort.Value{hiddenT}, outs); err != nil {
		return fmt.Errorf("runtime: cross-attention graph: %w", err)
	}
	if fresh {
		d.encS = s
		d.mask = grow(d.mask[:0], n*s, 0)[:n*s]
		for i, v := range b.mask {
			d.mask[i] = int32(v)
		}
	} else {
		newS := max(d.encS, s)
		d.relayout(newS, g+n)
		sl := d.slotLen()
		hd := lay.headDim
		for j := range d.cross {
			for k := range n {
				dst := d.cross[j][(g+k)*sl : (g+k+1)*sl]
				src := d.joinBuf[j][k*per : (k+1)*per]
				for h := range lay.heads {
					row := dst[h*d.encS*hd : (h+1)*d.encS*hd]
					copy(row, src[h*s*hd:(h+1)*s*hd])
					clear(row[s*hd:])
				}
			}
		}
		for k := range n {
			row := d.mask[(g+k)*d.encS : (g+k+1)*d.encS]
			for t := range row {
				row[t] = 0
				if t < s {
					row[t] = int32(b.mask[k*s+t])
				}
			}
		}
	}
	for k := range n {
		length := 0
		for _, v := range b.mask[k*s : (k+1)*s] {
			length += int(v)
		}
		d.inputs = append(d.inputs, d.nextIn+k)
		d.encLens = append(d.encLens, length)
	}
	// Rows: one per input, starting at the current slot.
	if d.maxLen > 0 {
		d.ensureRows(d.rows + n)
	}
	for k := range n {
		r := d.rows + k
		d.start = append(d.start[:r], int32(d.pos))
		d.rowSlot = append(d.rowSlot[:r], g+k)
		d.inputOf = append(d.inputOf[:r], d.nextIn+k)
		if d.maxLen > 0 {
			d.fillIndir(r)
		}
	}
	d.nextIn += n
	d.rows += n
	d.encLen = d.encS
	d.regroup()
	return nil
}

// fillIndir points every slot of row r at r itself.
func (d *inplaceDecoder) fillIndir(r int) {
	row := d.indir[r*d.maxLen : (r+1)*d.maxLen]
	for j := range row {
		row[j] = int32(r)
	}
}

// relayout gives the cross storage room for slots slots of source length
// s (copying the live slots when the length changes or it grows).
func (d *inplaceDecoder) relayout(s, slots int) {
	g, hd, heads := len(d.inputs), d.lay.headDim, d.lay.heads
	if s == d.encS {
		need := slots * d.slotLen()
		for j := range d.cross {
			d.cross[j] = grow(d.cross[j], need, g*d.slotLen())
		}
		d.mask = grow(d.mask, slots*s, g*s)
		return
	}
	old := d.encS
	for j, buf := range d.cross {
		nb := make([]float32, slots*heads*s*hd)
		for k := range g {
			for h := range heads {
				src := buf[(k*heads+h)*old*hd : (k*heads+h)*old*hd+min(old, s)*hd]
				copy(nb[(k*heads+h)*s*hd:], src)
			}
		}
		d.cross[j] = nb
	}
	nm := make([]int32, slots*s)
	for k := range g {
		copy(nm[k*s:k*s+min(old, s)], d.mask[k*old:k*old+min(old, s)])
	}
	d.mask = nm
	d.encS = s
}

// regroup follows a change of the rows' inputs: slots no row reads go (the
// others move down), the storage shrinks to the longest live input, and the
// cross-attention is fed per input (the rows of each input consecutive, the
// same number for all) or per row.
func (d *inplaceDecoder) regroup() {
	g := len(d.inputs)
	// Live slots in the order their first rows come.
	d.slots = grow(d.slots[:0], g, 0)[:g]
	for i := range d.slots {
		d.slots[i] = -1
	}
	order := make([]int, 0, g)
	for _, sl := range d.rowSlot[:d.rows] {
		if d.slots[sl] < 0 {
			d.slots[sl] = len(order)
			order = append(order, sl)
		}
	}
	same := len(order) == g
	for i, sl := range order {
		same = same && sl == i
	}
	if !same {
		sl := d.slotLen()
		for j := range d.cross {
			d.cross[j] = gatherRows(d.cross[j][:g*sl], order, sl)
		}
		d.mask = gatherRows(d.mask[:g*d.encS], order, d.encS)
		inputs, lens := make([]int, len(order)), make([]int, len(order))
		for i, o := range order {
			inputs[i], lens[i] = d.inputs[o], d.encLens[o]
		}
		d.inputs, d.encLens = inputs, lens
		for r, s := range d.rowSlot[:d.rows] {
			d.rowSlot[r] = d.slots[s]
		}
		g = len(order)
	}
	longest := 0
	for _, l := range d.encLens {
		longest = max(longest, l)
	}
	if longest > 0 && longest < d.encS {
		d.shrinkS(longest)
	}
	// Grouped: row r reads slot r/k.
	k := 0
	if g > 0 && d.rows%g == 0 {
		k = d.rows / g
		for r, s := range d.rowSlot[:d.rows] {
			if s != r/k {
				k = 0
				break
			}
		}
	}
	d.perRow = k == 0
	if d.perRow {
		n, sl := d.rows, d.slotLen()
		if d.rowCross == nil {
			d.rowCross = make([][]float32, len(d.cross))
		}
		for j := range d.cross {
			d.rowCross[j] = reuse(d.rowCross[j], n*sl)
			gatherInto(d.rowCross[j], d.cross[j], d.rowSlot[:n], sl)
		}
		d.rowMask = reuse(d.rowMask, n*d.encS)
		gatherInto(d.rowMask, d.mask, d.rowSlot[:n], d.encS)
	} else {
		d.rowCross, d.rowMask = nil, nil
	}
	d.encLen = d.encS
	d.dirty = true
}

// shrinkS re-lays the cross storage at the shorter source length s (the
// longest input left), so that no attention runs over padding nobody needs.
func (d *inplaceDecoder) shrinkS(s int) {
	g, hd, heads, old := len(d.inputs), d.lay.headDim, d.lay.heads, d.encS
	for j, buf := range d.cross {
		// Front to back: each head block moves to a lower index.
		for k := range g {
			for h := range heads {
				copy(buf[(k*heads+h)*s*hd:(k*heads+h)*s*hd+s*hd], buf[(k*heads+h)*old*hd:(k*heads+h)*old*hd+s*hd])
			}
		}
		d.cross[j] = buf
	}
	for k := range g {
		copy(d.mask[k*s:(k+1)*s], d.mask[k*old:k*old+s])
	}
	d.encS = s
}

// ensureCache makes the self-attention cache at the first Step, and grows
// it when Reserve asked for more slots than it has.
func (d *inplaceDecoder) ensureCache() {
	want := d.want
	if want <= 0 {
		want = minCacheTokens
	}
	if d.maxLen == 0 {
		d.maxLen = want
		d.capRows = d.rows
		n := d.capRows * d.rowLen()
		for j := range d.self {
			d.self[j] = reuse(d.self[j], n)
		}
		d.indir = make([]int32, d.capRows*d.maxLen)
		d.spare = make([]int32, d.capRows*d.maxLen)
		for r := range d.rows {
			d.fillIndir(r)
		}
		d.dirty = true
		return
	}
	if want > d.maxLen {
		d.growLen(want)
	}
}

// ensureRows gives the cache room for n rows, keeping rows [0, d.rows).
func (d *inplaceDecoder) ensureRows(n int) {
	if n <= d.capRows {
		return
	}
	capRows := max(n, 2*d.capRows)
	rl := d.rowLen()
	for j, buf := range d.self {
		nb := make([]float32, capRows*rl)
		copy(nb, buf[:d.rows*rl])
		d.self[j] = nb
	}
	ni := make([]int32, capRows*d.maxLen)
	copy(ni, d.indir[:d.rows*d.maxLen])
	d.indir = ni
	d.spare = make([]int32, capRows*d.maxLen)
	d.capRows = capRows
	d.dirty = true
}

// growLen re-lays the cache at n slots per row.
func (d *inplaceDecoder) growLen(n int) {
	old, heads, hd := d.maxLen, d.lay.heads, d.lay.headDim
	for j, buf := range d.self {
		nb := make([]float32, d.capRows*heads*n*hd)
		for r := range d.rows {
			for h := range heads {
				src := buf[(r*heads+h)*old*hd : (r*heads+h)*old*hd+d.pos*hd]
				copy(nb[(r*heads+h)*n*hd:], src)
			}
		}
		d.self[j] = nb
	}
	ni := make([]int32, d.capRows*n)
	for r := range d.rows {
		copy(ni[r*n:r*n+d.pos], d.indir[r*old:r*old+d.pos])
		for j := d.pos; j < n; j++ {
			ni[r*n+j] = int32(r)
		}
	}
	d.indir = ni
	d.spare = make([]int32, d.capRows*n)
	d.maxLen = n
	d.dirty = true
}

// makeRoom frees slots when every slot is in use: every row's slots move
// left by the smallest start when that frees at least half of them (each
// row then lived through at least half the cache), else the cache doubles.
func (d *inplaceDecoder) makeRoom() {
	s := d.pos
	for _, st := range d.start[:d.rows] {
		s = min(s, int(st))
	}
	if s == 0 || 2*s < d.maxLen {
		d.growLen(2 * d.maxLen)
		return
	}
	heads, hd, m := d.lay.heads, d.lay.headDim, d.maxLen
	keep := d.pos - s
	for _, buf := range d.self {
		for r := range d.rows {
			for h := range heads {
				base := (r*heads + h) * m * hd
				copy(buf[base:base+keep*hd], buf[base+s*hd:base+d.pos*hd])
			}
		}
	}
	for r := range d.rows {
		copy(d.indir[r*m:r*m+keep], d.indir[r*m+s:r*m+d.pos])
		d.start[r] -= int32(s)
	}
	d.pos = keep
	d.shifts++
}

// makeTensors (re)makes the tensors over the rows' buffers.
func (d *inplaceDecoder) makeTensors() error {
	if err := d.makeIDsLogits(); err != nil {
		return err
	}
	release(&d.startT)
	release(&d.indirT)
	release(&d.maskT)
	releaseAll(d.crossT)
	releaseAll(d.pastT)
	releaseAll(d.presT)
	rows, heads, hd := int64(d.rows), int64(d.lay.heads), int64(d.lay.headDim)
	var err error
	if d.startT, err = header(d.start[:d.rows], rows); err != nil {
		return fmt.Errorf("runtime: %w", err)
	}
	if d.indirT, err = header(d.indir[:d.rows*d.maxLen], 1, rows, int64(d.maxLen)); err != nil {
		return fmt.Errorf("runtime: %w", err)
	}
	cross, mask, groups := d.cross, d.mask, int64(len(d.inputs))
	if d.perRow {
		cross, mask, groups = d.rowCross, d.rowMask, rows
	}
	s := int64(d.encS)
	if d.maskT, err = header(mask[:groups*s], groups, s); err != nil {
		return fmt.Errorf("runtime: %w", err)
	}
	n := d.rows * d.rowLen()
	for j := range d.self {
		if d.crossT[j], err = header(cross[j][:groups*heads*s*hd], groups, heads, s, hd); err != nil {
			return fmt.Errorf("runtime: %w", err)
		}
		shape := []int64{rows, heads, int64(d.maxLen), hd}
		if d.pastT[j], err = header(d.self[j][:n], shape...); err != nil {
			return fmt.Errorf("runtime: %w", err)
		}
		if d.presT[j], err = header(d.self[j][:n], shape...); err != nil {
			return fmt.Errorf("runtime: %w", err)
		}
	}
	d.dirty = false
	return nil
}

// Step feeds one token per row and returns the logits of the next position,
// row-major, Rows()*VocabSize() long. The slice is the Decoder's own buffer:
// it is valid until the next Step, Reorder, Join or Close. A Step that
// fails in the graph run may have written the rows' new slot; the slot is
// not counted, so the next Step overwrites it.
func (d *inplaceDecoder) Step(ctx context.Context, tokens []int64) ([]float32, error) {
	if err := d.checkStep(tokens); err != nil {
		return nil, err
	}
	d.ensureCache()
	if d.pos == d.maxLen {
		d.makeRoom()
	}
	if mp := d.lay.maxPositions; mp > 0 {
		for r, st := range d.start[:d.rows] {
			if p := d.pos - int(st); p >= mp {
				return nil, fmt.Errorf("runtime: step: row %d is at decoder position %d, past the model's %d positions; ask for fewer new tokens", r, p, mp)
			}
		}
	}
	if d.dirty {
		if err := d.makeTensors(); err != nil {
			return nil, err
		}
	}
	copy(d.ids, tokens)
	d.posBuf[0] = int32(d.pos)
	d.bwBuf[0] = int32(d.rows)
	s := &d.m.step
	d.in = d.in[:0]
	for _, sl := range s.io.ins {
		var v ort.Value
		switch sl.kind {
		case slotIDs:
			v = d.idsT
		case slotRowStart:
			v = d.startT
		case slotCacheLength:
			v = d.posT
		case slotBeamWidth:
			v = d.bwT
		case slotIndirection:
			v = d.indirT
		case slotMask:
			v = d.maskT
		case slotCross:
			v = d.crossT[sl.idx]
		case slotSelf:
			v = d.pastT[sl.idx]
		}
		d.in = append(d.in, v)
	}
	d.out = d.out[:0]
	for _, sl := range s.io.outs {
		if sl.kind == slotLogits {
			d.out = append(d.out, d.logitsT)
		} else {
			d.out = append(d.out, d.presT[sl.idx])
		}
	}
	if err := d.m.run(ctx, s, d.in, d.out); err != nil {
		return nil, fmt.Errorf("runtime: decoder step %d: %w", d.steps, err)
	}
	m := d.maxLen
	for r := range d.rows {
		d.indir[r*m+d.pos] = int32(r)
	}
	d.pos++
	d.steps++
	return d.logits[:d.rows*d.vocab], nil
}

// Reorder makes new row i continue the history of current row src[i]. A
// reorder that keeps or grows the rows (a beam step) rewrites the
// indirection table only. When rows leave, each slot of the cache is
// compacted on its own: the buffer rows the new rows read at that slot stay
// where they are if they are inside the new row count, and are moved into a
// row nobody reads there otherwise (a buffer row can hold slots of two
// histories: an old one below the slot where a reorder gave it a new row,
// the new row's own above). The cross-attention storage drops the inputs no
// row reads. An identity src costs nothing.
func (d *inplaceDecoder) Reorder(src []int) error {
	identity, err := d.checkReorder(src)
	if identity || err != nil {
		return err
	}
	n, old := len(src), d.rows
	if d.maxLen > 0 {
		d.ensureRows(n)
		m := d.maxLen
		for i, s := range src {
			dst := d.spare[i*m : (i+1)*m]
			st := int(d.start[s])
			for j := range st {
				dst[j] = int32(i)
			}
			copy(dst[st:d.pos], d.indir[s*m+st:s*m+d.pos])
		}
		if n < old {
			d.compact(src)
		}
		copy(d.indir[:n*m], d.spare[:n*m]) // the indirection tensor stays over d.indir
		for i := old; i < n; i++ {
			// Slots from pos on are written by the rows' own steps.
			for j := d.pos; j < m; j++ {
				d.indir[i*m+j] = int32(i)
			}
		}
	}
	// Row metadata.
	d.next = grow(d.next[:0], 3*n, 0)[:3*n]
	changed := n != old
	for i, s := range src {
		d.next[i], d.next[n+i], d.next[2*n+i] = int(d.start[s]), d.rowSlot[s], d.inputOf[s]
		changed = changed || (i < old && d.rowSlot[s] != d.rowSlot[i])
	}
	d.start = grow(d.start[:0], n, 0)[:n]
	d.rowSlot = grow(d.rowSlot[:0], n, 0)[:n]
	d.inputOf = grow(d.inputOf[:0], n, 0)[:n]
	for i := range n {
		d.start[i], d.rowSlot[i], d.inputOf[i] = int32(d.next[i]), d.next[n+i], d.next[2*n+i]
	}
	d.rows = n
	if changed {
		d.regroup() // and the tensors get remade
	}
	return nil
}

// compact moves, slot by slot, what the n = len(src) new rows read from
// buffer rows at or past n into rows below n that nobody reads at that
// slot, and points the new indirection (d.spare) at them.
func (d *inplaceDecoder) compact(src []int) {
	n, old, m := len(src), d.rows, d.maxLen
	heads, hd := d.lay.heads, d.lay.headDim
	d.used = grow(d.used[:0], old, 0)[:old]
	d.phi = grow(d.phi[:0], old, 0)[:old]
	lo := d.pos
	for _, s := range src {
		lo = min(lo, int(d.start[s]))
	}
	for j := lo; j < d.pos; j++ {
		clear(d.used)
		far := false
		for i, s := range src {
			if j >= int(d.start[s]) {
				u := d.spare[i*m+j]
				d.used[u] = true
				far = far || int(u) >= n
			}
		}
		if !far {
			continue
		}
		free := 0
		for u := n; u < old; u++ {
			if !d.used[u] {
				continue
			}
			for d.used[free] {
				free++
			}
			d.used[free] = true
			d.phi[u] = free
			for _, buf := range d.self {
				for h := range heads {
					from := ((u*heads+h)*m + j) * hd
					to := ((free*heads+h)*m + j) * hd
					copy(buf[to:to+hd], buf[from:from+hd])
				}
			}
			d.moves++
		}
		for i, s := range src {
			if j >= int(d.start[s]) {
				if u := d.spare[i*m+j]; int(u) >= n {
					d.spare[i*m+j] = int32(d.phi[u])
				}
			}
		}
	}
}

// Close releases the Decoder's tensors and keeps its large buffers for the
// Model's next Encode. Closing twice is harmless.
func (d *inplaceDecoder) Close() error {
	if !d.closeRows() {
		return nil
	}
	release(&d.startT)
	release(&d.posT)
	release(&d.bwT)
	release(&d.indirT)
	release(&d.maskT)
	releaseAll(d.crossT)
	releaseAll(d.pastT)
	releaseAll(d.presT)
	d.m.putBuffers(&bufferSet{logits: d.logits, hidden: d.hidden, cross: d.cross, self: [2][][]float32{d.self}})
	d.logits, d.hidden, d.cross, d.self, d.rowCross, d.joinBuf = nil, nil, nil, nil, nil, nil
	return nil
}
