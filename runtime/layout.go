package runtime

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"

	ort "github.com/yalue/onnxruntime_go"
)

// Names of the Optimum seq2seq ONNX layout.
const (
	nameInputIDs       = "input_ids"
	nameAttentionMask  = "attention_mask"
	nameLastHidden     = "last_hidden_state"
	nameEncoderMask    = "encoder_attention_mask"
	nameEncoderHidden  = "encoder_hidden_states"
	nameUseCacheBranch = "use_cache_branch"
	nameLogits         = "logits"
)

var (
	pastName    = regexp.MustCompile(`^past_key_values\.(\d+)\.(decoder|encoder)\.(key|value)$`)
	presentName = regexp.MustCompile(`^present\.(\d+)\.(decoder|encoder)\.(key|value)$`)
)

// slotKind says what the runtime feeds to a graph input or takes from a
// graph output.
type slotKind int

const (
	slotIDs      slotKind = iota // input_ids
	slotMask                     // attention_mask / encoder_attention_mask
	slotHidden                   // encoder_hidden_states / last_hidden_state
	slotUseCache                 // use_cache_branch
	slotSelf                     // past/present self-attention key or value
	slotCross                    // past/present cross-attention key or value
	slotLogits                   // logits
)

// slot is one graph input or output: its kind and, for cache tensors, the
// index 2*layer+k (k 0 for key, 1 for value).
type slot struct {
	kind slotKind
	idx  int
}

// graphIO is what the runtime knows of one graph: its file, the names it
// runs with and what each of them is.
type graphIO struct {
	file     string
	inNames  []string
	outNames []string
	ins      []slot
	outs     []slot
	infoIn   map[string]ort.InputOutputInfo
	infoOut  map[string]ort.InputOutputInfo
	alias    map[int]int // output index -> the input whose memory it is written into (inplace layout)
}

// has reports whether the graph takes an input of kind k (any index).
func (g *graphIO) has(k slotKind) bool {
	for _, s := range g.ins {
		if s.kind == k {
			return true
		}
	}
	return false
}

// outputs reports whether the graph gives an output of kind k (any index).
func (g *graphIO) outputs(k slotKind) bool {
	for _, s := range g.outs {
		if s.kind == k {
			return true
		}
	}
	return false
}

// cacheIndexes returns the set of cache indexes of kind k among the inputs
// (in) or the outputs.
func (g *graphIO) cacheIndexes(k slotKind, in bool) map[int]bool {
	list := g.outs
	if in {
		list = g.ins
	}
	set := map[int]bool{}
	for _, s := range list {
		if s.kind == k {
			set[s.idx] = true
		}
	}
	return set
}

// dropOutputs removes the outputs of kind k from the run.
func (g *graphIO) dropOutputs(k slotKind) {
	names, outs := g.outNames[:0], g.outs[:0]
	for i, s := range g.outs {
		if s.kind != k {
			names = append(names, g.outNames[i])
			outs = append(outs, s)
		}
	}
	g.outNames, g.outs = names, outs
}

// readInfo asks ONNX Runtime for the inputs and outputs of file. It loads the
// graph with optimizations off, which is quick.
func readInfo(file string) ([]ort.InputOutputInfo, []ort.InputOutputInfo, error) {
	so, err := ort.NewSessionOptions()
	if err != nil {
		return nil, nil, fmt.Errorf("runtime: session options: %w", err)
	}
	defer so.Destroy()
	if err := so.SetGraphOptimizationLevel(ort.GraphOptimizationLevelDisableAll); err != nil {
		return nil, nil, fmt.Errorf("runtime: session options: %w", err)
	}
	if err := so.SetIntraOpNumThreads(1); err != nil {
		return nil, nil, fmt.Errorf("runtime: session options: %w", err)
	}
	ins, outs, err := ort.GetInputOutputInfoWithOptions(file, so)
	if err != nil {
		return nil, nil, fmt.Errorf("runtime: %s: %v; is it an ONNX graph? re-export the model", filepath.Base(file), err)
	}
	return ins, outs, nil
}

