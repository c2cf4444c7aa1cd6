package runtime

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/s2s-dev/s2s/models"
)

func TestRNNLayout(t *testing.T) {
	man, m := loadModel(t, rnnModel, GraphsAuto)
	rl := m.rnn
	if rl == nil {
		t.Fatal("the recurrent model loaded without its recurrent layout")
	}
	if m.VocabSize() != man.VocabSize {
		t.Errorf("VocabSize() = %d, want %d", m.VocabSize(), man.VocabSize)
	}
	if len(rl.states) != len(man.States) {
		t.Fatalf("%d states, want %d", len(rl.states), len(man.States))
	}
	var carried, outs []string
	for _, st := range rl.states {
		if st.carried {
			carried = append(carried, st.input)
		}
	}
	for _, e := range rl.encOut {
		outs = append(outs, e.name)
	}
	if !slices.Equal(carried, []string{"h", "c", "feed"}) {
		t.Errorf("carried states %v", carried)
	}
	if !slices.Equal(outs, []string{"init_h", "init_c", "init_feed", "memory", "memory_keys", "memory_mask"}) {
		t.Errorf("encoder outputs run: %v", outs)
	}
	// memory holds both directions of the bidirectional encoder: its last
	// axis is static, twice config.json's encoder_hidden (an ensemble's
	// memory is its members' side by side: twice their sum).
	type sizes struct {
		EncoderHidden int64 `json:"encoder_hidden"`
	}
	var cfg struct {
		Model struct {
			sizes
			Members []sizes `json:"members"`
		} `json:"model"`
	}
	data, err := os.ReadFile(filepath.Join(man.Dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &cfg); err != nil {
		t.Fatalf("config.json: %v", err)
	}
	hidden := cfg.Model.EncoderHidden
	for _, m := range cfg.Model.Members {
		hidden += m.EncoderHidden
	}
	if hidden <= 0 {
		t.Fatalf("config.json gives no model.encoder_hidden (nor members' encoder_hidden)")
	}
	want := 2 * hidden
	for _, e := range rl.encOut {
		if e.name == "memory" && (len(e.dims) != 3 || e.dims[2] != want) {
			t.Errorf("memory dims %v, want [-1 -1 %d]", e.dims, want)
		}
	}
}

func TestRNNLayoutErrors(t *testing.T) {
	encIns := []ort.InputOutputInfo{info("input_ids", i64, -1, -1), info("attention_mask", i64, -1, -1)}
	encOuts := []ort.InputOutputInfo{info("memory", f32, -1, -1, 24), info("init_h", f32, -1, 2, 20)}
	stepIns := []ort.InputOutputInfo{info("input_ids", i64, -1, 1), info("h", f32, -1, 2, 20), info("memory", f32, -1, -1, 24)}
	stepOuts := []ort.InputOutputInfo{info("logits", f32, -1, 1, 43), info("next_h", f32, -1, 2, 20)}
	good := []models.State{
		{Input: "h", Output: "next_h", Init: "init_h", Carried: true},
		{Input: "memory", Init: "memory"},
	}
	if _, v, err := rnnLayoutOf("enc", "step", encIns, encOuts, stepIns, stepOuts, good, 0); err != nil || v != 43 {
		t.Fatalf("good layout: vocab %d, %v", v, err)
	}
	with := func(f func(s []models.State)) []models.State {
		s := slices.Clone(good)
		f(s)
		return s
	}
	tests := []struct {
		name    string
		states  []models.State
		stepIns []ort.InputOutputInfo
		encOuts []ort.InputOutputInfo
		want    string
	}{
		{"state the step graph lacks", with(func(s []models.State) { s[0].Input = "hx" }), stepIns, encOuts, `no input "hx"`},
		{"init the encoder lacks", with(func(s []models.State) { s[1].Init = "mem" }), stepIns, encOuts, `no output "mem"`},
		{"carried without output", with(func(s []models.State) { s[0].Output = "" }), stepIns, encOuts, `carried state "h" has no step graph output`},
		{"batch axis out of range", with(func(s []models.State) { s[0].BatchAxis = 3 }), stepIns, encOuts, "batch_axis 3"},
		{"state listed twice", append(slices.Clone(good), good[1]), stepIns, encOuts, "twice"},
		{"unlisted step input", good, append(slices.Clone(stepIns), info("coverage", f32, -1, -1)), encOuts, `input "coverage" is neither`},
		{"sizes disagree", good, stepIns, []ort.InputOutputInfo{info("memory", f32, -1, -1, 32), encOuts[1]}, "size 24 on axis 2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := rnnLayoutOf("enc", "step", encIns, tc.encOuts, tc.stepIns, stepOuts, tc.states, 0)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestRNNGatherOnAnotherAxis(t *testing.T) {
	mustInit(t)
	// A [layers=2, batch, hidden=3] state, as PyTorch's LSTM lays it out.
	b := rnnBuffer{shape: rnnTensor{dims: []int64{2, -1, 3}, axis: 1}}
	defer b.close()
	for side := range 2 {
		if err := b.remake(side, 2, 0); err != nil {
			t.Fatal(err)
		}
	}
	copy(b.data[0], []float32{
		0, 0, 0, 1, 1, 1, // layer 0: rows 0, 1
		10, 10, 10, 11, 11, 11, // layer 1: rows 0, 1
	})
	if err := b.remake(1, 3, 0); err != nil {
		t.Fatal(err)
	}
	b.gather(1, 0, []int{1, 0, 1}, 2, 0)
	want := []float32{1, 1, 1, 0, 0, 0, 1, 1, 1, 11, 11, 11, 10, 10, 10, 11, 11, 11}
	if got := b.data[1][:18]; !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	if shape := b.t[1].GetShape(); !slices.Equal([]int64(shape), []int64{2, 3, 3}) {
		t.Fatalf("header shape %v", shape)
	}
}
