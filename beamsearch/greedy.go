package beamsearch

import (
	"context"
	"encoding/binary"
	"math"
	"math/rand/v2"
)

// greedyRow is one live row of greedy search or sampling.
type greedyRow struct {
	input, sample int
	history       []int64 // decoder start token first
	score         float64
	rng           *rand.Rand // nil unless sampling

	tok  int     // this step's token (set by pick)
	gain float64 // and its log-probability
}

// greedySearch runs greedy search, or sampling when opts.DoSample is set,
// with generate()'s stopping rules: a row ends at an EOS id or after
// MaxNewTokens tokens. Where generate() feeds pad to finished rows, the
// rows are dropped from the decoder instead.
func greedySearch(ctx context.Context, dec Decoder, batch int, opts Options, chain Chain, stream StreamFunc) ([]Result, error) {
	g := newGreedy(batch, opts, chain, stream, dec.VocabSize())
	if err := expand(dec, batch, g.draws); err != nil {
		return nil, err
	}
	return run(ctx, dec, g)
}

// greedy is the state of one request's greedy search or sampling: its
// rows, in the decoder's order, and the results of its inputs.
type greedy struct {
	opts   Options
	chain  Chain
	chain2 Chain // the second worker's (processors keep scratch space), made when first needed

	stepLogits []float32 // the logits and row base of the step advance is on
	stepBase   int
	stream     StreamFunc
	vocab      int
	draws      int // rows per input
	live       []greedyRow
	res        []Result
	pending    []int // per input: draws not finished
	keep       []int
}

// newGreedy starts the search of batch inputs, draws rows each once the
// decoder's rows are expanded.
func newGreedy(batch int, opts Options, chain Chain, stream StreamFunc, vocab int) *greedy {
	draws := 1
	if opts.DoSample {
		draws = opts.NumReturnSequences
	}
	g := &greedy{opts: opts, chain: chain, stream: stream, vocab: vocab, draws: draws,
		live: make([]greedyRow, 0, batch*draws), res: make([]Result, batch), pending: make([]int, batch)}
	capHint := min(opts.MaxNewTokens+1, 256)
	for i := range batch {
		for s := range draws {
			r := greedyRow{input: i, sample: s, history: make([]int64, 1, capHint)}
			r.history[0] = opts.DecoderStartTokenID
			if opts.DoSample {
				r.rng = sampleRNG(opts.Seed, i, s)
			}
			g.live = append(g.live, r)
		}
		g.res[i].Sequences = make([]Sequence, draws)
		g.pending[i] = draws
	}
	return g
}

func (g *greedy) rows() int         { return len(g.live) }
func (g *greedy) perInput() int     { return g.draws }
func (g *greedy) results() []Result { return g.res }
func (g *greedy) tokens(dst []int64) {
	for r := range g.live {
		dst[r] = g.live[r].history[len(g.live[r].history)-1]
	}
}

// pick chooses the token of rows [lo, hi) from their logits, with the
// chain of worker w: the per-row work of a step, which two workers may
// share (rows are independent; each row's random stream is its own).
func (g *greedy) pick(w, lo, hi int) error {
	logits, base := g.stepLogits, g.stepBase
	chain := g.chain
	if w == 1 {
		chain = g.chain2
	}
	vocab := g.vocab
	for r := lo; r < hi; r++ {
		row := &g.live[r]
		// Processors work in the decoder's buffer (the Decoder contract
		// allows it): no copy of the row.
		scores := logits[r*vocab : (r+1)*vocab]
		chain.Process(row.history, scores)
		// The processors make no NaN or +Inf of finite scores
		// (Temperature shifts them, RepetitionPenalty clamps), so any
		// here came from the decoder.
		top, lse, nan := maxLogSumExp(scores)
		if nan {
			return nanError(base + r)
		}
		if math.IsInf(float64(top), 1) {
			return infError(base + r)
		}
		if row.rng != nil {
			row.tok = sampleToken(scores, lse, row.rng)
		} else {
			row.tok = argmaxOf(scores, top)
		}
		row.gain = math.Inf(-1)
		if !math.IsInf(lse, -1) {
			row.gain = float64(scores[row.tok]) - lse
		}
	}
	return nil
}

// advance picks each row's next token from its logits (Rows()*vocab, the
// decoder's buffer: processors run in place), streams it, finishes rows at
// EOS or MaxNewTokens and appends base+r for each row r that runs on.
func (g *greedy) advance(logits []float32, base int, src []int) ([]int, bool, error) {
	opts, stream := g.opts, g.stream
	split := splitWork(len(g.live), g.vocab)
	if split && g.chain2 == nil {
		var err error
		if g.chain2, err = NewChain(opts); err != nil {
			return src, false, err
		}
	}
	g.stepLogits, g.stepBase = logits, base
	err := halves(len(g.live), split, g, (*greedy).pick)
	g.stepLogits = nil
	if err != nil {
		return src, false, err
	}
	g.keep = g.keep[:0]
	for r := range g.live {
		row := &g.live[r]
		tok := row.tok
		row.history = append(row.history, int64(tok))
		if !math.IsInf(row.gain, -1) {
			row.score += row.gain
		} else {
			row.score = math.Inf(-1)
		}
		if stream != nil {
			if err := stream(Step{Input: row.input, Sample: row.sample, Tokens: []int64{int64(tok)}}); err != nil {
				return src, false, err
			}
		}
		generated := row.history[1:]
		if !isEOS(opts.EOSTokenIDs, int64(tok)) && len(generated) < opts.MaxNewTokens {
			g.keep = append(g.keep, r)
			continue
		}
		g.res[row.input].Sequences[row.sample] = Sequence{
			Tokens:       append([]int64(nil), generated...),
			Score:        row.score,
			FinishReason: finishReason(opts.EOSTokenIDs, generated),
		}
		g.pending[row.input]--
		if g.pending[row.input] == 0 && stream != nil {
			if err := stream(Step{Input: row.input, Final: true, Sequences: g.res[row.input].Sequences}); err != nil {
				return src, false, err
			}
		}
	}
	for i, r := range g.keep {
		src = append(src, base+r)
		g.live[i] = g.live[r]
	}
	g.live = g.live[:len(g.keep)]
	return src, len(g.live) == 0, nil
}

// argmax returns the first index of the largest score, as torch.argmax.
func argmax(scores []float32) int {
	best := 0
	for i, s := range scores {
		if s > scores[best] {
			best = i
		}
	}
	return best
}

// sampleToken draws a token from softmax(scores); lse is logSumExp(scores).
func sampleToken(scores []float32, lse float64, rng *rand.Rand) int {
	if math.IsInf(lse, -1) {
		return 0 // nothing is possible; match argmax over all -inf
	}
	u := rng.Float64()
	var cum float64
	last := 0
	for i, s := range scores {
		if s == negInf {
			continue
		}
		cum += math.Exp(float64(s) - lse)
		last = i
		if u < cum {
			return i
		}
	}
	return last // rounding left u above the total: take the last possible token
}

// sampleRNG returns the random stream of one draw of one input: ChaCha8
// keyed by the seed, the input index and the draw index, so each stream is
// reproducible and independent of the others.
func sampleRNG(seed uint64, input, draw int) *rand.Rand {
	var key [32]byte
	copy(key[:8], "s2s-samp")
	binary.LittleEndian.PutUint64(key[8:], seed)
	binary.LittleEndian.PutUint64(key[16:], uint64(input))
	binary.LittleEndian.PutUint64(key[24:], uint64(draw))
	return rand.New(rand.NewChaCha8(key))
}
