package runtime

import (
	"errors"
	"fmt"
	"sync"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/s2s-dev/s2s/models"
)

// A packed model (models.Packed) is one graph whose parts (encoder,
// decoders) are branches of If nodes on its part input. One ONNX Runtime
// session over it serves every part: each part is a session view (a
// packedPart) that adds to a run what the part does not give itself (the
// part input's value, an empty tensor for each input the part does not
// take, a preallocated empty tensor for each output it does not give), so
// that the Decoders run a part as they run a graph of a directory.

// packedSession is the one session of a packed model and the tensors its
// parts share.
type packedSession struct {
	s      *ort.DynamicAdvancedSession
	nIn    int
	nOut   int
	owned  []ort.Value // part values, empty inputs and placeholder outputs
	lists  sync.Pool   // *argLists of nIn inputs and nOut outputs
	closed bool
}

// argLists are the full input and output lists of one run.
type argLists struct{ in, out []ort.Value }

// packedPart is one part of a packed model as a session.
type packedPart struct {
	ps  *packedSession
	in  []int // per part input, in graphIO order: its index among the session's inputs
	out []int // per part output, in graphIO order: its index among the session's outputs
	// fixedIn holds, per session input, the part value or an empty tensor,
	// or nil where the part feeds it; fixedOut, per session output, a
	// placeholder, or nil where the part takes it.
	fixedIn, fixedOut []ort.Value
}

// runWith runs the session s: a graph's own session, or a part of a
// packed model's.
func (s *session) runWith(in, out []ort.Value, ro *ort.RunOptions) error {
	if s.part != nil {
		return s.part.run(in, out, ro)
	}
	return s.s.RunWithOptions(in, out, ro)
}

// run runs the part with its inputs in and outputs out (in graphIO order).
// An output left nil is allocated by onnxruntime_go and set in out, as
// for a graph's own session.
func (p *packedPart) run(in, out []ort.Value, ro *ort.RunOptions) error {
	if len(in) != len(p.in) || len(out) != len(p.out) {
		return fmt.Errorf("runtime: a packed part takes %d inputs and %d outputs, not %d and %d", len(p.in), len(p.out), len(in), len(out))
	}
	a, _ := p.ps.lists.Get().(*argLists)
	if a == nil {
		a = &argLists{in: make([]ort.Value, p.ps.nIn), out: make([]ort.Value, p.ps.nOut)}
	}
	copy(a.in, p.fixedIn)
	copy(a.out, p.fixedOut)
	for i, v := range in {
		a.in[p.in[i]] = v
	}
	for j, v := range out {
		a.out[p.out[j]] = v
	}
	err := p.ps.s.RunWithOptions(a.in, a.out, ro)
	for j := range out {
		if out[j] == nil {
			out[j] = a.out[p.out[j]]
		}
	}
	clear(a.in)
	clear(a.out)
	p.ps.lists.Put(a)
	return err
}

// close destroys the session and the tensors its parts share.
func (ps *packedSession) close() error {
	if ps == nil || ps.closed {
		return nil
	}
	ps.closed = true
	var errs []error
	if ps.s != nil {
		errs = append(errs, ps.s.Destroy())
		ps.s = nil
	}
	for _, v := range ps.owned {
		errs = append(errs, v.Destroy())
	}
	ps.owned = nil
	return errors.Join(errs...)
}

// ortInfo turns a packed graph's tensor description into ONNX Runtime's,
// under the name name.
func ortInfo(t models.TensorInfo, name string) ort.InputOutputInfo {
	info := ort.InputOutputInfo{Name: name, OrtValueType: ort.ONNXTypeTensor, DataType: ort.TensorElementDataType(t.ElemType), Dimensions: ort.NewShape(t.Dims...)}
	if t.ElemType == 0 {
		info.OrtValueType = ort.ONNXTypeUnknown
	}
	return info
}

// packedIO is what LoadPacked knows of a packed graph's inputs and outputs.
type packedIO struct {
	p       *models.Packed
	inIdx   map[string]int // graph input name: its index
	outIdx  map[string]int // graph output name: its index
	label   string
	outUsed []bool // per graph output: some part takes it, so the session gives it
}

// newPackedIO indexes the inputs and outputs of p's graph.
func newPackedIO(p *models.Packed) *packedIO {
	pio := &packedIO{p: p, inIdx: map[string]int{}, outIdx: map[string]int{}, label: p.Label(), outUsed: make([]bool, len(p.Outputs))}
	for i, t := range p.Inputs {
		pio.inIdx[t.Name] = i
	}
	for i, t := range p.Outputs {
		pio.outIdx[t.Name] = i
	}
	return pio
}

// file names the part in messages: FILE.onnx:part.
func (pio *packedIO) file(part string) string { return pio.label + ":" + part }

