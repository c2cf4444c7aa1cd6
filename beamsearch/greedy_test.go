package beamsearch

import (
	"context"
	"errors"
	"math"
	"slices"
	"testing"
)

// Rows of 4-token logits whose softmax is known: prefer(t) puts 0.4 on t,
// 0.3, 0.2 and 0.1 on the tokens after it (cyclically).
func prefer(t int) []float32 {
	row := make([]float32, 4)
	for i, p := range []float64{0.4, 0.3, 0.2, 0.1} {
		row[(t+i)%4] = float32(math.Log(p))
	}
	return row
}

// bySource scripts logits per source: source s gets table[s] by step.
func bySource(tables map[int][][]float32) func(src int, history []int64, out []float32) {
	return func(src int, history []int64, out []float32) {
		tableLogits(tables[src])(src, history, out)
	}
}

func greedyOptions() Options {
	o := Defaults()
	o.EOSTokenIDs = []int64{3}
	o.DecoderStartTokenID = 0
	o.MaxNewTokens = 6
	return o
}

func TestGreedy(t *testing.T) {
	l := func(ps ...float64) float64 {
		s := 0.0
		for _, p := range ps {
			s += math.Log(p)
		}
		return s
	}
	cases := []struct {
		name   string
		tables map[int][][]float32
		set    func(*Options)
		want   []Sequence
		rows   []int
	}{
		{
			name: "eos ends each input; finished rows leave",
			tables: map[int][][]float32{
				0: {prefer(1), prefer(3)},
				1: {prefer(2), prefer(1), prefer(0), prefer(3)},
			},
			want: []Sequence{
				{Tokens: []int64{1, 3}, Score: l(.4, .4), FinishReason: FinishEOS},
				{Tokens: []int64{2, 1, 0, 3}, Score: l(.4, .4, .4, .4), FinishReason: FinishEOS},
			},
			rows: []int{2, 2, 1, 1},
		},
		{
			name:   "max new tokens",
			tables: map[int][][]float32{0: {prefer(1)}, 1: {prefer(2)}},
			set:    func(o *Options) { o.MaxNewTokens = 3 },
			want: []Sequence{
				{Tokens: []int64{1, 1, 1}, Score: l(.4, .4, .4), FinishReason: FinishLength},
				{Tokens: []int64{2, 2, 2}, Score: l(.4, .4, .4), FinishReason: FinishLength},
			},
			rows: []int{2, 2, 2},
		},
		{
			name:   "min new tokens masks eos and renormalises",
			tables: map[int][][]float32{0: {prefer(3)}, 1: {prefer(3)}},
			set:    func(o *Options) { o.MinNewTokens = 2 },
			want: []Sequence{
				{Tokens: []int64{0, 0, 3}, Score: l(.5, .5, .4), FinishReason: FinishEOS},
				{Tokens: []int64{0, 0, 3}, Score: l(.5, .5, .4), FinishReason: FinishEOS},
			},
			rows: []int{2, 2, 2},
		},
		{
			name:   "any of several eos ids ends",
			tables: map[int][][]float32{0: {prefer(2), prefer(1)}, 1: {prefer(2), prefer(2), prefer(3)}},
			set:    func(o *Options) { o.EOSTokenIDs = []int64{3, 1} },
			want: []Sequence{
				{Tokens: []int64{2, 1}, Score: l(.4, .4), FinishReason: FinishEOS},
				{Tokens: []int64{2, 2, 3}, Score: l(.4, .4, .4), FinishReason: FinishEOS},
			},
			rows: []int{2, 2, 1},
		},
		{
			name:   "forced bos and eos score 0",
			tables: map[int][][]float32{0: {prefer(1)}, 1: {prefer(2)}},
			set: func(o *Options) {
				o.MaxNewTokens = 3
				o.ForcedBOSTokenID = 2
				o.ForcedEOSTokenID = 3
			},
			want: []Sequence{
				{Tokens: []int64{2, 1, 3}, Score: l(.4), FinishReason: FinishEOS},
				{Tokens: []int64{2, 2, 3}, Score: l(.4), FinishReason: FinishEOS},
			},
			rows: []int{2, 2, 2},
		},
		{
			name: "repetition penalty works on raw logits",
			// Negative logits of tokens in the history (the start token 0
			// included) are multiplied by 1.5: at step 2, 1.5*ln .4 falls
			// below ln .3, so token 2 wins.
			tables: map[int][][]float32{0: {prefer(1), prefer(1), prefer(3)}, 1: {prefer(1), prefer(1), prefer(3)}},
			set:    func(o *Options) { o.RepetitionPenalty = 1.5 },
			want: []Sequence{
				{Tokens: []int64{1, 2, 3}, Score: repScore, FinishReason: FinishEOS},
				{Tokens: []int64{1, 2, 3}, Score: repScore, FinishReason: FinishEOS},
			},
			rows: []int{2, 2, 2},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			opts := greedyOptions()
			if c.set != nil {
				c.set(&opts)
			}
			dec := newFakeDecoder(4, []int{0, 1}, bySource(c.tables))
			rec := newStreamRecorder(2)
			got, err := Generate(context.Background(), dec, 2, opts, rec.record)
			if err != nil {
				t.Fatal(err)
			}
			for i, w := range c.want {
				s := got[i].Sequences[0]
				if !slices.Equal(s.Tokens, w.Tokens) || s.FinishReason != w.FinishReason || math.Abs(s.Score-w.Score) > 1e-5 {
					t.Errorf("input %d: got %+v, want %+v", i, s, w)
				}
			}
			if !slices.Equal(dec.rowsPerStep, c.rows) {
				t.Errorf("rows per step %v, want %v", dec.rowsPerStep, c.rows)
			}
			if dec.identityReorders != 0 {
				t.Errorf("%d identity reorders", dec.identityReorders)
			}
			rec.check(t, got)
		})
	}
}

