package beamsearch

import (
	"context"
	"fmt"
	"slices"
)

// fakeDecoder is a scripted Decoder: each row remembers the source it
// belongs to and every token fed to it, and its logits are a pure function
// of both, so a wrong Reorder gives wrong logits.
type fakeDecoder struct {
	vocab  int
	logits func(src int, history []int64, out []float32)

	src     []int
	history [][]int64
	out     []float32

	steps            int
	rowsPerStep      []int
	reorders         int
	identityReorders int
	// onStep, when set, runs before each step with the step number (1-based).
	onStep func(n int)
}

// newFakeDecoder starts a decoder with one row per source.
func newFakeDecoder(vocab int, sources []int, logits func(src int, history []int64, out []float32)) *fakeDecoder {
	d := &fakeDecoder{vocab: vocab, logits: logits, src: slices.Clone(sources)}
	d.history = make([][]int64, len(sources))
	return d
}

func (d *fakeDecoder) Step(ctx context.Context, tokens []int64) ([]float32, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if len(tokens) != len(d.src) {
		return nil, fmt.Errorf("fake: %d tokens for %d rows", len(tokens), len(d.src))
	}
	d.steps++
	if d.onStep != nil {
		d.onStep(d.steps)
	}
	d.rowsPerStep = append(d.rowsPerStep, len(tokens))
	d.out = slices.Grow(d.out[:0], len(tokens)*d.vocab)[:len(tokens)*d.vocab]
	for r, t := range tokens {
		if t < 0 || int(t) >= d.vocab {
			return nil, fmt.Errorf("fake: token %d outside the vocabulary", t)
		}
		d.history[r] = append(d.history[r], t)
		d.logits(d.src[r], d.history[r], d.out[r*d.vocab:(r+1)*d.vocab])
	}
	return d.out, nil
}

func (d *fakeDecoder) Reorder(src []int) error {
	d.reorders++
	if len(src) == len(d.src) {
		identity := true
		for i, s := range src {
			identity = identity && s == i
		}
		if identity {
			d.identityReorders++
		}
	}
	srcs := make([]int, len(src))
	hist := make([][]int64, len(src))
	for i, s := range src {
		if s < 0 || s >= len(d.src) {
			return fmt.Errorf("fake: reorder from row %d of %d", s, len(d.src))
		}
		srcs[i] = d.src[s]
		hist[i] = slices.Clone(d.history[s])
	}
	d.src, d.history = srcs, hist
	return nil
}

func (d *fakeDecoder) Rows() int      { return len(d.src) }
func (d *fakeDecoder) VocabSize() int { return d.vocab }

// mix is splitmix64's finaliser, as in testdata/make_fake_goldens.py.
func mix(x uint64) uint64 {
	z := x + 0x9E3779B97F4A7C15
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
	z = (z ^ (z >> 27)) * 0x94D049BB133111EB
	return z ^ (z >> 31)
}

func unit(x uint64) float64 {
	return float64(x>>11) * (1.0 / 9007199254740992.0)
}

// hashLogits is fake_logits of testdata/make_fake_goldens.py: mostly a
// table of (source, last token), partly a hash of the whole history, with
// EOS growing likelier as the history grows. The explicit float64
// conversions keep Go from fusing multiply-adds, so the float64 values match
// Python's bit for bit before the rounding to float32.
func hashLogits(eos []int64) func(src int, history []int64, out []float32) {
	return func(src int, history []int64, out []float32) {
		h := mix(uint64(src))
		for _, t := range history {
			h = mix(h ^ uint64(t))
		}
		base := mix((uint64(src) << 32) ^ (uint64(history[len(history)-1]) << 8) ^ 0x5151)
		n := float64(len(history))
		for v := range out {
			a := unit(mix(base ^ uint64(v)))
			b := unit(mix(h ^ (uint64(v) * 0x100000001B3)))
			x := float64(6.0*a) - 3.0 + float64(1.5*b)
			if slices.Contains(eos, int64(v)) {
				x = x + (float64(0.5*n) - 3.0)
			}
			out[v] = float32(x)
		}
	}
}

// tableLogits scripts logits by history length: step i (1-based) of every
// row gets table[min(i, len(table))-1], whatever the source.
func tableLogits(table [][]float32) func(src int, history []int64, out []float32) {
	return func(_ int, history []int64, out []float32) {
		copy(out, table[min(len(history), len(table))-1])
	}
}

// Join appends one row per input; a fake input is its source number:
// inputs[i][0].
func (d *fakeDecoder) Join(ctx context.Context, inputs [][]int64) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	for _, in := range inputs {
		if len(in) == 0 {
			return fmt.Errorf("fake: empty input")
		}
		d.src = append(d.src, int(in[0]))
		d.history = append(d.history, nil)
	}
	return nil
}
