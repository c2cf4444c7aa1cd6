package runtime

import (
	"context"
	"fmt"
	"path/filepath"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/s2s-dev/s2s/models"
)

// rnnTensor describes one tensor of a recurrent model's state: an encoder
// output or a carried state. dims holds -1 where the graphs leave an axis
// open: the batch axis (rows) and the others (the source length).
type rnnTensor struct {
	name string
	dims []int64
	axis int // the batch axis
}

// resolve returns t's shape for rows rows and source length encLen.
func (t rnnTensor) resolve(rows, encLen int) []int64 {
	out := make([]int64, len(t.dims))
	for i, d := range t.dims {
		switch {
		case i == t.axis:
			out[i] = int64(rows)
		case d < 0:
			out[i] = int64(encLen)
		default:
			out[i] = d
		}
	}
	return out
}

// rnnState is one decoder state input and where its values come from.
type rnnState struct {
	input   string
	init    int // index into rnnLayout.encOut
	carried bool
	tensor  rnnTensor // the state's own shape (carried states)
}

// rnnLayout is what the runtime knows of a recurrent model's graphs.
type rnnLayout struct {
	encIn    []slot      // encoder inputs: slotIDs or slotMask
	encOut   []rnnTensor // encoder outputs the states start from
	states   []rnnState
	stepIn   []int // per step graph input: -1 for input_ids, else the state index
	stepOut  []int // per step graph output: -1 for logits, else the (carried) state index
	carryIdx []int // per state: its index among the carried states, -1 for constants
}

// loadRNN opens a recurrent model whose decoder state s2s.json lists.
func loadRNN(m *models.Manifest, o Options) (*Model, error) {
	if m.Files.Decoder == "" {
		return nil, fmt.Errorf("runtime: %s: an rnn model needs its step graph under files.decoder; re-export the model", m.Dir)
	}
	if len(m.States) == 0 {
		return nil, fmt.Errorf("runtime: %s: an rnn model needs its state tensors listed under \"states\"; re-export the model", m.Dir)
	}
	encFile, stepFile := m.Path(m.Files.Encoder), m.Path(m.Files.Decoder)
	encIns, encOuts, err := readInfo(encFile)
	if err != nil {
		return nil, err
	}
	stepIns, stepOuts, err := readInfo(stepFile)
	if err != nil {
		return nil, err
	}
	rl, vocab, err := rnnLayoutOf(filepath.Base(encFile), filepath.Base(stepFile), encIns, encOuts, stepIns, stepOuts, m.States, m.VocabSize)
	if err != nil {
		return nil, err
	}
	encIO := &graphIO{file: encFile, ins: rl.encIn}
	for _, in := range encIns {
		encIO.inNames = append(encIO.inNames, in.Name)
	}
	for _, t := range rl.encOut {
		encIO.outNames = append(encIO.outNames, t.name)
	}
	stepIO := &graphIO{file: stepFile}
	for _, in := range stepIns {
		stepIO.inNames = append(stepIO.inNames, in.Name)
	}
	stepIO.outNames = append(stepIO.outNames, nameLogits)
	for _, si := range rl.stepOut[1:] {
		stepIO.outNames = append(stepIO.outNames, outputOf(m.States, rl.states[si].input))
	}

	so, err := sessionOptions(o)
	if err != nil {
		return nil, err
	}
	defer so.Destroy()
	model := &Model{rnn: rl, lay: layout{vocab: vocab}}
	if model.enc, err = openSession(encIO, so); err != nil {
		return nil, err
	}
	if model.step, err = openSession(stepIO, so); err != nil {
		model.Close()
		return nil, err
	}
	return model, nil
}

// outputOf returns the step graph output that carries state input.
func outputOf(states []models.State, input string) string {
	for _, s := range states {
		if s.Input == input {
			return s.Output
		}
	}
	return ""
}

