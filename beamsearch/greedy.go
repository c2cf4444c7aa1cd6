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
}

// greedySearch runs greedy search, or sampling when opts.DoSample is set,
// with generate()'s stopping rules: a row ends at an EOS id or after
// MaxNewTokens tokens. Where generate() feeds pad to finished rows, the
// rows are dropped from the decoder instead.
func greedySearch(ctx context.Context, dec Decoder, batch int, opts Options, chain Chain, stream StreamFunc) ([]Result, error) {
	vocab := dec.VocabSize()
	draws := 1
	if opts.DoSample {
		draws = opts.NumReturnSequences
	}
	if err := expand(dec, batch, draws); err != nil {
		return nil, err
	}
	rows := make([]greedyRow, 0, batch*draws)
	capHint := min(opts.MaxNewTokens+1, 256)
	for i := range batch {
		for s := range draws {
			r := greedyRow{input: i, sample: s, history: make([]int64, 1, capHint)}
			r.history[0] = opts.DecoderStartTokenID
			if opts.DoSample {
				r.rng = sampleRNG(opts.Seed, i, s)
			}
			rows = append(rows, r)
		}
	}
	results := make([]Result, batch)
	pending := make([]int, batch)
	for i := range results {
		results[i].Sequences = make([]Sequence, draws)
		pending[i] = draws
	}
	tokens := make([]int64, len(rows))
	keep := make([]int, 0, len(rows))
	for {
		for r := range rows {
			tokens[r] = rows[r].history[len(rows[r].history)-1]
		}
		logits, err := step(ctx, dec, tokens[:len(rows)], vocab)
		if err != nil {
			return nil, err
		}
		keep = keep[:0]
		for r := range rows {
			row := &rows[r]
			// Processors work in the decoder's buffer (the Decoder contract
			// allows it): no copy of the row.
			scores := logits[r*vocab : (r+1)*vocab]
			chain.Process(row.history, scores)
			// The processors make no NaN or +Inf of finite scores
			// (Temperature shifts them, RepetitionPenalty clamps), so any
			// here came from the decoder.
			top, lse, nan := maxLogSumExp(scores)
			if nan {
				return nil, nanError(r)
			}
			if math.IsInf(float64(top), 1) {
				return nil, infError(r)
			}
			var tok int
			if row.rng != nil {
				tok = sampleToken(scores, lse, row.rng)
			} else {
				tok = argmaxOf(scores, top)
			}
			row.history = append(row.history, int64(tok))
			if !math.IsInf(lse, -1) {
				row.score += float64(scores[tok]) - lse
			} else {
				row.score = math.Inf(-1)
			}
			if stream != nil {
				if err := stream(Step{Input: row.input, Sample: row.sample, Tokens: []int64{int64(tok)}}); err != nil {
					return nil, err
				}
			}
			generated := row.history[1:]
			if !isEOS(opts.EOSTokenIDs, int64(tok)) && len(generated) < opts.MaxNewTokens {
				keep = append(keep, r)
				continue
			}
			results[row.input].Sequences[row.sample] = Sequence{
				Tokens:       append([]int64(nil), generated...),
				Score:        row.score,
				FinishReason: finishReason(opts.EOSTokenIDs, generated),
			}
			pending[row.input]--
			if pending[row.input] == 0 && stream != nil {
				if err := stream(Step{Input: row.input, Final: true, Sequences: results[row.input].Sequences}); err != nil {
					return nil, err
				}
			}
		}
		if len(keep) == 0 {
			return results, nil
		}
		if err := reorder(dec, keep, len(rows)); err != nil {
			return nil, err
		}
		for i, r := range keep {
			rows[i] = rows[r]
		}
		rows = rows[:len(keep)]
	}
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
