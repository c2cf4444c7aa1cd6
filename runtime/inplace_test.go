package runtime

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/s2s-dev/s2s/beamsearch"
)

// TestInplaceMatchesOptimum feeds the same tokens to a checkpoint in both
// layouts: the logits must agree at every step.
func TestInplaceMatchesOptimum(t *testing.T) {
	for _, name := range inplaceModels {
		t.Run(name, func(t *testing.T) {
			man, in := loadModel(t, name, GraphsAuto)
			_, opt := loadModel(t, optimumTwin(name), GraphsMerged)
			src := sources(man)
			tokens := forcedSteps(man, len(src), 10)
			a := run(t, encode(t, in, man, src), tokens)
			b := run(t, encode(t, opt, man, src), tokens)
			for s := range a {
				if d := maxDiff(a[s], b[s]); d > 1e-4 {
					t.Fatalf("step %d: inplace and optimum logits differ by %g", s, d)
				}
			}
		})
	}
}

// TestInplaceGolden runs the inplace models against the reference logits of
// runtime/testdata/golden (Python onnxruntime on the Optimum graphs of the
// same checkpoints).
func TestInplaceGolden(t *testing.T) {
	for _, name := range inplaceModels {
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", "golden", optimumTwin(name)+".json"))
			if err != nil {
				t.Fatal(err)
			}
			var g goldenRun
			if err := json.Unmarshal(data, &g); err != nil {
				t.Fatal(err)
			}
			man, m := loadModel(t, name, GraphsAuto)
			d, err := m.Encode(t.Context(), g.Inputs, g.PadTokenID)
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			got := run(t, d, g.Tokens)
			for s := range got {
				var want []float32
				for _, row := range g.Logits[s] {
					want = append(want, row...)
				}
				if len(want) != len(g.Inputs)*man.VocabSize {
					t.Fatalf("step %d: golden logits have %d values, want %d", s, len(want), len(g.Inputs)*man.VocabSize)
				}
				if diff := maxDiff(got[s], want); diff > 1e-4 {
					t.Fatalf("step %d: logits differ from onnxruntime's reference by %g", s, diff)
				}
			}
		})
	}
}

// TestInplaceBeamReorderMovesNoCache checks what a reorder costs: a beam
// step (rows kept, histories exchanged) moves no cache row, and dropping
// an input moves only the rows that sit past the new row count.
func TestInplaceBeamReorderMovesNoCache(t *testing.T) {
	man, m := loadModel(t, inplaceModels[1], GraphsAuto)
	d := encode(t, m, man, sources(man)).(*inplaceDecoder)
	d.Reserve(8)
	if err := d.Reorder([]int{0, 0, 1, 1, 2, 2}); err != nil {
		t.Fatal(err)
	}
	tok := make([]int64, 6)
	for s := range 3 {
		for r := range tok {
			tok[r] = forced(man, r, s)
		}
		if _, err := d.Step(t.Context(), tok); err != nil {
			t.Fatal(err)
		}
		if err := d.Reorder([]int{1, 1, 3, 2, 4, 4}); err != nil {
			t.Fatal(err)
		}
	}
	if d.moves != 0 {
		t.Fatalf("beam reorders moved %d cache rows, want 0", d.moves)
	}
	if d.perRow {
		t.Fatal("beams of equal inputs are fed a cross-attention copy per row, want one per input")
	}
	// Input 0 leaves: rows 2..5 become 0..3. Input 2's rows both read
	// buffer row 4 (each step both continued row 4), which moves into a
	// freed row at each of the 3 slots; input 1's rows 2 and 3 stay.
	if err := d.Reorder([]int{2, 3, 4, 5}); err != nil {
		t.Fatal(err)
	}
	if d.moves != 3 {
		t.Fatalf("dropping an input copied %d (row, slot) pairs of the cache, want 3", d.moves)
	}
	if len(d.inputs) != 2 {
		t.Fatalf("the cross storage holds %d inputs after one of 3 left", len(d.inputs))
	}
	if _, err := d.Step(t.Context(), []int64{5, 6, 7, 8}); err != nil {
		t.Fatal(err)
	}
}

// TestInplaceJoinMatchesAlone admits inputs into a running decoder between
// steps (rows at different steps in one batch): every row's logits must be
// those of its input decoded alone, before and after the join and after
// the first rows leave.
func TestInplaceJoinMatchesAlone(t *testing.T) {
	for _, name := range inplaceModels {
		t.Run(name, func(t *testing.T) {
			man, m := loadModel(t, name, GraphsAuto)
			src := sources(man)
			v := m.VocabSize()
			d := encode(t, m, man, src[:1]).(*inplaceDecoder)
			d.Reserve(4) // small: the cache fills after input 0 leaves, and its slots move left
			hist := [][]int64{nil}
			input := []int{0}
			var got [][][]float32 // per step, per row
			step := func() {
				tok := make([]int64, len(hist))
				for r := range tok {
					tok[r] = forced(man, input[r], len(hist[r]))
					hist[r] = append(hist[r], tok[r])
				}
				logits, err := d.Step(t.Context(), tok)
				if err != nil {
					t.Fatal(err)
				}
				rows := make([][]float32, len(tok))
				for r := range rows {
					rows[r] = slices.Clone(logits[r*v : (r+1)*v])
				}
				got = append(got, rows)
			}
			step()
			step()
			if err := d.Join(t.Context(), src[1:3]); err != nil { // longer and shorter than input 0
				t.Fatal(err)
			}
			hist, input = append(hist, nil, nil), append(input, 1, 2)
			step()
			step()
			if err := d.Reorder([]int{1, 2}); err != nil { // input 0 leaves
				t.Fatal(err)
			}
			hist, input = hist[1:], input[1:]
			for range 4 {
				step()
			}
			if d.shifts == 0 {
				t.Fatal("the cache never moved left; the test lost its point")
			}
			// Each input alone, through the same tokens.
			first := map[int]int{0: 0, 1: 2, 2: 2} // the step each input joined at
			for _, in := range []int{0, 1, 2} {
				var n int
				switch in {
				case 0:
					n = 4
				default:
					n = 6
				}
				tokens := make([][]int64, n)
				for s := range tokens {
					tokens[s] = []int64{forced(man, in, s)}
				}
				alone := run(t, encode(t, m, man, src[in:in+1]), tokens)
				for s := range alone {
					step := first[in] + s
					row := in
					if step >= 4 {
						row = in - 1
					}
					if diff := maxDiff(got[step][row], alone[s]); diff > 1e-4 {
						t.Fatalf("input %d, its step %d (batch step %d): logits differ from decoding it alone by %g", in, s, step, diff)
					}
				}
			}
		})
	}
}