// rnnLayoutOf checks a recurrent model's graphs against its state list and
// works out how to run them. It returns the layout and the logits width.
func rnnLayoutOf(encName, stepName string, encIns, encOuts, stepIns, stepOuts []ort.InputOutputInfo, states []models.State, manifestVocab int) (*rnnLayout, int, error) {
	rl := &rnnLayout{}
	for _, in := range encIns {
		var s slot
		switch in.Name {
		case nameInputIDs:
			s.kind = slotIDs
		case nameAttentionMask:
			s.kind = slotMask
		default:
			return nil, 0, fmt.Errorf("runtime: %s: input %q is not one the runtime can feed (it feeds %s and %s); re-export the encoder", encName, in.Name, nameInputIDs, nameAttentionMask)
		}
		if err := wantType(encName, in, ort.TensorElementDataTypeInt64, "int64"); err != nil {
			return nil, 0, err
		}
		rl.encIn = append(rl.encIn, s)
	}
	byName := func(list []ort.InputOutputInfo, name string) (ort.InputOutputInfo, bool) {
		for _, x := range list {
			if x.Name == name {
				return x, true
			}
		}
		return ort.InputOutputInfo{}, false
	}
	// merge takes the static sizes of either shape.
	merge := func(a, b []int64, what string) ([]int64, error) {
		if len(a) != len(b) {
			return nil, fmt.Errorf("runtime: %s has rank %d in one graph and %d in the other; re-export the model", what, len(a), len(b))
		}
		out := make([]int64, len(a))
		for i := range a {
			switch {
			case a[i] > 0 && b[i] > 0 && a[i] != b[i]:
				return nil, fmt.Errorf("runtime: %s has size %d on axis %d in one graph and %d in the other; re-export the model", what, a[i], i, b[i])
			case a[i] > 0:
				out[i] = a[i]
			case b[i] > 0:
				out[i] = b[i]
			default:
				out[i] = -1
			}
		}
		return out, nil
	}
	initIdx := map[string]int{}
	stateIdx := map[string]int{}
	for _, st := range states {
		in, ok := byName(stepIns, st.Input)
		if !ok {
			return nil, 0, fmt.Errorf("runtime: %s has no input %q that s2s.json's states name; re-export the model", stepName, st.Input)
		}
		if err := wantType(stepName, in, ort.TensorElementDataTypeFloat, "float32"); err != nil {
			return nil, 0, err
		}
		out, ok := byName(encOuts, st.Init)
		if !ok {
			return nil, 0, fmt.Errorf("runtime: %s has no output %q that state %q starts from; re-export the model", encName, st.Init, st.Input)
		}
		if err := wantType(encName, out, ort.TensorElementDataTypeFloat, "float32"); err != nil {
			return nil, 0, err
		}
		if st.BatchAxis < 0 || st.BatchAxis >= len(in.Dimensions) {
			return nil, 0, fmt.Errorf("runtime: state %q: batch_axis %d is not an axis of its %d-d tensor; fix s2s.json", st.Input, st.BatchAxis, len(in.Dimensions))
		}
		dims, err := merge(in.Dimensions, out.Dimensions, fmt.Sprintf("state %q (from %q)", st.Input, st.Init))
		if err != nil {
			return nil, 0, err
		}
		k, seen := initIdx[st.Init]
		if !seen {
			k = len(rl.encOut)
			initIdx[st.Init] = k
			rl.encOut = append(rl.encOut, rnnTensor{name: st.Init, dims: dims, axis: st.BatchAxis})
		} else {
			e := &rl.encOut[k]
			if e.axis != st.BatchAxis {
				return nil, 0, fmt.Errorf("runtime: encoder output %q feeds states with different batch axes; fix s2s.json", st.Init)
			}
			if e.dims, err = merge(e.dims, dims, fmt.Sprintf("encoder output %q", st.Init)); err != nil {
				return nil, 0, err
			}
		}
		if st.Carried {
			o, ok := byName(stepOuts, st.Output)
			if !ok || st.Output == "" {
				return nil, 0, fmt.Errorf("runtime: carried state %q has no step graph output %q to continue from; fix s2s.json or re-export the model", st.Input, st.Output)
			}
			if err := wantType(stepName, o, ort.TensorElementDataTypeFloat, "float32"); err != nil {
				return nil, 0, err
			}
			if dims, err = merge(dims, o.Dimensions, fmt.Sprintf("state %q and output %q", st.Input, st.Output)); err != nil {
				return nil, 0, err
			}
		}
		if _, dup := stateIdx[st.Input]; dup {
			return nil, 0, fmt.Errorf("runtime: s2s.json lists state %q twice; fix it", st.Input)
		}
		stateIdx[st.Input] = len(rl.states)
		rl.states = append(rl.states, rnnState{input: st.Input, init: k, carried: st.Carried,
			tensor: rnnTensor{name: st.Input, dims: dims, axis: st.BatchAxis}})
	}
	for _, in := range stepIns {
		if in.Name == nameInputIDs {
			if err := wantType(stepName, in, ort.TensorElementDataTypeInt64, "int64"); err != nil {
				return nil, 0, err
			}
			rl.stepIn = append(rl.stepIn, -1)
			continue
		}
		i, ok := stateIdx[in.Name]
		if !ok {
			return nil, 0, fmt.Errorf("runtime: %s: input %q is neither %s nor a state s2s.json lists; add it to \"states\" or re-export the model", stepName, in.Name, nameInputIDs)
		}
		rl.stepIn = append(rl.stepIn, i)
	}
	if len(rl.stepIn) != len(rl.states)+1 {
		return nil, 0, fmt.Errorf("runtime: %s has no %q input; re-export the model", stepName, nameInputIDs)
	}
	logits, ok := byName(stepOuts, nameLogits)
	if !ok {
		return nil, 0, fmt.Errorf("runtime: %s has no %q output; re-export the model", stepName, nameLogits)
	}
	if err := wantType(stepName, logits, ort.TensorElementDataTypeFloat, "float32"); err != nil {
		return nil, 0, err
	}
	vocab := manifestVocab
	if n := len(logits.Dimensions); n == 3 && logits.Dimensions[2] > 0 {
		vocab = int(logits.Dimensions[2])
	} else if n != 3 {
		return nil, 0, fmt.Errorf("runtime: %s: logits have rank %d, want [batch, 1, vocab]; re-export the model", stepName, n)
	}
	if vocab <= 0 {
		return nil, 0, fmt.Errorf("runtime: %s leaves the logits width open and s2s.json gives no vocab_size; fix s2s.json", stepName)
	}
	rl.stepOut = []int{-1}
	rl.carryIdx = make([]int, len(rl.states))
	n := 0
	for i, st := range rl.states {
		rl.carryIdx[i] = -1
		if st.carried {
			rl.carryIdx[i] = n
			n++
			rl.stepOut = append(rl.stepOut, i)
		}
	}
	return rl, vocab, nil
}