// cacheSlot parses a past_key_values.* or present.* name.
func cacheSlot(re *regexp.Regexp, name string) (slot, bool) {
	m := re.FindStringSubmatch(name)
	if m == nil {
		return slot{}, false
	}
	layer, err := strconv.Atoi(m[1])
	if err != nil || layer > 1<<20 {
		return slot{}, false
	}
	s := slot{kind: slotSelf, idx: 2 * layer}
	if m[2] == "encoder" {
		s.kind = slotCross
	}
	if m[3] == "value" {
		s.idx++
	}
	return s, true
}

// wantType checks the element type of a tensor input or output.
func wantType(file string, info ort.InputOutputInfo, t ort.TensorElementDataType, what string) error {
	if info.OrtValueType != ort.ONNXTypeTensor {
		return fmt.Errorf("runtime: %s: %q is not a tensor; re-export the model with the s2s exporter", filepath.Base(file), info.Name)
	}
	if info.DataType != t {
		return fmt.Errorf("runtime: %s: %q holds %v, the runtime feeds %s; re-export the model in float32 with int64 ids", filepath.Base(file), info.Name, info.DataType, what)
	}
	return nil
}

// encoderIO discovers the encoder graph's inputs and outputs.
func encoderIO(file string) (*graphIO, error) {
	ins, outs, err := readInfo(file)
	if err != nil {
		return nil, err
	}
	return classifyEncoder(file, ins, outs)
}

// classifyEncoder says what each encoder input and output is.
func classifyEncoder(file string, ins, outs []ort.InputOutputInfo) (*graphIO, error) {
	var err error
	g := &graphIO{file: file, infoIn: map[string]ort.InputOutputInfo{}, infoOut: map[string]ort.InputOutputInfo{}}
	for _, in := range ins {
		g.infoIn[in.Name] = in
		var s slot
		switch in.Name {
		case nameInputIDs:
			s.kind = slotIDs
			err = wantType(file, in, ort.TensorElementDataTypeInt64, "int64")
		case nameAttentionMask:
			s.kind = slotMask
			err = wantType(file, in, ort.TensorElementDataTypeInt64, "int64")
		default:
			return nil, fmt.Errorf("runtime: %s: input %q is not one the runtime can feed (it feeds %s and %s); re-export the encoder with the s2s exporter", filepath.Base(file), in.Name, nameInputIDs, nameAttentionMask)
		}
		if err != nil {
			return nil, err
		}
		g.inNames = append(g.inNames, in.Name)
		g.ins = append(g.ins, s)
	}
	for _, out := range outs {
		g.infoOut[out.Name] = out
		if out.Name == nameLastHidden {
			if err := wantType(file, out, ort.TensorElementDataTypeFloat, "float32"); err != nil {
				return nil, err
			}
			g.outNames = append(g.outNames, out.Name)
			g.outs = append(g.outs, slot{kind: slotHidden})
		}
	}
	if !g.has(slotIDs) {
		return nil, fmt.Errorf("runtime: %s has no %q input; is it an encoder? re-export the model", filepath.Base(file), nameInputIDs)
	}
	if len(g.outs) == 0 {
		return nil, fmt.Errorf("runtime: %s has no %q output; is it an encoder? re-export the model", filepath.Base(file), nameLastHidden)
	}
	return g, nil
}

// decoderIO discovers a decoder graph's inputs and outputs. Outputs the
// runtime does not use are left out of the run.
func decoderIO(file string) (*graphIO, error) {
	ins, outs, err := readInfo(file)
	if err != nil {
		return nil, err
	}
	return classifyDecoder(file, ins, outs)
}

