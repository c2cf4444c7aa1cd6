package runtime

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/s2s-dev/s2s/models"
)

// testModels are the committed tiny random-weight Transformers under
// testdata/ at the repository root (made by testdata/make_testdata.sh).
var testModels = []string{"t5-tiny", "bart-tiny", "marian-tiny"}

// rnnModel is the shipped recurrent model (models/g2p-en, an LSTM with
// attention), the one model of that architecture in the repository.
const rnnModel = "g2p-en"

// inplaceModels are the same checkpoints exported in the inplace layout
// (our own decoder graphs), beside the Optimum ones.
var inplaceModels = []string{"t5-tiny-inplace", "bart-tiny-inplace", "marian-tiny-inplace"}

// allModels are the Transformers in both layouts and the recurrent model.
var allModels = append(append(append([]string(nil), testModels...), inplaceModels...), rnnModel)

// optimumTwin returns the Optimum-layout model of an inplace test model.
func optimumTwin(name string) string { return strings.TrimSuffix(name, "-inplace") }

// variants returns the decoder graph choices to test a model with: split
// and merged for a Transformer in Optimum's layout, the one step graph of
// the inplace layout and of a recurrent model.
func variants(name string) []string {
	if name == rnnModel || strings.HasSuffix(name, "-inplace") {
		return []string{GraphsAuto}
	}
	return []string{GraphsSplit, GraphsMerged}
}

// modelDir returns the directory of a committed test model.
func modelDir(name string) string {
	if name == rnnModel {
		return filepath.Join("..", "models", name)
	}
	return filepath.Join("..", "testdata", name)
}

// mustInit loads ONNX Runtime the way users find it; a missing library
// fails the test (it is never skipped).
func mustInit(t testing.TB) {
	t.Helper()
	if _, err := Init(""); err != nil {
		t.Fatalf("ONNX Runtime is needed for these tests: %v", err)
	}
}

// testOptions keeps the tests light on the shared cores.
func testOptions(graphs string) Options {
	return Options{IntraOpThreads: 1, InterOpThreads: 1, DecoderGraphs: graphs}
}

// openModel loads a committed test model with the given decoder graphs,
// for the caller alone; it is closed when the test ends.
func openModel(t testing.TB, name, graphs string) (*models.Manifest, *Model) {
	t.Helper()
	man, m := readModel(t, name, graphs)
	t.Cleanup(func() { m.Close() })
	return man, m
}

// readModel reads and loads a committed test model; the caller closes it.
func readModel(t testing.TB, name, graphs string) (*models.Manifest, *Model) {
	t.Helper()
	mustInit(t)
	man, err := models.Load(modelDir(name))
	if err != nil {
		t.Fatalf("reading test model %s: %v", name, err)
	}
	m, err := Load(man, testOptions(graphs))
	if err != nil {
		t.Fatalf("loading test model %s (%s): %v", name, graphs, err)
	}
	return man, m
}

// shared holds the models loadModel loaded, closed by TestMain.
var shared = map[string]struct {
	man *models.Manifest
	m   *Model
}{}

// loadModel returns a committed test model with the given decoder graphs,
// loaded once for all tests (which must not close it).
func loadModel(t testing.TB, name, graphs string) (*models.Manifest, *Model) {
	t.Helper()
	key := name + "/" + graphs
	if s, ok := shared[key]; ok {
		return s.man, s.m
	}
	man, m := readModel(t, name, graphs)
	shared[key] = struct {
		man *models.Manifest
		m   *Model
	}{man, m}
	return man, m
}

func TestMain(m *testing.M) {
	code := m.Run()
	for _, s := range shared {
		s.m.Close()
	}
	os.Exit(code)
}

// sources returns test inputs of different lengths, each ending in eos,
// with ids inside the model's vocabulary.
func sources(man *models.Manifest) [][]int64 {
	eos := man.EOSTokenIDs[0]
	v := int64(min(man.VocabSize, 28)) // inside the smallest source vocabulary (g2p-en's 30 characters)
	id := func(i int64) int64 { return 3 + (i*7)%(v-4) }
	return [][]int64{
		{id(1), id(2), id(3), id(4), id(5), eos},
		{id(6), id(7), eos},
		{id(8), id(9), id(10), id(11), eos},
	}
}

// argmax returns the index of the largest value of row.
func argmax(row []float32) int64 {
	best := 0
	for i, x := range row {
		if x > row[best] {
			best = i
		}
	}
	return int64(best)
}

// maxDiff returns the largest absolute difference of a and b (Inf when
// their lengths differ or a value is NaN).
func maxDiff(a, b []float32) float64 {
	if len(a) != len(b) {
		return math.Inf(1)
	}
	d := 0.0
	for i := range a {
		x := math.Abs(float64(a[i]) - float64(b[i]))
		if math.IsNaN(x) {
			return math.Inf(1)
		}
		d = max(d, x)
	}
	return d
}

// run feeds tokens[t] at step t to d and returns a copy of each step's
// logits.
func run(t testing.TB, d Decoder, tokens [][]int64) [][]float32 {
	t.Helper()
	var out [][]float32
	for step, tok := range tokens {
		logits, err := d.Step(context.Background(), tok)
		if err != nil {
			t.Fatalf("step %d: %v", step, err)
		}
		out = append(out, append([]float32(nil), logits...))
	}
	return out
}
