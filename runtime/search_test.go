package runtime

import (
	"context"
	"math"
	"slices"
	"testing"

	"github.com/s2s-dev/s2s/beamsearch"
)

// replayDecoder is a beamsearch.Decoder without a cache: every Step encodes
// the rows' inputs again and feeds their whole histories to a fresh
// Decoder. It is the reference the cached Decoder must agree with under a
// real search.
type replayDecoder struct {
	t      *testing.T
	m      *Model
	pad    int64
	inputs [][]int64
	hist   [][]int64
	logits []float32
}

func (r *replayDecoder) Rows() int      { return len(r.inputs) }
func (r *replayDecoder) VocabSize() int { return r.m.VocabSize() }

func (r *replayDecoder) Reorder(src []int) error {
	in, h := make([][]int64, len(src)), make([][]int64, len(src))
	for i, s := range src {
		in[i], h[i] = r.inputs[s], slices.Clone(r.hist[s])
	}
	r.inputs, r.hist = in, h
	return nil
}

func (r *replayDecoder) Step(ctx context.Context, tokens []int64) ([]float32, error) {
	for i, tok := range tokens {
		r.hist[i] = append(r.hist[i], tok)
	}
	d, err := r.m.Encode(ctx, r.inputs, r.pad)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	var logits []float32
	for s := range r.hist[0] {
		tok := make([]int64, len(r.hist))
		for i := range tok {
			tok[i] = r.hist[i][s]
		}
		if logits, err = d.Step(ctx, tok); err != nil {
			return nil, err
		}
	}
	r.logits = append(r.logits[:0], logits...)
	return r.logits, nil
}

func TestSearchMatchesReplay(t *testing.T) {
	for _, name := range allModels {
		t.Run(name, func(t *testing.T) {
			man, m := loadModel(t, name, variants(name)[0])
			src := sources(man)
			for _, beams := range []int{1, 3} {
				opts := man.Options(nil)
				opts.NumBeams = beams
				opts.NumReturnSequences = beams
				opts.MaxNewTokens = 10
				opts.MinNewTokens = 3
				d, err := m.Encode(t.Context(), src, man.PadTokenID)
				if err != nil {
					t.Fatal(err)
				}
				got, err := beamsearch.Generate(t.Context(), d, len(src), opts, nil)
				d.Close()
				if err != nil {
					t.Fatalf("beams %d: %v", beams, err)
				}
				ref := &replayDecoder{t: t, m: m, pad: man.PadTokenID, inputs: src, hist: make([][]int64, len(src))}
				want, err := beamsearch.Generate(t.Context(), ref, len(src), opts, nil)
				if err != nil {
					t.Fatalf("beams %d, replay: %v", beams, err)
				}
				for i := range want {
					for k, w := range want[i].Sequences {
						g := got[i].Sequences[k]
						if !slices.Equal(g.Tokens, w.Tokens) || math.Abs(g.Score-w.Score) > 1e-4 {
							t.Fatalf("beams %d, input %d, sequence %d: cached %v (%.6f), replayed %v (%.6f)",
								beams, i, k, g.Tokens, g.Score, w.Tokens, w.Score)
						}
					}
				}
				t.Logf("beams %d: %v", beams, got[0].Sequences[0].Tokens)
			}
		})
	}
}