// partInfo returns the inputs and outputs of the part name, under the
// part's own names, in the part's order.
func (pio *packedIO) partInfo(name string) (*models.Part, []ort.InputOutputInfo, []ort.InputOutputInfo, error) {
	part, ok := pio.p.Part(name)
	if !ok {
		return nil, nil, nil, fmt.Errorf("runtime: %s has no part %q; pack the model again", pio.label, name)
	}
	ins := make([]ort.InputOutputInfo, len(part.Inputs))
	for i, n := range part.Inputs {
		ins[i] = ortInfo(pio.p.Inputs[pio.inIdx[n]], n)
	}
	outs := make([]ort.InputOutputInfo, len(part.Outputs))
	for i, n := range part.Outputs {
		outs[i] = ortInfo(pio.p.Outputs[pio.outIdx[part.GraphOutput(n)]], n)
	}
	return part, ins, outs, nil
}

// emptyTensor makes a tensor of the element type of t with t's shape, its
// open axes 0, and checks that it holds no element.
func emptyTensor(t models.TensorInfo) (ort.Value, error) {
	if t.Dims == nil {
		return nil, fmt.Errorf("%q has no declared shape", t.Name)
	}
	shape := make([]int64, len(t.Dims))
	n := int64(1)
	for i, d := range t.Dims {
		shape[i] = max(d, 0)
		n *= shape[i]
	}
	if n != 0 {
		return nil, fmt.Errorf("%q has the fixed shape %v, so a part that does not use it cannot leave it empty", t.Name, t.Dims)
	}
	switch ort.TensorElementDataType(t.ElemType) {
	case ort.TensorElementDataTypeFloat:
		return header([]float32(nil), shape...)
	case ort.TensorElementDataTypeInt64:
		return header([]int64(nil), shape...)
	case ort.TensorElementDataTypeInt32:
		return header([]int32(nil), shape...)
	case ort.TensorElementDataTypeBool:
		return header([]bool(nil), shape...)
	}
	return nil, fmt.Errorf("%q holds ONNX element type %d, which the runtime does not make", t.Name, t.ElemType)
}

