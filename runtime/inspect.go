package runtime

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/s2s-dev/s2s/models"
)

// TensorSpec is one input or output of a graph, as the graph declares it.
type TensorSpec struct {
	Name  string
	Type  string  // element type ("float32", "int64", "bool", ...), or the ONNX value type of a non-tensor
	Shape []int64 // -1 where the graph leaves an axis open
	Role  string  // what the host feeds or takes there; "" when it does not use it
}

// GraphSpec is one graph file of a model directory.
type GraphSpec struct {
	Role    string // "encoder", "decoder", "decoder_with_past", "decoder_merged"
	File    string // its path
	Size    int64  // its size in bytes
	Inputs  []TensorSpec
	Outputs []TensorSpec
	Err     string // why the host cannot use it ("" when it can)
}

// LayoutSpec is the decoder state the host detected for one choice of
// decoder graphs.
type LayoutSpec struct {
	Graphs     string // GraphsSplit or GraphsMerged
	Layers     int
	Heads      int
	HeadDim    int
	Hidden     int  // encoder hidden size
	Vocab      int  // logits width
	CrossCache bool // the step graph takes the cross-attention cache (computed once at the first step)
	MaskAtStep bool // the step graph takes encoder_attention_mask
	Err        string
}

// ModelSpec is what Inspect found in a model directory.
type ModelSpec struct {
	Dir          string
	Architecture string
	Graphs       []GraphSpec
	Layouts      []LayoutSpec // Transformers: one per decoder pair present
	AutoCPU      string       // the decoder graphs DecoderGraphs "auto" runs on the CPU ("" when none fits)
	AutoCUDA     string       // and on CUDA
	Vocab        int          // RNN: the logits width
	Err          string       // RNN: why the graphs do not fit the manifest's states
}

// Inspect reads the graphs of the model m describes (loading ONNX Runtime
// with libraryPath, see FindLibrary, if it is not loaded yet) and reports
// their inputs and outputs, what the host does with each, and the decoder
// layout it detects, as Load would. A graph the host cannot use is
// reported in its GraphSpec, not as an error; err is for a model Inspect
// cannot read at all (no ONNX Runtime).
func Inspect(m *models.Manifest, libraryPath string) (*ModelSpec, error) {
	if m == nil {
		return nil, fmt.Errorf("runtime: no manifest; read the model directory with models.Load first")
	}
	if _, err := Init(libraryPath); err != nil {
		return nil, err
	}
	spec := &ModelSpec{Dir: m.Dir, Architecture: m.Architecture}
	// info reads a graph's inputs and outputs: a file of the directory,
	// or a part of a packed model (m.Dir is then the file).
	info := func(file string) (path string, size int64, ins, outs []ort.InputOutputInfo, err error) {
		path = m.Path(file)
		if st, err := os.Stat(path); err == nil {
			size = st.Size()
		}
		ins, outs, err = readInfo(path)
		return path, size, ins, outs, err
	}
	if m.Packed {
		p, err := models.ReadPackedFile(m.Dir)
		if err != nil {
			return nil, err
		}
		pio := newPackedIO(p)
		info = func(file string) (string, int64, []ort.InputOutputInfo, []ort.InputOutputInfo, error) {
			_, ins, outs, err := pio.partInfo(file)
			return pio.file(file), 0, ins, outs, err
		}
	}
	type read struct {
		ins, outs []ort.InputOutputInfo
		io        *graphIO
	}
	graphs := map[string]*read{}
	for _, g := range []struct{ role, file string }{
		{"encoder", m.Files.Encoder},
		{"decoder", m.Files.Decoder},
		{"decoder_with_past", m.Files.DecoderWithPast},
		{"decoder_merged", m.Files.DecoderMerged},
	} {
		if g.file == "" {
			continue
		}
		path, size, ins, outs, err := info(g.file)
		gs := GraphSpec{Role: g.role, File: path, Size: size}
		if err != nil {
			gs.Err = err.Error()
			spec.Graphs = append(spec.Graphs, gs)
			continue
		}
		r := &read{ins: ins, outs: outs}
		if m.Architecture == models.ArchTransformer {
			if g.role == "encoder" {
				r.io, err = classifyEncoder(path, ins, outs)
			} else {
				r.io, err = classifyDecoder(path, ins, outs)
			}
			if err != nil {
				gs.Err = err.Error()
			}
		}
		graphs[g.role] = r
		gs.Inputs = tensorSpecs(ins, func(name string) string { return roleOf(m, r.io, true, name) })
		gs.Outputs = tensorSpecs(outs, func(name string) string { return roleOf(m, r.io, false, name) })
		spec.Graphs = append(spec.Graphs, gs)
	}

	switch m.Architecture {
	case models.ArchRNN:
		enc, step := graphs["encoder"], graphs["decoder"]
		if enc == nil || step == nil {
			spec.Err = "the encoder or the step graph cannot be read; see the graph errors"
			break
		}
		_, vocab, err := rnnLayoutOf(filepath.Base(m.Files.Encoder), filepath.Base(m.Files.Decoder), enc.ins, enc.outs, step.ins, step.outs, m.States, m.VocabSize)
		spec.Vocab = vocab
		if err != nil {
			spec.Err = err.Error()
		}
	case models.ArchTransformer:
		enc := graphs["encoder"]
		fallback := layout{heads: m.NumHeads, headDim: m.HeadDim, hidden: m.HiddenSize, vocab: m.VocabSize}
		// fresh re-classifies a graph: checkLayout may drop outputs.
		fresh := func(role string) *graphIO {
			r := graphs[role]
			if r == nil || r.io == nil {
				return nil
			}
			var g *graphIO
			var err error
			if role == "encoder" {
				g, err = classifyEncoder(r.io.file, r.ins, r.outs)
			} else {
				g, err = classifyDecoder(r.io.file, r.ins, r.outs)
			}
			if err != nil {
				return nil
			}
			return g
		}
		ok := map[string]bool{}
		add := func(choice string, first, step *graphIO, merged bool) {
			ls := LayoutSpec{Graphs: choice}
			if enc == nil || enc.io == nil || first == nil || step == nil {
				ls.Err = "a graph of this pair cannot be used; see the graph errors"
			} else if l, err := checkLayout(fresh("encoder"), first, step, merged, fallback); err != nil {
				ls.Err = err.Error()
			} else {
				ls.Layers, ls.Heads, ls.HeadDim, ls.Hidden, ls.Vocab = l.layers, l.heads, l.headDim, l.hidden, l.vocab
				ls.CrossCache, ls.MaskAtStep = l.cross, l.maskAtStep
				ok[choice] = true
			}
			spec.Layouts = append(spec.Layouts, ls)
		}
		if m.Files.Decoder != "" && m.Files.DecoderWithPast != "" {
			add(GraphsSplit, fresh("decoder"), fresh("decoder_with_past"), false)
		}
		if m.Files.DecoderMerged != "" {
			g := fresh("decoder_merged")
			add(GraphsMerged, g, g, true)
		}
		for provider, out := range map[string]*string{ProviderCPU: &spec.AutoCPU, ProviderCUDA: &spec.AutoCUDA} {
			choice := GraphsSplit
			if autoMerged(provider, ok[GraphsSplit], ok[GraphsMerged]) {
				choice = GraphsMerged
			}
			if ok[choice] {
				*out = choice
			}
		}
	}
	return spec, nil
}

