package runtime

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/s2s-dev/s2s/models"
)

func TestInspect(t *testing.T) {
	mustInit(t)
	for _, name := range testModels {
		t.Run(name, func(t *testing.T) {
			man, err := models.Load(modelDir(name))
			if err != nil {
				t.Fatal(err)
			}
			spec, err := Inspect(man, "")
			if err != nil {
				t.Fatal(err)
			}
			if len(spec.Graphs) != 4 {
				t.Fatalf("%d graphs, want encoder, decoder, decoder_with_past and decoder_merged", len(spec.Graphs))
			}
			for _, g := range spec.Graphs {
				if g.Err != "" || g.Size == 0 || len(g.Inputs) == 0 || len(g.Outputs) == 0 {
					t.Errorf("graph %+v", g)
				}
			}
			roles := map[string]string{}
			for _, in := range spec.Graphs[2].Inputs {
				roles[in.Name] = in.Role
			}
			if roles["input_ids"] != "token ids" || roles["past_key_values.0.decoder.key"] != "self-attention cache, layer 0 key" {
				t.Errorf("decoder_with_past roles %v", roles)
			}
			if len(spec.Layouts) != 2 {
				t.Fatalf("layouts %+v, want split and merged", spec.Layouts)
			}
			// The same layout Load detects.
			_, m := loadModel(t, name, GraphsSplit)
			for _, l := range spec.Layouts {
				if l.Err != "" || l.Layers != m.Layers() || l.Vocab != m.VocabSize() || l.Heads == 0 || l.HeadDim == 0 {
					t.Errorf("layout %+v; Load has %d layers, vocabulary %d", l, m.Layers(), m.VocabSize())
				}
			}
			if spec.AutoCPU != GraphsMerged || spec.AutoCUDA != GraphsSplit {
				t.Errorf("auto picks %s on the CPU and %s on CUDA, want merged and split", spec.AutoCPU, spec.AutoCUDA)
			}
		})
	}
	t.Run(rnnModel, func(t *testing.T) {
		man, err := models.Load(modelDir(rnnModel))
		if err != nil {
			t.Fatal(err)
		}
		spec, err := Inspect(man, "")
		if err != nil || spec.Err != "" || spec.Vocab != man.VocabSize || len(spec.Graphs) != 2 {
			t.Fatalf("%+v, %v", spec, err)
		}
		found := false
		for _, in := range spec.Graphs[1].Inputs {
			if in.Name == "h" {
				found = strings.Contains(in.Role, "carried state") && strings.Contains(in.Role, "init_h")
			}
		}
		if !found {
			t.Errorf("decoder input h is not described as a carried state: %+v", spec.Graphs[1].Inputs)
		}
	})
	t.Run("a random-bytes graph", func(t *testing.T) {
		dir := t.TempDir()
		src := modelDir("t5-tiny")
		entries, _ := os.ReadDir(src)
		for _, e := range entries {
			data, _ := os.ReadFile(filepath.Join(src, e.Name()))
			if e.Name() == "decoder_with_past_model.onnx" {
				data = []byte("not an onnx graph")
			}
			os.WriteFile(filepath.Join(dir, e.Name()), data, 0o644)
		}
		man, err := models.Load(dir)
		if err != nil {
			t.Fatal(err)
		}
		spec, err := Inspect(man, "")
		if err != nil {
			t.Fatal(err)
		}
		if spec.Graphs[2].Err == "" || spec.Layouts[0].Err == "" || spec.Layouts[1].Err != "" {
			t.Fatalf("a broken decoder_with_past should mark it and the split pair only: %+v", spec)
		}
		if spec.AutoCPU != GraphsMerged || spec.AutoCUDA != GraphsMerged {
			t.Errorf("auto should fall back to the merged graph: %s, %s", spec.AutoCPU, spec.AutoCUDA)
		}
	})
}
