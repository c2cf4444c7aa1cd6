package runtime

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/s2s-dev/s2s/models"
)

// Names of the inplace layout's graphs (export/s2s_export/inplace.py).
const (
	nameRowStart    = "row_start"
	nameCacheLength = "cache_length"
	nameBeamWidth   = "beam_width"
	nameIndirection = "cache_indirection"
)

var (
	inplaceCrossName   = regexp.MustCompile(`^cross\.(\d+)\.(key|value)$`)
	inplacePastName    = regexp.MustCompile(`^past\.(\d+)\.(key|value)$`)
	inplacePresentName = regexp.MustCompile(`^present\.(\d+)\.(key|value)$`)
)

// Slot kinds of the inplace step graph, besides ids, mask, cross, self and
// logits.
const (
	slotRowStart    slotKind = iota + 100 // row_start, int32 [rows]
	slotCacheLength                       // cache_length, int32 [1]
	slotBeamWidth                         // beam_width, int32 [1]
	slotIndirection                       // cache_indirection, int32 [1, rows, max_length]
)

// inplaceLayout is what the runtime knows of a model in the inplace layout:
// its sizes and the order of the cross and step graphs' inputs and outputs.
type inplaceLayout struct {
	layers, heads, headDim, hidden, vocab int
	maxPositions                          int // 0: no limit
}

// cacheIndex parses name with re (layer and key/value) into 2*layer+k.
func cacheIndex(re *regexp.Regexp, name string) (int, bool) {
	m := re.FindStringSubmatch(name)
	if m == nil {
		return 0, false
	}
	layer, err := strconv.Atoi(m[1])
	if err != nil || layer > 1<<20 {
		return 0, false
	}
	i := 2 * layer
	if m[2] == "value" {
		i++
	}
	return i, true
}

// classifyInplace says what each input and output of the cross and step
// graphs is and checks them against each other and the manifest.
func classifyInplace(crossFile, stepFile string, crossIns, crossOuts, stepIns, stepOuts []ort.InputOutputInfo, m *models.Manifest) (*graphIO, *graphIO, *inplaceLayout, error) {
	cb, sb := filepath.Base(crossFile), filepath.Base(stepFile)
	redo := "re-export the model with the s2s exporter (--layout inplace)"
	cross := &graphIO{file: crossFile, infoIn: map[string]ort.InputOutputInfo{}, infoOut: map[string]ort.InputOutputInfo{}}
	for _, in := range crossIns {
		if in.Name != nameEncoderHidden {
			return nil, nil, nil, fmt.Errorf("runtime: %s: input %q is not one the runtime feeds (only %s); %s", cb, in.Name, nameEncoderHidden, redo)
		}
		if err := wantType(crossFile, in, ort.TensorElementDataTypeFloat, "float32"); err != nil {
			return nil, nil, nil, err
		}
		cross.infoIn[in.Name] = in
		cross.inNames = append(cross.inNames, in.Name)
		cross.ins = append(cross.ins, slot{kind: slotHidden})
	}
	if len(cross.ins) != 1 {
		return nil, nil, nil, fmt.Errorf("runtime: %s has no %s input; %s", cb, nameEncoderHidden, redo)
	}
	crossSet := map[int]bool{}
	for _, out := range crossOuts {
		i, ok := cacheIndex(inplaceCrossName, out.Name)
		if !ok {
			continue
		}
		if err := wantType(crossFile, out, ort.TensorElementDataTypeFloat, "float32"); err != nil {
			return nil, nil, nil, err
		}
		cross.infoOut[out.Name] = out
		cross.outNames = append(cross.outNames, out.Name)
		cross.outs = append(cross.outs, slot{kind: slotCross, idx: i})
		crossSet[i] = true
	}
	layers := len(crossSet) / 2
	if layers == 0 || !completeSet(crossSet, layers) {
		return nil, nil, nil, fmt.Errorf("runtime: %s: cross.<i>.key/value outputs do not cover layers 0..%d; %s", cb, max(layers-1, 0), redo)
	}

	step := &graphIO{file: stepFile, infoIn: map[string]ort.InputOutputInfo{}, infoOut: map[string]ort.InputOutputInfo{}}
	seen := map[slotKind]bool{}
	stepCross, past := map[int]bool{}, map[int]bool{}
	for _, in := range stepIns {
		step.infoIn[in.Name] = in
		var s slot
		var want ort.TensorElementDataType = ort.TensorElementDataTypeInt32
		what := "int32"
		switch in.Name {
		case nameInputIDs:
			s.kind, want, what = slotIDs, ort.TensorElementDataTypeInt64, "int64"
		case nameRowStart:
			s.kind = slotRowStart
		case nameCacheLength:
			s.kind = slotCacheLength
		case nameBeamWidth:
			s.kind = slotBeamWidth
		case nameIndirection:
			s.kind = slotIndirection
		case nameEncoderMask:
			s.kind = slotMask
		default:
			want, what = ort.TensorElementDataTypeFloat, "float32"
			if i, ok := cacheIndex(inplaceCrossName, in.Name); ok {
				s = slot{kind: slotCross, idx: i}
				stepCross[i] = true
			} else if i, ok := cacheIndex(inplacePastName, in.Name); ok {
				s = slot{kind: slotSelf, idx: i}
				past[i] = true
			} else {
				return nil, nil, nil, fmt.Errorf("runtime: %s: input %q is not one the runtime can feed; %s", sb, in.Name, redo)
			}
		}
		if err := wantType(stepFile, in, want, what); err != nil {
			return nil, nil, nil, err
		}
		seen[s.kind] = true
		step.inNames = append(step.inNames, in.Name)
		step.ins = append(step.ins, s)
	}
	for _, k := range []slotKind{slotIDs, slotRowStart, slotCacheLength, slotBeamWidth, slotIndirection, slotMask} {
		if !seen[k] {
			return nil, nil, nil, fmt.Errorf("runtime: %s lacks one of the inputs %s, %s, %s, %s, %s, %s; %s", sb,
				nameInputIDs, nameRowStart, nameCacheLength, nameBeamWidth, nameIndirection, nameEncoderMask, redo)
		}
	}
	if !completeSet(stepCross, layers) || !completeSet(past, layers) {
		return nil, nil, nil, fmt.Errorf("runtime: %s: cross.* and past.* inputs do not cover the %d layers of %s; %s", sb, layers, cb, redo)
	}
	present := map[int]bool{}
	for _, out := range stepOuts {
		step.infoOut[out.Name] = out
		var s slot
		if out.Name == nameLogits {
			s.kind = slotLogits
		} else if i, ok := cacheIndex(inplacePresentName, out.Name); ok {
			s = slot{kind: slotSelf, idx: i}
			present[i] = true
		} else {
			continue
		}
		if err := wantType(stepFile, out, ort.TensorElementDataTypeFloat, "float32"); err != nil {
			return nil, nil, nil, err
		}
		step.outNames = append(step.outNames, out.Name)
		step.outs = append(step.outs, s)
	}
	if !step.outputs(slotLogits) || !completeSet(present, layers) {
		return nil, nil, nil, fmt.Errorf("runtime: %s lacks logits or present.<i>.key/value for its %d layers; %s", sb, layers, redo)
	}
	// The present of each layer is written into its past's memory: tell
	// the replay of a Trace.
	step.alias = map[int]int{}
	for o, so := range step.outs {
		if so.kind != slotSelf {
			continue
		}
		for i, si := range step.ins {
			if si.kind == slotSelf && si.idx == so.idx {
				step.alias[o] = i
			}
		}
	}

	lay := &inplaceLayout{layers: layers, heads: m.NumHeads, headDim: m.HeadDim, hidden: m.HiddenSize, vocab: m.VocabSize, maxPositions: m.MaxPositions}
	dim := func(info ort.InputOutputInfo, axis int) int {
		if axis < len(info.Dimensions) && info.Dimensions[axis] > 0 {
			return int(info.Dimensions[axis])
		}
		return 0
	}
	p := step.infoIn["past.0.key"]
	for _, c := range []struct {
		what  string
		graph int
		v     *int
	}{
		{"number of heads", dim(p, 1), &lay.heads},
		{"head size", dim(p, 3), &lay.headDim},
		{"vocabulary size", dim(step.infoOut[nameLogits], 2), &lay.vocab},
		{"hidden size", dim(cross.infoIn[nameEncoderHidden], 2), &lay.hidden},
	} {
		switch {
		case c.graph > 0 && *c.v > 0 && c.graph != *c.v:
			return nil, nil, nil, fmt.Errorf("runtime: the graphs give a %s of %d, the manifest %d; %s", c.what, c.graph, *c.v, redo)
		case c.graph > 0:
			*c.v = c.graph
		case *c.v <= 0:
			return nil, nil, nil, fmt.Errorf("runtime: the graphs leave the %s open and the manifest does not give it; %s", c.what, redo)
		}
	}
	if m.NumLayers > 0 && m.NumLayers != layers {
		return nil, nil, nil, fmt.Errorf("runtime: %s has %d layers, the manifest %d; %s", cb, layers, m.NumLayers, redo)
	}
	return cross, step, lay, nil
}