// tensorSpecs describes graph inputs or outputs.
func tensorSpecs(infos []ort.InputOutputInfo, role func(string) string) []TensorSpec {
	out := make([]TensorSpec, 0, len(infos))
	for _, in := range infos {
		ts := TensorSpec{Name: in.Name, Role: role(in.Name)}
		if in.OrtValueType == ort.ONNXTypeTensor {
			ts.Type = elementType(in.DataType)
			ts.Shape = append([]int64(nil), in.Dimensions...)
		} else {
			ts.Type = strings.ToLower(strings.TrimPrefix(in.OrtValueType.String(), "ONNX_TYPE_"))
		}
		out = append(out, ts)
	}
	return out
}

// elementType names an ONNX tensor element type the way numpy does.
func elementType(t ort.TensorElementDataType) string {
	s := strings.ToLower(strings.TrimPrefix(t.String(), "ONNX_TENSOR_ELEMENT_DATA_TYPE_"))
	switch s {
	case "float":
		return "float32"
	case "double":
		return "float64"
	}
	return s
}

// roleOf says what the host does with a graph input (in) or output.
func roleOf(m *models.Manifest, g *graphIO, in bool, name string) string {
	if m.Architecture == models.ArchRNN {
		switch {
		case name == nameInputIDs:
			return "token ids"
		case name == nameAttentionMask:
			return "attention mask"
		case name == nameLogits && !in:
			return "logits"
		}
		for _, s := range m.States {
			kind := "per-source constant"
			if s.Carried {
				kind = "carried state, reordered with the beams"
			}
			switch {
			case in && s.Input == name:
				return fmt.Sprintf("state %s (%s, starts from %s)", s.Input, kind, s.Init)
			case !in && s.Output != "" && s.Output == name:
				return "next value of state " + s.Input
			case !in && s.Init == name:
				return "starts state " + s.Input
			}
		}
		return ""
	}
	if g == nil {
		return ""
	}
	names, slots := g.outNames, g.outs
	if in {
		names, slots = g.inNames, g.ins
	}
	for i, n := range names {
		if n != name {
			continue
		}
		s := slots[i]
		kv := map[int]string{0: "key", 1: "value"}[s.idx%2]
		switch s.kind {
		case slotIDs:
			return "token ids"
		case slotMask:
			return "attention mask"
		case slotHidden:
			return "encoder hidden states"
		case slotUseCache:
			return "use_cache_branch (false at the first step)"
		case slotSelf:
			return fmt.Sprintf("self-attention cache, layer %d %s", s.idx/2, kv)
		case slotCross:
			return fmt.Sprintf("cross-attention cache, layer %d %s", s.idx/2, kv)
		case slotLogits:
			return "logits"
		}
	}
	return ""
}
