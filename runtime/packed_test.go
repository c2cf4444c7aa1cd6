package runtime

import (
	"context"
	"errors"
	"math"
	"os"
	goruntime "runtime"
	"slices"
	"sync"
	"testing"

	"github.com/s2s-dev/s2s/beamsearch"
	"github.com/s2s-dev/s2s/models"
)

// packedFile returns the packed form of a committed test model: the
// directory packed by `python -m s2s_export pack` (testdata/make_testdata.sh
// pack; models/g2p-en.onnx).
func packedFile(name string) string { return modelDir(name) + ".onnx" }

// openPacked loads the packed form of a committed test model, from its file
// or (fromBytes) from memory; it is closed when the test ends.
func openPacked(t testing.TB, name string, fromBytes bool) (*models.Packed, *Model) {
	t.Helper()
	mustInit(t)
	var p *models.Packed
	var err error
	if fromBytes {
		data, rerr := os.ReadFile(packedFile(name))
		if rerr != nil {
			t.Fatal(rerr)
		}
		p, err = models.ReadPacked(data)
	} else {
		p, err = models.ReadPackedFile(packedFile(name))
	}
	if err != nil {
		t.Fatalf("reading %s: %v", packedFile(name), err)
	}
	m, err := LoadPacked(p, testOptions(GraphsAuto))
	if err != nil {
		t.Fatalf("loading %s: %v", packedFile(name), err)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return p, m
}

// stepsWithReorder feeds tokens to d, reordering the rows as a beam search
// would between steps 1 and 2 (row 0 continued twice, the last row dropped),
// and returns each step's logits.
func stepsWithReorder(t *testing.T, d Decoder, man *models.Manifest, rows int) [][]float32 {
	t.Helper()
	var out [][]float32
	for s := range 5 {
		if s == 2 {
			src := []int{0, 0}
			for r := 1; r < rows-1; r++ {
				src = append(src, r)
			}
			if err := d.Reorder(src); err != nil {
				t.Fatal(err)
			}
			rows = len(src)
		}
		tok := make([]int64, rows)
		for r := range tok {
			tok[r] = forced(man, r, s)
		}
		logits, err := d.Step(t.Context(), tok)
		if err != nil {
			t.Fatalf("step %d: %v", s, err)
		}
		out = append(out, slices.Clone(logits))
	}
	return out
}

// packedModels are the test models with a packed file (the inplace layout
// stays a directory: pack refuses it).
var packedModels = append(append([]string(nil), testModels...), rnnModel)

// TestPackedMatchesDirectory runs every committed model's packed file, from
// the file and from memory, against its directory: the same logits at
// every step, through a reorder (within 1e-5: the parts went through ONNX
// Runtime's basic optimizations, which may order float operations
// differently).
func TestPackedMatchesDirectory(t *testing.T) {
	for _, name := range packedModels {
		for _, fromBytes := range []bool{false, true} {
			label := name + "/file"
			if fromBytes {
				label = name + "/bytes"
			}
			t.Run(label, func(t *testing.T) {
				man, dir := loadModel(t, name, variants(name)[0])
				p, packed := openPacked(t, name, fromBytes)
				if packed.VocabSize() != dir.VocabSize() || packed.Layers() != dir.Layers() || packed.Merged() {
					t.Fatalf("packed: vocab %d, %d layers, merged %v; directory: %d, %d", packed.VocabSize(), packed.Layers(), packed.Merged(), dir.VocabSize(), dir.Layers())
				}
				if p.Manifest.VocabSize != man.VocabSize || !slices.Equal(p.Manifest.EOSTokenIDs, man.EOSTokenIDs) {
					t.Fatalf("packed manifest %+v differs from the directory's %+v", p.Manifest, man)
				}
				src := sources(man)
				want := stepsWithReorder(t, encode(t, dir, man, src), man, len(src))
				got := stepsWithReorder(t, encode(t, packed, man, src), man, len(src))
				worst := 0.0
				for s := range want {
					d := maxDiff(got[s], want[s])
					if d > 1e-5 {
						t.Fatalf("step %d: packed logits differ from the directory's by %g", s, d)
					}
					worst = max(worst, d)
				}
				t.Logf("largest difference %g", worst)
			})
		}
	}
}

// TestPackedSearchMatchesDirectory runs greedy and beam search on each
// model's packed file and directory: the same sequences and scores.
func TestPackedSearchMatchesDirectory(t *testing.T) {
	for _, name := range packedModels {
		t.Run(name, func(t *testing.T) {
			man, dir := loadModel(t, name, variants(name)[0])
			_, packed := openPacked(t, name, false)
			src := sources(man)
			for _, beams := range []int{1, 4} {
				opts := man.Options(nil)
				opts.NumBeams, opts.NumReturnSequences, opts.MaxNewTokens = beams, beams, 12
				gen := func(m *Model) []beamsearch.Result {
					d, err := m.Encode(t.Context(), src, man.PadTokenID)
					if err != nil {
						t.Fatal(err)
					}
					defer d.Close()
					res, err := beamsearch.Generate(t.Context(), d, len(src), opts, nil)
					if err != nil {
						t.Fatalf("beams %d: %v", beams, err)
					}
					return res
				}
				want, got := gen(dir), gen(packed)
				for i := range want {
					for k, w := range want[i].Sequences {
						g := got[i].Sequences[k]
						if !slices.Equal(g.Tokens, w.Tokens) || math.Abs(g.Score-w.Score) > 1e-5 {
							t.Fatalf("beams %d, input %d, sequence %d: packed %v (%.9f), directory %v (%.9f)", beams, i, k, g.Tokens, g.Score, w.Tokens, w.Score)
						}
					}
				}
			}
		})
	}
}

// TestPackedConcurrentDecoders runs decoders of one packed model from
// several goroutines (the parts share one session and its empty tensors).
func TestPackedConcurrentDecoders(t *testing.T) {
	man, dir := loadModel(t, "bart-tiny", GraphsSplit)
	_, packed := openPacked(t, "bart-tiny", false)
	src := sources(man)
	tokens := forcedSteps(man, len(src), 6)
	want := run(t, encode(t, dir, man, src), tokens)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d, err := packed.Encode(context.Background(), src, man.PadTokenID)
			if err != nil {
				errs <- err
				return
			}
			defer d.Close()
			for s, tok := range tokens {
				logits, err := d.Step(context.Background(), tok)
				if err != nil {
					errs <- err
					return
				}
				if maxDiff(logits, want[s]) > 1e-5 {
					errs <- errors.New("concurrent packed logits differ from the directory's")
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// TestPackedTraceReplays records a packed model's runs and replays them.
func TestPackedTraceReplays(t *testing.T) {
	for _, name := range []string{"t5-tiny", rnnModel} {
		t.Run(name, func(t *testing.T) {
			p, m := openPacked(t, name, true)
			tr := &Trace{}
			m.SetTrace(tr)
			d := encode(t, m, p.Manifest, sources(p.Manifest))
			run(t, d, forcedSteps(p.Manifest, d.Rows(), 3))
			m.SetTrace(nil)
			calls := tr.Calls()
			if len(calls) != 4 || calls[0].Graph != "packed model:encoder" {
				t.Fatalf("%d calls, the first of %q; want 4, the first of the encoder part", len(calls), calls[0].Graph)
			}
			if _, err := tr.Replay(t.Context(), m, 1); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestPackedClose checks that a packed model closes once, refuses work
// after, and that LoadPacked refuses what it cannot load.
func TestPackedClose(t *testing.T) {
	mustInit(t)
	p, err := models.ReadPackedFile(packedFile("t5-tiny"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := LoadPacked(p, testOptions(GraphsAuto))
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	if _, err := m.Encode(t.Context(), sources(p.Manifest), p.Manifest.PadTokenID); !errors.Is(err, ErrClosed) {
		t.Fatalf("encode after close: %v", err)
	}
	if _, err := LoadPacked(nil, Options{}); err == nil {
		t.Fatal("LoadPacked(nil) loaded")
	}
	// A part the manifest names but whose outputs lack what the runtime
	// takes: the layout check refuses it.
	bad := *p
	bad.Parts = slices.Clone(p.Parts)
	for i := range bad.Parts {
		if bad.Parts[i].Name == "decoder_with_past" {
			bad.Parts[i].Outputs = []string{"logits"}
		}
	}
	if _, err := LoadPacked(&bad, testOptions(GraphsAuto)); err == nil {
		t.Fatal("a decoder_with_past part without present outputs loaded")
	} else {
		t.Log(err)
	}
}

// TestPackedMemoryFlat runs 400 short generations on packed models
// (from bytes): the Go heap and the RSS stay flat, as for a directory
// (TestMemoryFlat): the per-run argument lists come from a pool and the
// shared empty tensors are made once.
func TestPackedMemoryFlat(t *testing.T) {
	const warmup, runs = 100, 400
	const heapBound, rssBound = 1 << 20, 4 << 20
	for _, name := range []string{testModels[0], rnnModel} {
		t.Run(name, func(t *testing.T) {
			goruntime.LockOSThread()
			defer goruntime.UnlockOSThread()
			p, m := openPacked(t, name, true)
			src := sources(p.Manifest)[:2]
			for range warmup {
				shortGeneration(t, m, p.Manifest, src)
			}
			heap0, rss0 := heap(), rss(t)
			for range runs {
				shortGeneration(t, m, p.Manifest, src)
			}
			heap1, rss1 := heap(), rss(t)
			t.Logf("%d generations: Go heap %d -> %d bytes (%+d), RSS %d -> %d KiB (%+d KiB)",
				runs, heap0, heap1, heap1-heap0, rss0>>10, rss1>>10, (rss1-rss0)>>10)
			if heap1-heap0 > heapBound {
				t.Errorf("the Go heap grew by %d bytes over %d generations (bound %d)", heap1-heap0, runs, heapBound)
			}
			if rss1-rss0 > rssBound {
				t.Errorf("RSS grew by %d KiB over %d generations (bound %d KiB)", (rss1-rss0)>>10, runs, rssBound>>10)
			}
		})
	}
}