// loadInplace opens the encoder, cross and step graphs of a model in the
// inplace layout.
func loadInplace(m *models.Manifest, o Options) (*Model, error) {
	if _, err := Init(o.LibraryPath); err != nil {
		return nil, err
	}
	encIO, err := encoderIO(m.Path(m.Files.Encoder))
	if err != nil {
		return nil, err
	}
	crossFile, stepFile := m.Path(m.Files.DecoderCross), m.Path(m.Files.DecoderStep)
	crossIns, crossOuts, err := readInfo(crossFile)
	if err != nil {
		return nil, err
	}
	stepIns, stepOuts, err := readInfo(stepFile)
	if err != nil {
		return nil, err
	}
	crossIO, stepIO, lay, err := classifyInplace(crossFile, stepFile, crossIns, crossOuts, stepIns, stepOuts, m)
	if err != nil {
		return nil, err
	}
	if h := encIO.infoOut[nameLastHidden]; len(h.Dimensions) == 3 && h.Dimensions[2] > 0 && int(h.Dimensions[2]) != lay.hidden {
		return nil, fmt.Errorf("runtime: the encoder gives hidden size %d, %s takes %d; the graphs are from different models; re-export the model", h.Dimensions[2], filepath.Base(crossFile), lay.hidden)
	}
	so, err := sessionOptions(o)
	if err != nil {
		return nil, err
	}
	defer so.Destroy()
	model := &Model{inp: lay, lay: layout{layers: lay.layers, heads: lay.heads, headDim: lay.headDim, hidden: lay.hidden, vocab: lay.vocab}}
	if model.enc, err = openSession(encIO, so); err != nil {
		return nil, err
	}
	if model.first, err = openSession(crossIO, so); err != nil {
		model.Close()
		return nil, err
	}
	if model.step, err = openSession(stepIO, so); err != nil {
		model.Close()
		return nil, err
	}
	return model, nil
}

// Joins reports whether the Model's Decoders can take in inputs between
// steps (beamsearch.Joiner): the inplace layout's can, Optimum's and the
// recurrent ones cannot (all their rows share one past length).
func (m *Model) Joins() bool { return m.inp != nil }
