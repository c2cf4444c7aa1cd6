package runtime

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	ort "github.com/yalue/onnxruntime_go"
)

func TestLayoutDiscovery(t *testing.T) {
	for _, name := range testModels {
		for _, graphs := range []string{GraphsSplit, GraphsMerged} {
			t.Run(name+"/"+graphs, func(t *testing.T) {
				man, m := loadModel(t, name, graphs)
				l := m.lay
				if l.layers != man.NumLayers || l.heads != man.NumHeads || l.headDim != man.HeadDim ||
					l.hidden != man.HiddenSize || l.vocab != man.VocabSize {
					t.Fatalf("layout %+v does not match the manifest (layers %d, heads %d, head_dim %d, hidden %d, vocab %d)",
						l, man.NumLayers, man.NumHeads, man.HeadDim, man.HiddenSize, man.VocabSize)
				}
				if m.VocabSize() != man.VocabSize {
					t.Errorf("VocabSize() = %d, want %d", m.VocabSize(), man.VocabSize)
				}
				if m.Merged() != (graphs == GraphsMerged) {
					t.Errorf("Merged() = %v for %s", m.Merged(), graphs)
				}
				if !l.cross || !l.maskAtStep || !l.maskAtFirst || !l.hiddenAtFirst {
					t.Errorf("layout %+v: the Optimum graphs take the cross cache and the mask at every step", l)
				}
				// Optimum's decoder_with_past has no encoder_hidden_states
				// (pruned); the merged graph has one but ignores it.
				if l.hiddenAtStep {
					t.Errorf("the step graph should not need encoder_hidden_states")
				}
				if graphs == GraphsSplit && m.step.io.has(slotHidden) {
					t.Errorf("decoder_with_past_model.onnx was expected to lack encoder_hidden_states")
				}
				if graphs == GraphsMerged && !m.step.io.has(slotUseCache) {
					t.Errorf("the merged graph should take use_cache_branch")
				}
				if got := len(m.first.io.cacheIndexes(slotCross, false)); got != 2*l.layers {
					t.Errorf("first-step graph gives %d cross tensors, want %d", got, 2*l.layers)
				}
			})
		}
	}
}

func TestLoadChoosesGraphs(t *testing.T) {
	man, m := loadModel(t, testModels[0], GraphsAuto)
	if !m.Merged() {
		t.Errorf("auto on the CPU with both layouts present should run the merged graph")
	}
	onlySplit := *man
	onlySplit.Files.DecoderMerged = ""
	m1, err := Load(&onlySplit, testOptions(GraphsAuto))
	if err != nil {
		t.Fatal(err)
	}
	defer m1.Close()
	if m1.Merged() {
		t.Errorf("auto with only the split graphs should run them")
	}
	for _, c := range []struct {
		provider            string
		hasSplit, hasMerged bool
		want                bool
	}{
		{ProviderCPU, true, true, true}, {ProviderCPU, true, false, false}, {ProviderCPU, false, true, true},
		{ProviderCUDA, true, true, false}, {ProviderCUDA, true, false, false}, {ProviderCUDA, false, true, true},
	} {
		if got := autoMerged(c.provider, c.hasSplit, c.hasMerged); got != c.want {
			t.Errorf("autoMerged(%s, split %v, merged %v) = %v, want %v", c.provider, c.hasSplit, c.hasMerged, got, c.want)
		}
	}
	onlyMerged := *man
	onlyMerged.Files.Decoder, onlyMerged.Files.DecoderWithPast = "", ""
	m2, err := Load(&onlyMerged, testOptions(GraphsAuto))
	if err != nil {
		t.Fatal(err)
	}
	defer m2.Close()
	if !m2.Merged() {
		t.Errorf("auto with only the merged graph should run it")
	}
	if _, err := Load(&onlyMerged, testOptions(GraphsSplit)); err == nil || !strings.Contains(err.Error(), "decoder graphs \"split\" asked for") {
		t.Errorf("split without split graphs: got %v", err)
	}
	noMerged := *man
	noMerged.Files.DecoderMerged = ""
	if _, err := Load(&noMerged, testOptions(GraphsMerged)); err == nil || !strings.Contains(err.Error(), "decoder graphs \"merged\" asked for") {
		t.Errorf("merged without merged graph: got %v", err)
	}
	other := *man
	other.Architecture = "lstm"
	if _, err := Load(&other, testOptions(GraphsAuto)); err == nil || !strings.Contains(err.Error(), "not served") {
		t.Errorf("unknown architecture: got %v", err)
	}
	rnn := *man
	rnn.Architecture = "rnn"
	if _, err := Load(&rnn, testOptions(GraphsAuto)); err == nil || !strings.Contains(err.Error(), "\"states\"") {
		t.Errorf("rnn without states: got %v", err)
	}
	if _, err := Load(nil, Options{}); err == nil {
		t.Errorf("nil manifest: no error")
	}
	if _, err := Load(man, Options{Provider: "tpu"}); err == nil || !strings.Contains(err.Error(), "provider") {
		t.Errorf("bad options: got %v", err)
	}
	swapped := *man
	swapped.Files.Encoder = man.Files.Decoder
	if _, err := Load(&swapped, testOptions(GraphsAuto)); err == nil || !strings.Contains(err.Error(), "re-export") {
		t.Errorf("decoder given as encoder: got %v", err)
	}
}