// classifyDecoder says what each decoder input and output is.
func classifyDecoder(file string, ins, outs []ort.InputOutputInfo) (*graphIO, error) {
	var err error
	base := filepath.Base(file)
	g := &graphIO{file: file, infoIn: map[string]ort.InputOutputInfo{}, infoOut: map[string]ort.InputOutputInfo{}}
	for _, in := range ins {
		g.infoIn[in.Name] = in
		var s slot
		switch in.Name {
		case nameInputIDs:
			s.kind = slotIDs
			err = wantType(file, in, ort.TensorElementDataTypeInt64, "int64")
		case nameEncoderMask:
			s.kind = slotMask
			err = wantType(file, in, ort.TensorElementDataTypeInt64, "int64")
		case nameEncoderHidden:
			s.kind = slotHidden
			err = wantType(file, in, ort.TensorElementDataTypeFloat, "float32")
		case nameUseCacheBranch:
			s.kind = slotUseCache
			err = wantType(file, in, ort.TensorElementDataTypeBool, "bool")
		default:
			var ok bool
			if s, ok = cacheSlot(pastName, in.Name); !ok {
				return nil, fmt.Errorf("runtime: %s: input %q is not one the runtime can feed; re-export the model with the s2s exporter (Optimum layout)", base, in.Name)
			}
			err = wantType(file, in, ort.TensorElementDataTypeFloat, "float32")
		}
		if err != nil {
			return nil, err
		}
		g.inNames = append(g.inNames, in.Name)
		g.ins = append(g.ins, s)
	}
	for _, out := range outs {
		g.infoOut[out.Name] = out
		var s slot
		if out.Name == nameLogits {
			s.kind = slotLogits
		} else if c, ok := cacheSlot(presentName, out.Name); ok {
			s = c
		} else {
			continue
		}
		if err := wantType(file, out, ort.TensorElementDataTypeFloat, "float32"); err != nil {
			return nil, err
		}
		g.outNames = append(g.outNames, out.Name)
		g.outs = append(g.outs, s)
	}
	if !g.has(slotIDs) {
		return nil, fmt.Errorf("runtime: %s has no %q input; is it a decoder? re-export the model", base, nameInputIDs)
	}
	if !g.outputs(slotLogits) {
		return nil, fmt.Errorf("runtime: %s has no %q output; is it a decoder? re-export the model", base, nameLogits)
	}
	return g, nil
}

// layout is the shape of a model's decoder state, as its graphs give it.
type layout struct {
	layers        int  // decoder layers
	heads         int  // attention heads
	headDim       int  // size of one head
	hidden        int  // encoder hidden size
	vocab         int  // logits width
	cross         bool // the step graph takes the cross-attention cache
	hiddenAtStep  bool // the step graph needs encoder_hidden_states
	maskAtStep    bool // the step graph takes encoder_attention_mask
	maskAtFirst   bool // the first-step graph takes encoder_attention_mask
	hiddenAtFirst bool // the first-step graph takes encoder_hidden_states
}

// completeSet checks that set holds exactly 0..2*layers-1.
func completeSet(set map[int]bool, layers int) bool {
	if len(set) != 2*layers {
		return false
	}
	for i := 0; i < 2*layers; i++ {
		if !set[i] {
			return false
		}
	}
	return true
}