// TestInplaceMixedRowCounts holds inputs with different numbers of rows
// (greedy beside beams): the cross-attention is then fed a copy per row,
// and the logits still match.
func TestInplaceMixedRowCounts(t *testing.T) {
	man, m := loadModel(t, inplaceModels[0], GraphsAuto)
	src := sources(man)
	d := encode(t, m, man, src).(*inplaceDecoder)
	if err := d.Reorder([]int{0, 0, 0, 1, 2, 2}); err != nil {
		t.Fatal(err)
	}
	if !d.perRow {
		t.Fatal("inputs with 3, 1 and 2 rows are fed per input")
	}
	rows := []int{0, 0, 0, 1, 2, 2}
	tokens := make([][]int64, 4)
	for s := range tokens {
		tokens[s] = make([]int64, len(rows))
		for r := range rows {
			tokens[s][r] = forced(man, r, s)
		}
	}
	got := run(t, d, tokens)
	direct := make([][]int64, len(rows))
	for r, in := range rows {
		direct[r] = src[in]
	}
	want := run(t, encode(t, m, man, direct), tokens)
	for s := range got {
		if diff := maxDiff(got[s], want[s]); diff > 1e-4 {
			t.Fatalf("step %d: logits differ from a batch of copies by %g", s, diff)
		}
	}
}

// TestInplaceSearchAcrossLayouts runs greedy and beam search over both
// layouts of each checkpoint: the same sequences and scores.
func TestInplaceSearchAcrossLayouts(t *testing.T) {
	for _, name := range inplaceModels {
		t.Run(name, func(t *testing.T) {
			man, in := loadModel(t, name, GraphsAuto)
			_, opt := loadModel(t, optimumTwin(name), GraphsMerged)
			src := sources(man)
			for _, beams := range []int{1, 4} {
				opts := man.Options(nil)
				opts.NumBeams, opts.NumReturnSequences, opts.MaxNewTokens = beams, beams, 12
				gen := func(m *Model) []beamsearch.Result {
					d, err := m.Encode(context.Background(), src, man.PadTokenID)
					if err != nil {
						t.Fatal(err)
					}
					defer d.Close()
					res, err := beamsearch.Generate(context.Background(), d, len(src), opts, nil)
					if err != nil {
						t.Fatal(err)
					}
					return res
				}
				a, b := gen(in), gen(opt)
				for i := range a {
					for k := range a[i].Sequences {
						x, y := a[i].Sequences[k], b[i].Sequences[k]
						if !slices.Equal(x.Tokens, y.Tokens) || x.Score-y.Score > 1e-4 || y.Score-x.Score > 1e-4 {
							t.Fatalf("beams %d input %d seq %d: inplace %v (%.6f), optimum %v (%.6f)", beams, i, k, x.Tokens, x.Score, y.Tokens, y.Score)
						}
					}
				}
			}
		})
	}
}

func TestInplaceLoadErrors(t *testing.T) {
	man, _ := loadModel(t, inplaceModels[0], GraphsAuto)
	if _, err := Load(man, Options{DecoderGraphs: GraphsMerged}); err == nil {
		t.Fatal("decoder graphs merged on an inplace model loaded")
	}
	m := *man
	m.NumLayers = 7
	if _, err := Load(&m, testOptions(GraphsAuto)); err == nil {
		t.Fatal("a manifest with the wrong layer count loaded")
	}
}

// TestInplaceFailedJoinKeepsTheDecoder: a Join whose context has ended
// fails and leaves the rows as they were.
func TestInplaceFailedJoinKeepsTheDecoder(t *testing.T) {
	man, m := loadModel(t, inplaceModels[0], GraphsAuto)
	src := sources(man)
	d := encode(t, m, man, src[:2]).(*inplaceDecoder)
	tokens := forcedSteps(man, 2, 4)
	got := run(t, d, tokens[:2])
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := d.Join(ctx, src[2:]); err == nil {
		t.Fatal("a join with an ended context succeeded")
	}
	if err := d.Join(t.Context(), [][]int64{{}}); err == nil {
		t.Fatal("an empty input joined")
	}
	if d.Rows() != 2 || len(d.inputs) != 2 {
		t.Fatalf("after failed joins: %d rows, %d inputs", d.Rows(), len(d.inputs))
	}
	got = append(got, run(t, d, tokens[2:])...)
	want := run(t, encode(t, m, man, src[:2]), tokens)
	for s := range want {
		if diff := maxDiff(got[s], want[s]); diff > 1e-4 {
			t.Fatalf("step %d: %g off after a failed join", s, diff)
		}
	}
}