func TestLoadCUDAWithoutCUDA(t *testing.T) {
	man, _ := loadModel(t, testModels[0], GraphsAuto)
	opts := testOptions(GraphsAuto)
	opts.Provider = ProviderCUDA
	m, err := Load(man, opts)
	if err == nil {
		m.Close()
		t.Fatal("provider cuda loaded from a CPU-only ONNX Runtime")
	}
	if !errors.Is(err, ErrNoCUDA) || !strings.Contains(err.Error(), "runtime: this ONNX Runtime has no CUDA execution provider; ") {
		t.Fatalf("got %v, want ErrNoCUDA", err)
	}
}

func TestCheckCUDAFiles(t *testing.T) {
	dir := t.TempDir()
	lib := dir + "/libonnxruntime.so.1"
	if err := checkCUDAFiles(lib); !errors.Is(err, ErrNoCUDA) {
		t.Fatalf("empty directory: got %v, want ErrNoCUDA", err)
	}
	for _, f := range cudaProviderFiles {
		if err := os.WriteFile(dir+"/"+f, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := checkCUDAFiles(lib); err != nil {
		t.Fatalf("with the provider files: %v", err)
	}
}

// info describes a tensor input or output for the synthetic layout tests.
func info(name string, dt ort.TensorElementDataType, dims ...int64) ort.InputOutputInfo {
	return ort.InputOutputInfo{Name: name, OrtValueType: ort.ONNXTypeTensor, DataType: dt, Dimensions: dims}
}

const (
	f32 = ort.TensorElementDataTypeFloat
	i64 = ort.TensorElementDataTypeInt64
)

// kv lists the names of the cache tensors of prefix ("past_key_values" or
// "present") of the given kind ("decoder" or "encoder") for layers.
func kv(prefix, kind string, layers int) []ort.InputOutputInfo {
	var out []ort.InputOutputInfo
	for i := range layers {
		for _, k := range []string{"key", "value"} {
			out = append(out, info(fmt.Sprintf("%s.%d.%s.%s", prefix, i, kind, k), f32, -1, 4, -1, 8))
		}
	}
	return out
}

func cat(parts ...[]ort.InputOutputInfo) []ort.InputOutputInfo {
	var out []ort.InputOutputInfo
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func TestLayoutSynthetic(t *testing.T) {
	ids, mask := info("input_ids", i64, -1, -1), info("encoder_attention_mask", i64, -1, -1)
	hidden := info("encoder_hidden_states", f32, -1, -1, 32)
	logits := []ort.InputOutputInfo{info("logits", f32, -1, -1, 96)}
	enc, err := classifyEncoder("encoder_model.onnx",
		[]ort.InputOutputInfo{info("input_ids", i64, -1, -1), info("attention_mask", i64, -1, -1)},
		[]ort.InputOutputInfo{info("last_hidden_state", f32, -1, -1, 32)})
	if err != nil {
		t.Fatal(err)
	}
	one := func(x ort.InputOutputInfo) []ort.InputOutputInfo { return []ort.InputOutputInfo{x} }
	tests := []struct {
		name     string
		firstIn  []ort.InputOutputInfo
		firstOut []ort.InputOutputInfo
		stepIn   []ort.InputOutputInfo
		stepOut  []ort.InputOutputInfo
		want     string // error text, "" for none
		check    func(t *testing.T, l layout, first *graphIO)
	}{
		{
			name:     "optimum split (with-past lacks encoder_hidden_states)",
			firstIn:  []ort.InputOutputInfo{mask, ids, hidden},
			firstOut: cat(logits, kv("present", "decoder", 2), kv("present", "encoder", 2)),
			stepIn:   cat(one(mask), one(ids), kv("past_key_values", "decoder", 2), kv("past_key_values", "encoder", 2)),
			stepOut:  cat(logits, kv("present", "decoder", 2)),
			check: func(t *testing.T, l layout, _ *graphIO) {
				if l.layers != 2 || l.heads != 4 || l.headDim != 8 || l.vocab != 96 || l.hidden != 32 || !l.cross || l.hiddenAtStep {
					t.Errorf("layout %+v", l)
				}
			},
		},
		{
			name:     "step recomputes cross attention from the hidden states",
			firstIn:  []ort.InputOutputInfo{ids, hidden},
			firstOut: cat(logits, kv("present", "decoder", 3), kv("present", "encoder", 3)),
			stepIn:   cat(one(ids), one(hidden), kv("past_key_values", "decoder", 3)),
			stepOut:  cat(logits, kv("present", "decoder", 3)),
			check: func(t *testing.T, l layout, first *graphIO) {
				if l.layers != 3 || l.cross || !l.hiddenAtStep || l.maskAtStep || l.maskAtFirst {
					t.Errorf("layout %+v", l)
				}
				if first.outputs(slotCross) {
					t.Errorf("unused present.*.encoder outputs were kept in the first step's run")
				}
			},
		},
		{
			name:     "step takes no cache",
			firstIn:  []ort.InputOutputInfo{ids, hidden},
			firstOut: cat(logits, kv("present", "decoder", 2)),
			stepIn:   []ort.InputOutputInfo{ids, hidden},
			stepOut:  logits,
			want:     "cannot continue from a cache",
		},
		{
			name:     "a layer missing",
			firstIn:  []ort.InputOutputInfo{ids, hidden},
			firstOut: cat(logits, kv("present", "decoder", 2), kv("present", "encoder", 2)),
			stepIn:   cat(one(ids), kv("past_key_values", "decoder", 3)[:2], kv("past_key_values", "decoder", 3)[4:], kv("past_key_values", "encoder", 2)),
			stepOut:  cat(logits, kv("present", "decoder", 2)),
			want:     "do not cover layers",
		},
		{
			name:     "first step gives no cross cache",
			firstIn:  []ort.InputOutputInfo{ids, hidden},
			firstOut: cat(logits, kv("present", "decoder", 2)),
			stepIn:   cat(one(ids), kv("past_key_values", "decoder", 2), kv("past_key_values", "encoder", 2)),
			stepOut:  cat(logits, kv("present", "decoder", 2)),
			want:     "does not output the present.*.encoder",
		},
		{
			name:     "step sees no input",
			firstIn:  []ort.InputOutputInfo{ids, hidden},
			firstOut: cat(logits, kv("present", "decoder", 2)),
			stepIn:   cat(one(ids), kv("past_key_values", "decoder", 2)),
			stepOut:  cat(logits, kv("present", "decoder", 2)),
			want:     "cannot see the input",
		},
		{
			name:     "vocabularies differ",
			firstIn:  []ort.InputOutputInfo{ids, hidden},
			firstOut: cat(one(info("logits", f32, -1, -1, 95)), kv("present", "decoder", 2), kv("present", "encoder", 2)),
			stepIn:   cat(one(ids), kv("past_key_values", "decoder", 2), kv("past_key_values", "encoder", 2)),
			stepOut:  cat(logits, kv("present", "decoder", 2)),
			want:     "different models",
		},
		{
			name:    "unknown input",
			firstIn: []ort.InputOutputInfo{ids, hidden, info("decoder_position_ids", i64, -1, -1)},
			want:    `input "decoder_position_ids" is not one the runtime can feed`,
		},
		{
			name:    "float16 cache",
			firstIn: []ort.InputOutputInfo{ids, info("encoder_hidden_states", ort.TensorElementDataTypeFloat16, -1, -1, 32)},
			want:    "re-export the model in float32",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			first, err := classifyDecoder("decoder_model.onnx", tc.firstIn, tc.firstOut)
			var l layout
			if err == nil {
				var step *graphIO
				step, err = classifyDecoder("decoder_with_past_model.onnx", tc.stepIn, tc.stepOut)
				if err == nil {
					l, err = checkLayout(enc, first, step, false, layout{})
				}
			}
			if tc.want != "" {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("got %v, want an error containing %q", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, l, first)
		})
	}
}