// checkLayout checks that the encoder, first-step and step graphs fit
// together and reads the sizes of the state. merged says first and step
// are the same graph (with use_cache_branch). fallback gives sizes the
// graphs leave symbolic.
func checkLayout(enc, first, step *graphIO, merged bool, fallback layout) (layout, error) {
	var l layout
	fb, sb := filepath.Base(first.file), filepath.Base(step.file)
	selfIn := step.cacheIndexes(slotSelf, true)
	if len(selfIn) == 0 || len(selfIn)%2 != 0 {
		return l, fmt.Errorf("runtime: %s takes no past_key_values.*.decoder.key/value pairs; it cannot continue from a cache; re-export with --task text2text-generation-with-past", sb)
	}
	l.layers = len(selfIn) / 2
	if !completeSet(selfIn, l.layers) {
		return l, fmt.Errorf("runtime: %s: past_key_values.*.decoder inputs do not cover layers 0..%d; re-export the model", sb, l.layers-1)
	}
	if !completeSet(step.cacheIndexes(slotSelf, false), l.layers) {
		return l, fmt.Errorf("runtime: %s: present.*.decoder outputs do not match its %d past layers; re-export the model", sb, l.layers)
	}
	if !completeSet(first.cacheIndexes(slotSelf, false), l.layers) {
		return l, fmt.Errorf("runtime: %s: present.*.decoder outputs do not cover %d layers; re-export the model", fb, l.layers)
	}
	crossIn := step.cacheIndexes(slotCross, true)
	l.cross = len(crossIn) > 0
	if l.cross {
		if !completeSet(crossIn, l.layers) {
			return l, fmt.Errorf("runtime: %s: past_key_values.*.encoder inputs do not cover %d layers; re-export the model", sb, l.layers)
		}
		if !completeSet(first.cacheIndexes(slotCross, false), l.layers) {
			return l, fmt.Errorf("runtime: %s does not output the present.*.encoder keys and values that %s takes; re-export the model", fb, sb)
		}
	}
	if !l.cross {
		first.dropOutputs(slotCross) // the step graph recomputes them
	}
	// A merged graph ignores encoder_hidden_states on its cache branch;
	// the runtime feeds it a zero-length tensor there.
	l.hiddenAtStep = step.has(slotHidden) && !merged
	l.maskAtStep = step.has(slotMask)
	l.hiddenAtFirst = first.has(slotHidden)
	l.maskAtFirst = first.has(slotMask)
	if !l.cross && !l.hiddenAtStep {
		return l, fmt.Errorf("runtime: %s takes neither the cross-attention cache nor %s; it cannot see the input; re-export the model", sb, nameEncoderHidden)
	}
	if !l.hiddenAtFirst {
		return l, fmt.Errorf("runtime: %s does not take %s; it cannot see the input; re-export the model", fb, nameEncoderHidden)
	}
	if merged && !step.has(slotUseCache) {
		return l, fmt.Errorf("runtime: %s has no %s input; a merged decoder needs one; re-export the model", sb, nameUseCacheBranch)
	}
	if !merged && first.has(slotSelf) {
		return l, fmt.Errorf("runtime: %s takes past_key_values but is used for the first step; use the merged graph or re-export the model", fb)
	}

	// Sizes: static dimensions of the graphs, else the manifest's.
	dim := func(info ort.InputOutputInfo, axis int) int64 {
		if axis < len(info.Dimensions) && info.Dimensions[axis] > 0 {
			return info.Dimensions[axis]
		}
		return 0
	}
	pick := func(what string, graphValue int64, manifest int) (int, error) {
		if graphValue > 0 {
			return int(graphValue), nil
		}
		if manifest > 0 {
			return manifest, nil
		}
		return 0, fmt.Errorf("runtime: the graphs leave the %s open and the manifest does not give it; re-export the model with the s2s exporter", what)
	}
	past := step.infoIn["past_key_values.0.decoder.key"]
	var err error
	if l.heads, err = pick("number of heads", dim(past, 1), fallback.heads); err != nil {
		return l, err
	}
	if l.headDim, err = pick("head size", dim(past, 3), fallback.headDim); err != nil {
		return l, err
	}
	if l.vocab, err = pick("vocabulary size", dim(step.infoOut[nameLogits], 2), fallback.vocab); err != nil {
		return l, err
	}
	if l.hidden, err = pick("hidden size", dim(enc.infoOut[nameLastHidden], 2), fallback.hidden); err != nil {
		return l, err
	}
	if v := dim(first.infoOut[nameLogits], 2); v > 0 && int(v) != l.vocab {
		return l, fmt.Errorf("runtime: %s gives %d logits, %s gives %d; the graphs are from different models; re-export the model", fb, v, sb, l.vocab)
	}
	if h := dim(first.infoIn[nameEncoderHidden], 2); h > 0 && int(h) != l.hidden {
		return l, fmt.Errorf("runtime: the encoder gives hidden size %d, %s takes %d; the graphs are from different models; re-export the model", l.hidden, fb, h)
	}
	return l, nil
}