func l4(p float64) float32 { return float32(math.Log(p)) }

var repScore = greedyLogProb([]float32{l4(.1) * 1.5, l4(.4), l4(.3), l4(.2)}, 1) +
	greedyLogProb([]float32{l4(.1) * 1.5, l4(.4) * 1.5, l4(.3), l4(.2)}, 2) +
	greedyLogProb([]float32{l4(.3) * 1.5, l4(.2) * 1.5, l4(.1) * 1.5, l4(.4)}, 3)

// greedyLogProb is log_softmax(row)[t].
func greedyLogProb(row []float32, t int) float64 {
	var sum float64
	for _, x := range row {
		sum += math.Exp(float64(x))
	}
	return float64(row[t]) - math.Log(sum)
}

// TestGreedyStreamsEachToken checks that greedy streaming hands over each
// token as it is chosen, in order, then one Final.
func TestGreedyStreamsEachToken(t *testing.T) {
	dec := newFakeDecoder(4, []int{0}, tableLogits([][]float32{prefer(1), prefer(2), prefer(3)}))
	var steps []Step
	_, err := Generate(context.Background(), dec, 1, greedyOptions(), func(s Step) error {
		steps = append(steps, s)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := [][]int64{{1}, {2}, {3}}
	if len(steps) != 4 || !steps[3].Final {
		t.Fatalf("steps %+v, want three tokens then Final", steps)
	}
	for i, w := range want {
		if !slices.Equal(steps[i].Tokens, w) || steps[i].Final {
			t.Errorf("step %d: %+v, want tokens %v", i, steps[i], w)
		}
	}
}

func TestStreamErrorStops(t *testing.T) {
	stop := errors.New("client went away")
	for _, beams := range []int{1, 3} {
		opts := greedyOptions()
		opts.NumBeams = beams
		opts.MaxNewTokens = 10
		dec := newFakeDecoder(40, []int{7}, hashLogits([]int64{3}))
		calls, stepsAtFail := 0, 0
		_, err := Generate(context.Background(), dec, 1, opts, func(Step) error {
			calls++
			if calls == 2 {
				stepsAtFail = dec.steps
				return stop
			}
			return nil
		})
		if !errors.Is(err, stop) {
			t.Errorf("beams %d: error %v, want the stream's", beams, err)
		}
		if dec.steps != stepsAtFail {
			t.Errorf("beams %d: %d steps, but the stream failed at step %d", beams, dec.steps, stepsAtFail)
		}
		if calls != 2 {
			t.Errorf("beams %d: stream called %d times after failing", beams, calls)
		}
	}
}

func TestContextCancelStopsPromptly(t *testing.T) {
	for _, beams := range []int{1, 4} {
		ctx, cancel := context.WithCancel(context.Background())
		opts := greedyOptions()
		opts.NumBeams = beams
		opts.MaxNewTokens = 50
		opts.MinNewTokens = 50
		dec := newFakeDecoder(40, []int{7, 8}, hashLogits([]int64{3}))
		dec.onStep = func(n int) {
			if n == 3 {
				cancel()
			}
		}
		_, err := Generate(ctx, dec, 2, opts, nil)
		if !errors.Is(err, context.Canceled) {
			t.Errorf("beams %d: error %v, want context.Canceled", beams, err)
		}
		if dec.steps != 3 {
			t.Errorf("beams %d: %d steps, want 3 (none after the cancel)", beams, dec.steps)
		}
		cancel()
	}
}

// brokenDecoder returns whatever logits it is told to.
type brokenDecoder struct {
	rows, vocab int
	logits      []float32
	err         error
}

func (d *brokenDecoder) Step(context.Context, []int64) ([]float32, error) { return d.logits, d.err }
func (d *brokenDecoder) Reorder(src []int) error                          { d.rows = len(src); return nil }
func (d *brokenDecoder) Rows() int                                        { return d.rows }
func (d *brokenDecoder) VocabSize() int                                   { return d.vocab }

func TestGenerateRejects(t *testing.T) {
	opts := greedyOptions()
	nan := float32(math.NaN())
	stepErr := errors.New("onnx runtime exploded")
	beam := greedyOptions()
	beam.NumBeams = 2
	bad := greedyOptions()
	bad.MaxNewTokens = 0
	cases := []struct {
		name  string
		dec   Decoder
		batch int
		opts  Options
		want  error
	}{
		{"nil decoder", nil, 1, opts, ErrDecoder},
		{"no vocabulary", &brokenDecoder{rows: 1}, 1, opts, ErrDecoder},
		{"bad options", &brokenDecoder{rows: 1, vocab: 4}, 1, bad, ErrInvalidOptions},
		{"eos outside vocabulary", &brokenDecoder{rows: 1, vocab: 3}, 1, opts, ErrInvalidOptions},
		{"empty batch", &brokenDecoder{rows: 0, vocab: 4}, 0, opts, ErrInvalidOptions},
		{"rows differ from batch", &brokenDecoder{rows: 2, vocab: 4}, 1, opts, ErrDecoder},
		{"short logits", &brokenDecoder{rows: 1, vocab: 4, logits: make([]float32, 3)}, 1, opts, ErrDecoder},
		{"nan logits", &brokenDecoder{rows: 1, vocab: 4, logits: []float32{0, nan, 0, 0}}, 1, opts, ErrDecoder},
		{"nan logits under beams", &brokenDecoder{rows: 1, vocab: 4, logits: []float32{0, nan, 0, 0, 0, nan, 0, 0}}, 1, beam, ErrDecoder},
		{"step error", &brokenDecoder{rows: 1, vocab: 4, err: stepErr}, 1, opts, stepErr},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Generate(context.Background(), c.dec, c.batch, c.opts, nil)
			if !errors.Is(err, c.want) {
				t.Fatalf("error %v, want %v", err, c.want)
			}
			if msg := err.Error(); msg != "" && msg[0] >= 'A' && msg[0] <= 'Z' {
				t.Errorf("message %q starts upper-case", msg)
			}
		})
	}
}

// reservingDecoder records what Generate reserves.
type reservingDecoder struct {
	*fakeDecoder
	reserved []int
}

func (d *reservingDecoder) Reserve(tokens int) { d.reserved = append(d.reserved, tokens) }

func TestGenerateReserves(t *testing.T) {
	for _, beams := range []int{1, 3} {
		opts := Defaults()
		opts.EOSTokenIDs = []int64{0}
		opts.DecoderStartTokenID = 0
		opts.MaxNewTokens = 7
		opts.NumBeams = beams
		d := &reservingDecoder{fakeDecoder: newFakeDecoder(5, []int{0}, func(_ int, _ []int64, out []float32) {
			for i := range out {
				out[i] = float32(i)
			}
		})}
		if _, err := Generate(context.Background(), d, 1, opts, nil); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(d.reserved, []int{7}) {
			t.Errorf("beams %d: Reserve calls %v, want [7]", beams, d.reserved)
		}
	}
}
