package s2s_test

import (
	"context"
	"path/filepath"
	"slices"
	"testing"

	"github.com/s2s-dev/s2s"
)

// inplaceDir returns the committed tiny model of family in the inplace
// layout (the same checkpoint as family-tiny, our own decoder graphs).
func inplaceDir(family string) string { return filepath.Join("testdata", family+"-tiny-inplace") }

// TestInplaceMatchesTransformers runs every greedy and beam golden through
// the inplace layout: token for token, scores within 1e-4.
func TestInplaceMatchesTransformers(t *testing.T) {
	for _, family := range families {
		t.Run(family, func(t *testing.T) {
			g := open(t, inplaceDir(family), s2s.Options{})
			if l := g.Manifest().Layout; l != "inplace" {
				t.Fatalf("%s is in the %q layout", inplaceDir(family), l)
			}
			checkGreedyGoldens(t, g, family)
			checkBeamGoldens(t, g, family)
		})
	}
}

// TestInplaceBatchEqualsSingle generates mixed-length inputs together and
// one by one through the inplace layout, greedy and beam 4.
func TestInplaceBatchEqualsSingle(t *testing.T) {
	for _, family := range families {
		t.Run(family, func(t *testing.T) {
			g := open(t, inplaceDir(family), s2s.Options{})
			goldens := readGoldens(t, filepath.Join("testdata", "goldens", "greedy-"+family+".jsonl"))
			var inputs []string
			for _, gd := range goldens[:min(9, len(goldens))] {
				inputs = append(inputs, gd.Input)
			}
			for _, beams := range []int{1, 4} {
				opts := g.Defaults()
				opts.NumBeams, opts.NumReturnSequences, opts.MaxNewTokens = beams, min(beams, 2), 12
				batch, err := g.Generate(context.Background(), inputs, opts, nil)
				if err != nil {
					t.Fatal(err)
				}
				for i, in := range inputs {
					single, err := g.Generate(context.Background(), []string{in}, opts, nil)
					if err != nil {
						t.Fatal(err)
					}
					for si := range single[0].Sequences {
						b, s := batch[i].Sequences[si], single[0].Sequences[si]
						if !slices.Equal(b.Tokens, s.Tokens) || b.FinishReason != s.FinishReason || b.Score-s.Score > 1e-4 || s.Score-b.Score > 1e-4 {
							t.Errorf("beams %d input %d seq %d: batch %v (%v), alone %v (%v)", beams, i, si, b.Tokens, b.Score, s.Tokens, s.Score)
						}
					}
				}
			}
		})
	}
}
