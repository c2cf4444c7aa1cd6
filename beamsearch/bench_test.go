package beamsearch

import (
	"context"
	"math/rand/v2"
	"testing"
)

// benchDecoder is an allocation-free fake for benchmarks: each row's logits
// are one of a few fixed random rows, picked by the row's last token and
// length, so the search, not the fake, is what is measured. EOS is never
// likely, so every search runs to MaxNewTokens.
type benchDecoder struct {
	vocab, rows int
	table       []float32 // tableRows x vocab
	tableRows   int
	last        []int64
	length      []int
	spareLast   []int64
	spareLength []int
	out         []float32
}

func newBenchDecoder(vocab, batch, maxRows int, eos int64) *benchDecoder {
	const tableRows = 61
	rng := rand.New(rand.NewPCG(1, 2))
	d := &benchDecoder{
		vocab: vocab, rows: batch, tableRows: tableRows,
		table:     make([]float32, tableRows*vocab),
		last:      make([]int64, maxRows),
		length:    make([]int, maxRows),
		spareLast: make([]int64, maxRows), spareLength: make([]int, maxRows),
		out: make([]float32, maxRows*vocab),
	}
	for i := range d.table {
		d.table[i] = float32(rng.NormFloat64() * 3)
	}
	for r := range tableRows {
		d.table[r*vocab+int(eos)] = -30
	}
	return d
}

func (d *benchDecoder) reset(batch int) {
	d.rows = batch
	clear(d.last)
	clear(d.length)
}

func (d *benchDecoder) Step(_ context.Context, tokens []int64) ([]float32, error) {
	v := d.vocab
	for r, t := range tokens {
		d.last[r] = t
		d.length[r]++
		k := int(mix(uint64(t)*31+uint64(d.length[r])) % uint64(d.tableRows))
		copy(d.out[r*v:(r+1)*v], d.table[k*v:(k+1)*v])
	}
	return d.out[:len(tokens)*v], nil
}

func (d *benchDecoder) Reorder(src []int) error {
	for i, s := range src {
		d.spareLast[i], d.spareLength[i] = d.last[s], d.length[s]
	}
	d.last, d.spareLast = d.spareLast, d.last
	d.length, d.spareLength = d.spareLength, d.length
	d.rows = len(src)
	return nil
}

func (d *benchDecoder) Rows() int      { return d.rows }
func (d *benchDecoder) VocabSize() int { return d.vocab }

func benchOptions() Options {
	o := Defaults()
	o.EOSTokenIDs = []int64{2}
	o.DecoderStartTokenID = 0
	o.MaxNewTokens = 32
	return o
}

// BenchmarkGenerate runs whole searches of 32 steps over a 32000-token
// vocabulary; ns/step is the search's own cost per decoder step (the fake
// decoder only copies a row of logits per live row).
func BenchmarkGenerate(b *testing.B) {
	const vocab = 32000
	type config struct {
		name  string
		batch int
		set   func(*Options)
	}
	configs := []config{
		{"greedy/batch1", 1, func(o *Options) {}},
		{"greedy/batch8", 8, func(o *Options) {}},
		{"greedy/batch8_rep_ngram", 8, func(o *Options) { o.RepetitionPenalty = 1.2; o.NoRepeatNgramSize = 3 }},
		{"sample/batch8_topk50_topp0.9", 8, func(o *Options) { o.DoSample = true; o.TopP = 0.9; o.Seed = 7 }},
		{"sample/batch8_topp0.9_no_topk", 8, func(o *Options) { o.DoSample = true; o.TopK = 0; o.TopP = 0.9; o.Seed = 7 }},
		{"beam4/batch1", 1, func(o *Options) { o.NumBeams = 4 }},
		{"beam4/batch4", 4, func(o *Options) { o.NumBeams = 4 }},
		{"beam4/batch4_ngram3_lp2_never", 4, func(o *Options) {
			o.NumBeams = 4
			o.NoRepeatNgramSize = 3
			o.LengthPenalty = 2
			o.EarlyStopping = EarlyStoppingNever
		}},
		{"beam8/batch2", 2, func(o *Options) { o.NumBeams = 8 }},
	}
	for _, c := range configs {
		b.Run(c.name, func(b *testing.B) {
			opts := benchOptions()
			c.set(&opts)
			rows := c.batch * max(opts.NumBeams, opts.NumReturnSequences)
			dec := newBenchDecoder(vocab, c.batch, rows, 2)
			ctx := context.Background()
			b.ReportAllocs()
			steps := 0
			for b.Loop() {
				dec.reset(c.batch)
				if _, err := Generate(ctx, dec, c.batch, opts, nil); err != nil {
					b.Fatal(err)
				}
				steps += opts.MaxNewTokens
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(steps), "ns/step")
		})
	}
}

// TestNoPerStepAllocations runs the same searches for 8 and for 80 steps
// on an allocation-free decoder and wants the same number of allocations:
// the step loop reuses its scratch space.
func TestNoPerStepAllocations(t *testing.T) {
	const vocab = 2000
	cases := []struct {
		name string
		set  func(*Options)
	}{
		{"greedy", func(o *Options) {}},
		{"greedy_processors", func(o *Options) {
			o.RepetitionPenalty = 1.2
			o.NoRepeatNgramSize = 3
			o.BadWordsIDs = [][]int64{{5, 6}}
		}},
		{"sample", func(o *Options) { o.DoSample = true; o.TopP = 0.9; o.Seed = 3; o.NumReturnSequences = 2 }},
		{"beam", func(o *Options) { o.NumBeams = 4; o.NoRepeatNgramSize = 2; o.NumReturnSequences = 2 }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			allocs := func(steps int) float64 {
				opts := benchOptions()
				c.set(&opts)
				opts.MaxNewTokens = steps
				dec := newBenchDecoder(vocab, 3, 3*max(opts.NumBeams, opts.NumReturnSequences), 2)
				return testing.AllocsPerRun(5, func() {
					dec.reset(3)
					if _, err := Generate(context.Background(), dec, 3, opts, nil); err != nil {
						t.Fatal(err)
					}
				})
			}
			// One allocation of slack: the runtime itself allocates now and
			// then; a per-step allocation would add 72.
			short, long := allocs(8), allocs(80)
			if long > short+1 {
				t.Errorf("%v allocations for 80 steps, %v for 8: the step loop allocates", long, short)
			}
		})
	}
}