// rnnBuffer is one state tensor of a recurrent Decoder: one buffer for a
// constant, two used in turn for a carried state.
type rnnBuffer struct {
	shape rnnTensor
	data  [2][]float32
	t     [2]*ort.Tensor[float32]
}

// remake (re)makes the header of side over rows rows.
func (b *rnnBuffer) remake(side, rows, encLen int) error {
	release(&b.t[side])
	dims := b.shape.resolve(rows, encLen)
	n := 1
	for _, d := range dims {
		n *= int(d)
	}
	b.data[side] = grow(b.data[side], n, 0)
	var err error
	if b.t[side], err = header(b.data[side], dims...); err != nil {
		return fmt.Errorf("runtime: %w", err)
	}
	return nil
}

// outerInner returns the number of slices before the batch axis and the
// length of one row slice after it.
func (b *rnnBuffer) outerInner(encLen int) (outer, inner int) {
	dims := b.shape.resolve(1, encLen)
	outer, inner = 1, 1
	for i, d := range dims {
		switch {
		case i < b.shape.axis:
			outer *= int(d)
		case i > b.shape.axis:
			inner *= int(d)
		}
	}
	return outer, inner
}

// gather makes row i (along the batch axis) of side to a copy of row src[i]
// of side from, which holds rows rows. Side to must already be made for
// len(src) rows.
func (b *rnnBuffer) gather(to, from int, src []int, rows, encLen int) {
	outer, inner := b.outerInner(encLen)
	n := len(src)
	dst, old := b.data[to], b.data[from]
	for o := range outer {
		for i, s := range src {
			copy(dst[(o*n+i)*inner:(o*n+i+1)*inner], old[(o*rows+s)*inner:(o*rows+s+1)*inner])
		}
	}
}

func (b *rnnBuffer) close() {
	release(&b.t[0])
	release(&b.t[1])
	b.data = [2][]float32{}
}

var _ Decoder = (*rnnDecoder)(nil)

// rnnDecoder is the Decoder of a recurrent model: the per-source constants
// the encoder gave (encoder states, projected keys, masks) and the carried
// states (LSTM h and c, input feeding), each carried state in two buffers
// used in turn.
type rnnDecoder struct {
	rowState
	consts  []rnnBuffer // per encoder output that a constant state reads (nil entries for the others)
	carried []rnnBuffer // per carried state
	cur     int         // side of the carried buffers that holds the state
}

// encodeRNN runs a recurrent model's encoder over b and starts its Decoder.
func (m *Model) encodeRNN(ctx context.Context, b batch) (*rnnDecoder, error) {
	rl := m.rnn
	d := &rnnDecoder{rowState: m.newRowState(b), consts: make([]rnnBuffer, len(rl.encOut)), carried: make([]rnnBuffer, 0, len(rl.states))}
	if err := d.makeIDsLogits(); err != nil {
		d.Close()
		return nil, err
	}
	if err := d.encode(ctx, b); err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}

