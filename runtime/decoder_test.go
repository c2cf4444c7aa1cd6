package runtime

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/s2s-dev/s2s/models"
)

// forced returns the token row r feeds at step s: the start token first,
// then ids that differ by row and step.
func forced(man *models.Manifest, r, s int) int64 {
	if s == 0 {
		return man.DecoderStartTokenID
	}
	return 3 + int64(r*11+s*5)%int64(man.VocabSize-4)
}

// forcedSteps returns the tokens of steps 0..n-1 for rows rows.
func forcedSteps(man *models.Manifest, rows, n int) [][]int64 {
	out := make([][]int64, n)
	for s := range out {
		out[s] = make([]int64, rows)
		for r := range out[s] {
			out[s][r] = forced(man, r, s)
		}
	}
	return out
}

func encode(t testing.TB, m *Model, man *models.Manifest, inputs [][]int64) Decoder {
	t.Helper()
	d, err := m.Encode(context.Background(), inputs, man.PadTokenID)
	if err != nil {
		t.Fatalf("encode: %v", err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func TestSplitMatchesMerged(t *testing.T) {
	for _, name := range testModels {
		t.Run(name, func(t *testing.T) {
			man, split := loadModel(t, name, GraphsSplit)
			_, merged := loadModel(t, name, GraphsMerged)
			src := sources(man)
			tokens := forcedSteps(man, len(src), 8)
			a := run(t, encode(t, split, man, src), tokens)
			b := run(t, encode(t, merged, man, src), tokens)
			for s := range a {
				if d := maxDiff(a[s], b[s]); d > 1e-5 {
					t.Fatalf("step %d: split and merged logits differ by %g", s, d)
				}
			}
		})
	}
}

func TestBatchedMatchesSingle(t *testing.T) {
	for _, name := range allModels {
		for _, graphs := range variants(name) {
			t.Run(name+"/"+graphs, func(t *testing.T) {
				man, m := loadModel(t, name, graphs)
				src := sources(man)
				v := m.VocabSize()
				tokens := forcedSteps(man, len(src), 8)
				batch := run(t, encode(t, m, man, src), tokens)
				for r := range src {
					single := make([][]int64, len(tokens))
					for s := range tokens {
						single[s] = []int64{tokens[s][r]}
					}
					alone := run(t, encode(t, m, man, src[r:r+1]), single)
					for s := range alone {
						if d := maxDiff(batch[s][r*v:(r+1)*v], alone[s]); d > 1e-4 {
							t.Fatalf("input %d (length %d, padded to %d), step %d: batched and single logits differ by %g",
								r, len(src[r]), len(src[0]), s, d)
						}
					}
				}
			})
		}
	}
}

// reorderOp reorders the rows by src (none when nil), then runs steps.
type reorderOp struct {
	src   []int
	steps int
}

func TestReorderMatchesDirect(t *testing.T) {
	cases := []struct {
		name string
		ops  []reorderOp
	}{
		{"expand before the first step", []reorderOp{{[]int{0, 0, 1, 1, 2, 2}, 3}}},
		{"select before the first step", []reorderOp{{[]int{2, 0}, 3}}},
		{"two reorders before the first step", []reorderOp{{[]int{0, 0, 1, 1, 2, 2}, 0}, {[]int{5, 4, 1, 0}, 3}}},
		{"permute across inputs", []reorderOp{{nil, 2}, {[]int{2, 0, 1}, 2}}},
		{"beams within inputs", []reorderOp{{[]int{0, 0, 1, 1}, 2}, {[]int{1, 1, 3, 2}, 2}, {[]int{1, 0, 2, 2}, 2}}},
		{"drop finished inputs", []reorderOp{{[]int{0, 0, 1, 1, 2, 2}, 2}, {[]int{2, 3, 4, 5}, 2}, {[]int{3, 2}, 2}}},
		{"grow after steps", []reorderOp{{nil, 2}, {[]int{0, 1, 2, 2, 1, 0}, 2}}},
		{"past the first cache size", []reorderOp{{[]int{0, 0, 1}, minCacheTokens + 2}, {[]int{2, 0, 1}, 3}}},
		{"identity", []reorderOp{{nil, 2}, {[]int{0, 1, 2}, 2}}},
	}
	for _, name := range allModels {
		for _, graphs := range variants(name) {
			man, m := loadModel(t, name, graphs)
			src := sources(man)
			for _, tc := range cases {
				t.Run(name+"/"+graphs+"/"+tc.name, func(t *testing.T) {
					d := encode(t, m, man, src)
					input := []int{0, 1, 2}
					hist := make([][]int64, 3)
					var got [][]float32
					for _, op := range tc.ops {
						if op.src != nil {
							if err := d.Reorder(op.src); err != nil {
								t.Fatalf("reorder %v: %v", op.src, err)
							}
							in, h := make([]int, len(op.src)), make([][]int64, len(op.src))
							for i, s := range op.src {
								in[i], h[i] = input[s], append([]int64(nil), hist[s]...)
							}
							input, hist = in, h
						}
						if d.Rows() != len(input) {
							t.Fatalf("Rows() = %d, want %d", d.Rows(), len(input))
						}
						got = got[:0]
						for range op.steps {
							tok := make([]int64, len(input))
							for r := range tok {
								tok[r] = forced(man, r, len(hist[r]))
								hist[r] = append(hist[r], tok[r])
							}
							got = append(got, run(t, d, [][]int64{tok})...)
						}
					}
					// The reference encodes the rows' inputs and feeds their
					// histories from the start.
					direct := make([][]int64, len(input))
					for r, in := range input {
						direct[r] = src[in]
					}
					steps := len(hist[0])
					tokens := make([][]int64, steps)
					for s := range tokens {
						tokens[s] = make([]int64, len(hist))
						for r := range hist {
							tokens[s][r] = hist[r][s]
						}
					}
					want := run(t, encode(t, m, man, direct), tokens)
					want = want[steps-len(got):]
					for s := range got {
						if diff := maxDiff(got[s], want[s]); diff > 1e-4 {
							t.Fatalf("step %d after the last reorder: logits differ from the direct run by %g", s, diff)
						}
					}
				})
			}
		}
	}
}

func TestReorderDoesOnlyNeededWork(t *testing.T) {
	man, m := loadModel(t, testModels[0], GraphsSplit)
	d := encode(t, m, man, sources(man)[:2]).(*optimumDecoder)
	if err := d.Reorder([]int{0, 0, 1, 1}); err != nil {
		t.Fatal(err)
	}
	run(t, d, forcedSteps(man, 4, 3))

	past, cross, cur := d.pastT[0], d.crossT[0], d.cur
	if err := d.Reorder([]int{0, 1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	if d.pastT[0] != past || d.crossT[0] != cross || d.cur != cur {
		t.Fatalf("an identity reorder did work")
	}

	crossBuf := &d.cross[0][0]
	if err := d.Reorder([]int{1, 1, 3, 2}); err != nil { // beams stay within their inputs
		t.Fatal(err)
	}
	if d.crossT[0] != cross || &d.cross[0][0] != crossBuf {
		t.Fatalf("a reorder within inputs gathered the cross-attention cache")
	}
	if d.cur == cur || d.pastT[0] == past {
		t.Fatalf("a reorder within inputs did not gather the self-attention cache")
	}
	if d.hidden != nil {
		t.Fatalf("the encoder states are kept after the first step, though the step graph does not take them")
	}

	if err := d.Reorder([]int{2, 3}); err != nil { // the first input finished
		t.Fatal(err)
	}
	if d.crossT[0] == cross {
		t.Fatalf("dropping an input did not gather the cross-attention cache")
	}
	if &d.cross[0][0] != crossBuf {
		t.Fatalf("dropping rows should gather the cross-attention cache in place")
	}
}

func TestGreedyLoop(t *testing.T) {
	const maxSteps = 24
	for _, name := range allModels {
		for _, graphs := range variants(name) {
			t.Run(name+"/"+graphs, func(t *testing.T) {
				man, m := loadModel(t, name, graphs)
				d := encode(t, m, man, sources(man))
				v := d.VocabSize()
				rows := d.Rows()
				tok := make([]int64, rows)
				for r := range tok {
					tok[r] = man.DecoderStartTokenID
				}
				isEOS := func(id int64) bool {
					for _, e := range man.EOSTokenIDs {
						if id == e {
							return true
						}
					}
					return false
				}
				done := make([]bool, rows)
				out := make([][]int64, rows)
				for step := 0; step < maxSteps; step++ {
					logits, err := d.Step(context.Background(), tok)
					if err != nil {
						t.Fatalf("step %d: %v", step, err)
					}
					if len(logits) != rows*v {
						t.Fatalf("step %d: %d logits, want %d", step, len(logits), rows*v)
					}
					all := true
					for r := range rows {
						row := logits[r*v : (r+1)*v]
						for _, x := range row {
							if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
								t.Fatalf("step %d row %d: logit %v", step, r, x)
							}
						}
						if done[r] {
							tok[r] = man.PadTokenID
							continue
						}
						tok[r] = argmax(row)
						out[r] = append(out[r], tok[r])
						done[r] = isEOS(tok[r])
						all = all && done[r]
					}
					if all {
						break
					}
				}
				if d.Steps() == 0 || d.Steps() > maxSteps {
					t.Fatalf("ran %d steps", d.Steps())
				}
				t.Logf("greedy output: %v", out)
			})
		}
	}
}

func TestCloseAndReuse(t *testing.T) {
	man, m := openModel(t, testModels[0], GraphsSplit)
	d := encode(t, m, man, sources(man))
	run(t, d, forcedSteps(man, d.Rows(), 2))
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	if _, err := d.Step(context.Background(), []int64{1, 1, 1}); !errors.Is(err, ErrClosed) {
		t.Fatalf("step after close: got %v, want ErrClosed", err)
	}
	if err := d.Reorder([]int{0}); !errors.Is(err, ErrClosed) {
		t.Fatalf("reorder after close: got %v, want ErrClosed", err)
	}

	open := encode(t, m, man, sources(man))
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatalf("second model close: %v", err)
	}
	if _, err := open.Step(context.Background(), []int64{0, 0, 0}); !errors.Is(err, ErrClosed) {
		t.Fatalf("step of an open decoder after the model closed: got %v, want ErrClosed", err)
	}
	if _, err := m.Encode(context.Background(), sources(man), 0); !errors.Is(err, ErrClosed) {
		t.Fatalf("encode after close: got %v, want ErrClosed", err)
	}
	if err := open.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestBadInputs(t *testing.T) {
	man, m := loadModel(t, testModels[0], GraphsSplit)
	ctx := context.Background()
	encodeErr := []struct {
		name   string
		inputs [][]int64
		want   string
	}{
		{"no inputs", nil, "no inputs"},
		{"empty input", [][]int64{{5, 1}, {}}, "input 1 is empty"},
		{"negative id", [][]int64{{5, -3, 1}}, "negative token id -3"},
		{"id past the vocabulary", [][]int64{{5, 1 << 40, 1}}, "runtime: encoder: "},
	}
	for _, tc := range encodeErr {
		if _, err := m.Encode(ctx, tc.inputs, 0); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an error containing %q", tc.name, err, tc.want)
		}
	}

	d := encode(t, m, man, sources(man))
	start := forcedSteps(man, 3, 1)[0]
	stepErr := []struct {
		name   string
		tokens []int64
		want   string
	}{
		{"too few tokens", []int64{0, 0}, "2 tokens for 3 rows"},
		{"negative token", []int64{0, -1, 0}, "token id -1 outside the vocabulary"},
		{"token past the vocabulary", []int64{0, int64(m.VocabSize()) + 1000, 0}, "outside the vocabulary [0, "},
	}
	for _, tc := range stepErr {
		if _, err := d.Step(ctx, tc.tokens); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an error containing %q", tc.name, err, tc.want)
		}
	}
	for _, src := range [][]int{nil, {0, 3}, {-1}} {
		if err := d.Reorder(src); err == nil {
			t.Errorf("reorder %v: no error", src)
		}
	}
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := d.Step(canceled, start); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled context: got %v", err)
	}
	if _, err := m.Encode(canceled, sources(man), 0); !errors.Is(err, context.Canceled) {
		t.Errorf("encode with a canceled context: got %v", err)
	}

	// A negative pad id pads with 0; padded positions are masked out, so
	// the logits are those of the model's own pad id.
	noPad, err := m.Encode(ctx, sources(man), -1)
	if err != nil {
		t.Fatalf("encode with pad id -1: %v", err)
	}
	defer noPad.Close()
	a := run(t, noPad, forcedSteps(man, 3, 2))
	b := run(t, encode(t, m, man, sources(man)), forcedSteps(man, 3, 2))
	for s := range a {
		if diff := maxDiff(a[s], b[s]); diff > 1e-5 {
			t.Fatalf("pad id -1, step %d: logits differ by %g", s, diff)
		}
	}

	// The decoder still works after the refused calls, and gives what a
	// fresh one gives.
	got := run(t, d, forcedSteps(man, 3, 3))
	want := run(t, encode(t, m, man, sources(man)), forcedSteps(man, 3, 3))
	for s := range got {
		if diff := maxDiff(got[s], want[s]); diff > 0 {
			t.Fatalf("step %d after refused calls differs by %g", s, diff)
		}
	}
}

func TestConcurrentDecoders(t *testing.T) {
	man, m := loadModel(t, testModels[1], GraphsSplit)
	src := sources(man)
	tokens := forcedSteps(man, len(src), 6)
	want := run(t, encode(t, m, man, src), tokens)
	const workers = 4
	errs := make(chan error, workers)
	for range workers {
		go func() {
			for range 5 {
				d, err := m.Encode(context.Background(), src, man.PadTokenID)
				if err != nil {
					errs <- err
					return
				}
				for s, tok := range tokens {
					logits, err := d.Step(context.Background(), tok)
					if err == nil && maxDiff(logits, want[s]) > 0 {
						err = errors.New("logits differ from a lone decoder's")
					}
					if err != nil {
						d.Close()
						errs <- err
						return
					}
				}
				d.Close()
			}
			errs <- nil
		}()
	}
	for range workers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

func TestSessionOptionsApply(t *testing.T) {
	man, ref := loadModel(t, testModels[0], GraphsSplit)
	src := sources(man)
	tokens := forcedSteps(man, len(src), 4)
	want := run(t, encode(t, ref, man, src), tokens)
	for _, level := range []string{OptimizeDisable, OptimizeBasic, OptimizeExtended, OptimizeAll} {
		t.Run(level, func(t *testing.T) {
			m, err := Load(man, Options{GraphOptimization: level, IntraOpThreads: 2, InterOpThreads: 1})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			got := run(t, encode(t, m, man, src), tokens)
			for s := range got {
				if d := maxDiff(got[s], want[s]); d > 1e-4 {
					t.Fatalf("step %d: logits differ by %g with optimization %q", s, d, level)
				}
			}
		})
	}
	// The arena off and session config entries change how ONNX Runtime
	// runs, not what it computes.
	m, err := Load(man, Options{DisableMemArena: true, SessionConfig: map[string]string{"session.intra_op.allow_spinning": "0"}, IntraOpThreads: 2})
	if err != nil {
		t.Fatal(err)
	}
	got := run(t, encode(t, m, man, src), tokens)
	m.Close()
	for s := range got {
		if d := maxDiff(got[s], want[s]); d > 1e-4 {
			t.Fatalf("step %d: logits differ by %g with the arena off", s, d)
		}
	}
	// An entry ONNX Runtime refuses (its keys are at most 1024 bytes) is an
	// error that says which.
	long := strings.Repeat("k", 2000)
	if m, err := Load(man, Options{SessionConfig: map[string]string{long: "1"}}); err == nil {
		m.Close()
		t.Fatal("a 2000-byte session config key loaded; want an error")
	} else if !strings.Contains(err.Error(), "session config \"kkkk") {
		t.Fatalf("error %v does not name the entry", err)
	}
}

func TestFirstStepSharedByBeams(t *testing.T) {
	for _, graphs := range []string{GraphsSplit, GraphsMerged} {
		man, m := loadModel(t, testModels[1], graphs)
		src := sources(man)[:2]
		start := man.DecoderStartTokenID
		expanded := [][]int64{src[0], src[0], src[1], src[1]}
		tests := []struct {
			name  string
			first []int64
			runs  int // rows the first-step graph should run at
		}{
			{"same start token", []int64{start, start, start, start}, 2},
			{"one beam forced apart", []int64{start, 7, start, start}, 3},
			{"all apart", []int64{4, 5, 6, 7}, 4},
		}
		for _, tc := range tests {
			t.Run(graphs+"/"+tc.name, func(t *testing.T) {
				tokens := append([][]int64{tc.first}, forcedSteps(man, 4, 3)[1:]...)
				d := encode(t, m, man, src).(*optimumDecoder)
				if err := d.Reorder([]int{0, 0, 1, 1}); err != nil {
					t.Fatal(err)
				}
				got := run(t, d, tokens)
				if d.firstN != tc.runs {
					t.Errorf("the first step ran at %d rows, want %d", d.firstN, tc.runs)
				}
				want := run(t, encode(t, m, man, expanded), tokens)
				for s := range got {
					if diff := maxDiff(got[s], want[s]); diff > 1e-5 {
						t.Fatalf("step %d: logits differ from the expanded batch by %g", s, diff)
					}
				}
			})
		}
	}
}