// LoadPacked opens a packed model (models.ReadPacked or
// models.ReadPackedFile): one ONNX Runtime session over its graph, made
// from its bytes (p.Data) or its file (p.Path), serves every part, with
// ONNX Runtime loaded by Init(opts.LibraryPath). The decoder parts take
// the place of a directory's decoder and decoder-with-past graphs, whatever
// opts.DecoderGraphs says: their weights are stored, and loaded, once.
func LoadPacked(p *models.Packed, opts Options) (*Model, error) {
	if p == nil || p.Manifest == nil {
		return nil, errors.New("runtime: no packed model; read it with models.ReadPacked or models.ReadPackedFile first")
	}
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	o := opts.WithDefaults()
	if _, err := Init(o.LibraryPath); err != nil {
		return nil, err
	}
	m := p.Manifest
	pio := newPackedIO(p)
	file := pio.file

	model := &Model{}
	type view struct {
		s    *session
		part *models.Part
	}
	var views []view
	switch m.Architecture {
	case models.ArchTransformer:
		if m.Layout != "" && m.Layout != models.LayoutOptimum {
			return nil, fmt.Errorf("runtime: %s: a packed model holds Optimum's layout only, not %q; pack a model exported with --layout optimum", pio.label, m.Layout)
		}
		if m.Files.Encoder == "" || m.Files.Decoder == "" || m.Files.DecoderWithPast == "" {
			return nil, fmt.Errorf("runtime: %s: a packed Transformer needs encoder, decoder and decoder_with_past parts; pack the model again", pio.label)
		}
		var ios [3]*graphIO
		var parts [3]*models.Part
		for i, name := range []string{m.Files.Encoder, m.Files.Decoder, m.Files.DecoderWithPast} {
			part, ins, outs, err := pio.partInfo(name)
			if err != nil {
				return nil, err
			}
			if i == 0 {
				ios[i], err = classifyEncoder(file(name), ins, outs)
			} else {
				ios[i], err = classifyDecoder(file(name), ins, outs)
			}
			if err != nil {
				return nil, err
			}
			parts[i] = part
		}
		lay, err := checkLayout(ios[0], ios[1], ios[2], false, layout{
			heads: m.NumHeads, headDim: m.HeadDim, hidden: m.HiddenSize, vocab: m.VocabSize,
		})
		if err != nil {
			return nil, err
		}
		model.lay = lay
		model.enc.io, model.first.io, model.step.io = ios[0], ios[1], ios[2]
		views = []view{{&model.enc, parts[0]}, {&model.first, parts[1]}, {&model.step, parts[2]}}
	case models.ArchRNN:
		if m.Files.Encoder == "" || m.Files.Decoder == "" {
			return nil, fmt.Errorf("runtime: %s: a packed rnn model needs encoder and decoder parts; pack the model again", pio.label)
		}
		encPart, encIns, encOuts, err := pio.partInfo(m.Files.Encoder)
		if err != nil {
			return nil, err
		}
		stepPart, stepIns, stepOuts, err := pio.partInfo(m.Files.Decoder)
		if err != nil {
			return nil, err
		}
		rl, vocab, err := rnnLayoutOf(file(m.Files.Encoder), file(m.Files.Decoder), encIns, encOuts, stepIns, stepOuts, m.States, m.VocabSize)
		if err != nil {
			return nil, err
		}
		// The graphs' I/O as loadRNN makes them.
		encIO := &graphIO{file: file(m.Files.Encoder), ins: rl.encIn}
		for _, in := range encIns {
			encIO.inNames = append(encIO.inNames, in.Name)
		}
		for _, t := range rl.encOut {
			encIO.outNames = append(encIO.outNames, t.name)
		}
		stepIO := &graphIO{file: file(m.Files.Decoder)}
		for _, in := range stepIns {
			stepIO.inNames = append(stepIO.inNames, in.Name)
		}
		stepIO.outNames = append(stepIO.outNames, nameLogits)
		for _, si := range rl.stepOut[1:] {
			stepIO.outNames = append(stepIO.outNames, outputOf(m.States, rl.states[si].input))
		}
		model.rnn, model.lay = rl, layout{vocab: vocab}
		model.enc.io, model.step.io = encIO, stepIO
		views = []view{{&model.enc, encPart}, {&model.step, stepPart}}
	default:
		return nil, fmt.Errorf("runtime: %s: architecture %q is not served by this runtime; pack a %q or %q model", pio.label, m.Architecture, models.ArchTransformer, models.ArchRNN)
	}

	// The session gives every output some part takes.
	for _, v := range views {
		for _, name := range v.s.io.outNames {
			pio.outUsed[pio.outIdx[v.part.GraphOutput(name)]] = true
		}
	}
	ps := &packedSession{nIn: len(p.Inputs)}
	fail := func(err error) (*Model, error) {
		ps.close()
		return nil, fmt.Errorf("runtime: %s: %w", pio.label, err)
	}
	inNames := make([]string, len(p.Inputs))
	for i, t := range p.Inputs {
		inNames[i] = t.Name
	}
	var outNames []string
	sessOut := make([]int, len(p.Outputs)) // graph output: its index among the session's, -1 when not given
	for i, t := range p.Outputs {
		sessOut[i] = -1
		if pio.outUsed[i] {
			sessOut[i] = len(outNames)
			outNames = append(outNames, t.Name)
		}
	}
	ps.nOut = len(outNames)

	// What the parts share: an empty tensor per input and per output
	// (each made once, and only where some part leaves it out), and the
	// part input's values.
	emptyIn := make([]ort.Value, len(p.Inputs))
	emptyOut := make([]ort.Value, len(p.Outputs))
	empty := func(list []ort.Value, i int, t models.TensorInfo) (ort.Value, error) {
		if list[i] == nil {
			v, err := emptyTensor(t)
			if err != nil {
				return nil, err
			}
			list[i] = v
			ps.owned = append(ps.owned, v)
		}
		return list[i], nil
	}
	for _, v := range views {
		pp := &packedPart{ps: ps, fixedIn: make([]ort.Value, ps.nIn), fixedOut: make([]ort.Value, ps.nOut)}
		value, err := header([]int64{v.part.Value}, 1)
		if err != nil {
			return fail(err)
		}
		ps.owned = append(ps.owned, value)
		takes := map[string]bool{}
		for _, name := range v.s.io.inNames {
			i, ok := pio.inIdx[name]
			if !ok {
				return fail(fmt.Errorf("part %q: no graph input %q", v.part.Name, name))
			}
			pp.in = append(pp.in, i)
			takes[name] = true
		}
		for i, t := range p.Inputs {
			switch {
			case t.Name == p.PartInput:
				pp.fixedIn[i] = value
			case !takes[t.Name]:
				if pp.fixedIn[i], err = empty(emptyIn, i, t); err != nil {
					return fail(fmt.Errorf("input %w", err))
				}
			}
		}
		gives := map[int]bool{} // graph outputs the part gives
		for _, name := range v.part.Outputs {
			gives[pio.outIdx[v.part.GraphOutput(name)]] = true
		}
		takesOut := map[int]bool{}
		for _, name := range v.s.io.outNames {
			g := pio.outIdx[v.part.GraphOutput(name)]
			pp.out = append(pp.out, sessOut[g])
			takesOut[g] = true
		}
		for g, si := range sessOut {
			if si < 0 || takesOut[g] {
				continue
			}
			if gives[g] {
				// The part computes an output that only another part's
				// runs take: its shape is not known in advance.
				return fail(fmt.Errorf("part %q gives %q, which the runtime takes from another part only; pack the model again", v.part.Name, p.Outputs[g].Name))
			}
			if pp.fixedOut[si], err = empty(emptyOut, g, p.Outputs[g]); err != nil {
				return fail(fmt.Errorf("output %w", err))
			}
		}
		v.s.part = pp
	}

	so, err := sessionOptions(o)
	if err != nil {
		ps.close()
		return nil, err
	}
	defer so.Destroy()
	if p.Data != nil {
		ps.s, err = ort.NewDynamicAdvancedSessionWithONNXData(p.Data, inNames, outNames, so)
	} else {
		ps.s, err = ort.NewDynamicAdvancedSession(p.Path, inNames, outNames, so)
	}
	if err != nil {
		ps.close()
		return nil, fmt.Errorf("runtime: loading %s: %v", pio.label, err)
	}
	trimHeap()
	model.packed = ps
	return model, nil
}