// encode runs the encoder graph over b and sets the states from its
// outputs.
func (d *rnnDecoder) encode(ctx context.Context, b batch) error {
	m := d.m
	rl := m.rnn
	rows, encLen := b.rows, b.encLen
	outs := make([]rnnBuffer, len(rl.encOut))
	defer func() {
		for i := range outs {
			outs[i].close()
		}
	}()
	out := make([]ort.Value, len(outs))
	for i, t := range rl.encOut {
		outs[i].shape = t
		if err := outs[i].remake(0, rows, encLen); err != nil {
			return err
		}
		out[i] = outs[i].t[0]
	}
	tokensT, err := header(b.tokens, int64(rows), int64(encLen))
	if err != nil {
		return fmt.Errorf("runtime: encode: %w", err)
	}
	defer tokensT.Destroy()
	// The step graph does not take the source mask; a constant state
	// carries what it needs.
	maskT, err := header(b.mask, int64(rows), int64(encLen))
	if err != nil {
		return fmt.Errorf("runtime: encode: %w", err)
	}
	defer maskT.Destroy()
	in := make([]ort.Value, len(rl.encIn))
	for i, s := range rl.encIn {
		if s.kind == slotIDs {
			in[i] = tokensT
		} else {
			in[i] = maskT
		}
	}
	if err := m.run(ctx, &m.enc, in, out); err != nil {
		return fmt.Errorf("runtime: encoder: %w", err)
	}
	for _, st := range rl.states {
		if st.carried {
			d.carried = append(d.carried, rnnBuffer{shape: st.tensor})
			c := &d.carried[len(d.carried)-1]
			for side := range 2 {
				if err := c.remake(side, rows, encLen); err != nil {
					return err
				}
			}
			copy(c.data[0], outs[st.init].data[0])
		} else if d.consts[st.init].t[0] == nil {
			// Adopt the encoder's buffer and header.
			d.consts[st.init] = outs[st.init]
			outs[st.init] = rnnBuffer{}
		}
	}
	return nil
}

// Reserve does nothing: a recurrent state does not grow with the output.
func (d *rnnDecoder) Reserve(int) {}

// Step feeds one token per row and returns the logits of the next
// position, row-major, Rows()*VocabSize() long, in the Decoder's own
// buffer (valid until the next Step, Reorder or Close).
func (d *rnnDecoder) Step(ctx context.Context, tokens []int64) ([]float32, error) {
	if err := d.checkStep(tokens); err != nil {
		return nil, err
	}
	rl := d.m.rnn
	copy(d.ids, tokens)
	d.in = d.in[:0]
	for _, si := range rl.stepIn {
		switch {
		case si < 0:
			d.in = append(d.in, d.idsT)
		case rl.states[si].carried:
			d.in = append(d.in, d.carried[rl.carryIdx[si]].t[d.cur])
		default:
			d.in = append(d.in, d.consts[rl.states[si].init].t[0])
		}
	}
	d.out = d.out[:0]
	for _, si := range rl.stepOut {
		if si < 0 {
			d.out = append(d.out, d.logitsT)
		} else {
			d.out = append(d.out, d.carried[rl.carryIdx[si]].t[1-d.cur])
		}
	}
	if err := d.m.run(ctx, &d.m.step, d.in, d.out); err != nil {
		return nil, fmt.Errorf("runtime: decoder step %d: %w", d.steps, err)
	}
	d.cur = 1 - d.cur
	d.steps++
	return d.logits[:d.rows*d.vocab], nil
}

// Reorder makes new row i continue the history of current row src[i]: it
// gathers the carried states (into their spare side) and, when rows
// change input, the constants.
func (d *rnnDecoder) Reorder(src []int) error {
	if identity, err := d.checkReorder(src); identity || err != nil {
		return err
	}
	n := len(src)
	moved := d.mapInputs(src)
	for i := range d.carried {
		c := &d.carried[i]
		if err := c.remake(1-d.cur, n, d.encLen); err != nil {
			return err
		}
		c.gather(1-d.cur, d.cur, src, d.rows, d.encLen)
	}
	for i := range d.carried {
		if err := d.carried[i].remake(d.cur, n, d.encLen); err != nil {
			return err
		}
	}
	d.cur = 1 - d.cur
	if moved {
		for i := range d.consts {
			c := &d.consts[i]
			if c.t[0] == nil {
				continue
			}
			// Gather into side 1, then make it side 0.
			if err := c.remake(1, n, d.encLen); err != nil {
				return err
			}
			c.gather(1, 0, src, d.rows, d.encLen)
			release(&c.t[0])
			c.data[0], c.data[1] = c.data[1], nil
			c.t[0], c.t[1] = c.t[1], nil
		}
	}
	d.inputOf = append(d.inputOf[:0], d.next...)
	if n != d.rows {
		d.rows = n
		return d.makeIDsLogits()
	}
	return nil
}

// Close releases the Decoder's tensors. Closing twice is harmless.
func (d *rnnDecoder) Close() error {
	if !d.closeRows() {
		return nil
	}
	for i := range d.consts {
		d.consts[i].close()
	}
	for i := range d.carried {
		d.carried[i].close()
	}
	return nil
}
