package runtime

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// goldenRun is a reference run written by testdata/golden.py: Python
// onnxruntime running the split graphs by the documented protocol.
type goldenRun struct {
	Model      string        `json:"model"`
	PadTokenID int64         `json:"pad_token_id"`
	Inputs     [][]int64     `json:"inputs"`
	Tokens     [][]int64     `json:"tokens"`
	Logits     [][][]float32 `json:"logits"` // [step][row][vocab]
}

func TestGolden(t *testing.T) {
	for _, name := range testModels {
		for _, graphs := range []string{GraphsSplit, GraphsMerged} {
			t.Run(name+"/"+graphs, func(t *testing.T) {
				data, err := os.ReadFile(filepath.Join("testdata", "golden", name+".json"))
				if err != nil {
					t.Fatalf("%v; run runtime/testdata/golden.py on the test models", err)
				}
				var g goldenRun
				if err := json.Unmarshal(data, &g); err != nil {
					t.Fatal(err)
				}
				man, m := loadModel(t, name, graphs)
				d, err := m.Encode(t.Context(), g.Inputs, g.PadTokenID)
				if err != nil {
					t.Fatal(err)
				}
				defer d.Close()
				if len(g.Tokens) == 0 || len(g.Tokens) != len(g.Logits) {
					t.Fatalf("golden file has %d steps of tokens and %d of logits", len(g.Tokens), len(g.Logits))
				}
				got := run(t, d, g.Tokens)
				for s := range got {
					var want []float32
					for _, row := range g.Logits[s] {
						want = append(want, row...)
					}
					if len(want) != len(g.Inputs)*man.VocabSize {
						t.Fatalf("step %d: golden logits have %d values, want %d; regenerate them", s, len(want), len(g.Inputs)*man.VocabSize)
					}
					if diff := maxDiff(got[s], want); diff > 1e-4 {
						t.Fatalf("step %d: logits differ from onnxruntime's reference by %g", s, diff)
					}
				}
			})
		}
	}
}
