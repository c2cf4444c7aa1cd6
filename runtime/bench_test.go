package runtime

import (
	"context"
	"fmt"
	"testing"
)

// BenchmarkStep times one decoder step at a cache length between 1 and 64
// (the decoder is encoded again, off the clock, every 64 steps).
func BenchmarkStep(b *testing.B) {
	for _, name := range []string{testModels[0], inplaceModels[0], testModels[1], inplaceModels[1], rnnModel} {
		for _, graphs := range variants(name) {
			for _, rows := range []int{1, 8} {
				b.Run(fmt.Sprintf("%s/%s/batch=%d", name, graphs, rows), func(b *testing.B) {
					man, m := loadModel(b, name, graphs)
					src := sources(man)
					inputs := make([][]int64, rows)
					for i := range inputs {
						inputs[i] = src[i%len(src)]
					}
					ctx := context.Background()
					tok := make([]int64, rows)
					var d Decoder
					b.ReportAllocs()
					for b.Loop() {
						if d == nil || d.Steps() == 64 {
							b.StopTimer()
							if d != nil {
								d.Close()
							}
							var err error
							if d, err = m.Encode(ctx, inputs, man.PadTokenID); err != nil {
								b.Fatal(err)
							}
							d.Reserve(64)
							b.StartTimer()
						}
						for r := range tok {
							tok[r] = forced(man, r, d.Steps())
						}
						if _, err := d.Step(ctx, tok); err != nil {
							b.Fatal(err)
						}
					}
					if d != nil {
						d.Close()
					}
				})
			}
		}
	}
}

// BenchmarkReorder times a beam reorder within inputs (a gather of the
// self-attention cache, 8 rows, 32 positions).
func BenchmarkReorder(b *testing.B) {
	man, m := loadModel(b, testModels[0], GraphsSplit)
	src := sources(man)[:2]
	// rotate moves every row (a gather into the other buffer); beam moves
	// two of eight, as a beam step usually does (in place); both keep their
	// order stable across iterations, so each iteration does the same work.
	for _, c := range []struct {
		name string
		perm []int
	}{
		{"rotate", []int{1, 2, 3, 0, 5, 6, 7, 4}},
		{"beam", []int{0, 0, 2, 3, 4, 5, 5, 7}},
	} {
		b.Run(c.name, func(b *testing.B) {
			d := encode(b, m, man, src)
			if err := d.Reorder([]int{0, 0, 0, 0, 1, 1, 1, 1}); err != nil {
				b.Fatal(err)
			}
			run(b, d, forcedSteps(man, 8, 32))
			b.ReportAllocs()
			for b.Loop() {
				if err := d.Reorder(c.perm); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkEncode times the encoder over 8 inputs.
func BenchmarkEncode(b *testing.B) {
	man, m := loadModel(b, testModels[0], GraphsSplit)
	src := sources(man)
	inputs := make([][]int64, 8)
	for i := range inputs {
		inputs[i] = src[i%len(src)]
	}
	b.ReportAllocs()
	for b.Loop() {
		d, err := m.Encode(context.Background(), inputs, man.PadTokenID)
		if err != nil {
			b.Fatal(err)
		}
		d.Close()
	}
}

// BenchmarkGreedy32 times a whole greedy generation of 32 tokens (encode,
// 32 steps, argmax in Go), to set beside Optimum's generate() on the same
// graphs.
func BenchmarkGreedy32(b *testing.B) {
	for _, name := range testModels[:2] {
		for _, graphs := range []string{GraphsSplit, GraphsMerged} {
			for _, rows := range []int{1, 8} {
				b.Run(fmt.Sprintf("%s/%s/batch=%d", name, graphs, rows), func(b *testing.B) {
					man, m := loadModel(b, name, graphs)
					inputs := make([][]int64, rows)
					for i := range inputs {
						inputs[i] = sources(man)[0]
					}
					ctx := context.Background()
					tok := make([]int64, rows)
					b.ReportAllocs()
					for b.Loop() {
						d, err := m.Encode(ctx, inputs, man.PadTokenID)
						if err != nil {
							b.Fatal(err)
						}
						for r := range tok {
							tok[r] = man.DecoderStartTokenID
						}
						v := d.VocabSize()
						for range 32 {
							logits, err := d.Step(ctx, tok)
							if err != nil {
								b.Fatal(err)
							}
							for r := range tok {
								tok[r] = argmax(logits[r*v : (r+1)*v])
							}
						}
						d.Close()
					}
				})
			}
		}
	}
}
