package beamsearch

import (
	"fmt"
	"math"
	"slices"
)

// LogitsProcessor rewrites the next-token scores of one row in place.
//
// history is the row's tokens so far, the decoder start token first (so
// len(history)-1 tokens have been generated); scores has one entry per
// vocabulary id: raw logits under greedy search and sampling,
// log-probabilities under beam search. A processor may keep scratch space
// between calls, so one processor serves one search at a time.
type LogitsProcessor interface {
	Process(history []int64, scores []float32)
}

// Chain is a list of processors applied in order. It is itself a
// LogitsProcessor.
type Chain []LogitsProcessor

// Process applies every processor of the chain in order.
func (c Chain) Process(history []int64, scores []float32) {
	for _, p := range c {
		p.Process(history, scores)
	}
}

var negInf = float32(math.Inf(-1))

// NewChain builds the processors the options ask for, in generate()'s order:
// repetition penalty, no-repeat n-gram, bad words, min new tokens, forced
// BOS, forced EOS, suppressed tokens and, only when o.DoSample is set,
// temperature, top-k and top-p. Processors left at their neutral value are
// left out. It does not call o.Validate; Generate does.
func NewChain(o Options) (Chain, error) {
	var c Chain
	add := func(p LogitsProcessor, err error) error {
		if err != nil {
			return err
		}
		c = append(c, p)
		return nil
	}
	var err error
	if o.RepetitionPenalty != 1 {
		err = add(NewRepetitionPenalty(o.RepetitionPenalty))
	}
	if err == nil && o.NoRepeatNgramSize > 0 {
		err = add(NewNoRepeatNGram(o.NoRepeatNgramSize))
	}
	if err == nil && len(o.BadWordsIDs) > 0 {
		err = add(NewBadWords(o.BadWordsIDs, o.EOSTokenIDs))
	}
	if err == nil && o.MinNewTokens > 0 {
		err = add(NewMinNewTokens(o.MinNewTokens, o.EOSTokenIDs))
	}
	if err == nil && o.ForcedBOSTokenID != NoToken {
		err = add(NewForcedBOS(o.ForcedBOSTokenID))
	}
	if err == nil && o.ForcedEOSTokenID != NoToken {
		err = add(NewForcedEOS(o.MaxNewTokens, []int64{o.ForcedEOSTokenID}))
	}
	if err == nil && len(o.SuppressTokens) > 0 {
		err = add(NewSuppressTokens(o.SuppressTokens))
	}
	if err == nil && o.DoSample {
		// generate() keeps at least one token when not beam sampling.
		if o.Temperature != 1 {
			err = add(NewTemperature(o.Temperature))
		}
		if err == nil && o.TopK != 0 {
			err = add(NewTopK(o.TopK, 1))
		}
		if err == nil && o.TopP < 1 {
			err = add(NewTopP(o.TopP, 1))
		}
	}
	if err != nil {
		return nil, err
	}
	return c, nil
}

func badProcessor(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidOptions, fmt.Sprintf(format, args...))
}

func checkTokens(name string, ids []int64) error {
	for _, id := range ids {
		if id < 0 {
			return badProcessor("%s holds %d; token ids cannot be negative", name, id)
		}
	}
	return nil
}

// RepetitionPenalty makes tokens already in the history less likely:
// negative scores are multiplied by the penalty, others divided by it
// (HF's repetition_penalty; the decoder start token counts as history).
type RepetitionPenalty struct {
	penalty float32
	tmp     []float32
}

// NewRepetitionPenalty returns a repetition penalty; penalty must be above 0
// (1 changes nothing).
func NewRepetitionPenalty(penalty float64) (*RepetitionPenalty, error) {
	if !float32Factor(penalty) {
		return nil, badProcessor("repetition_penalty is %v; set it between %.3g and %.3g (1 disables it)", penalty, minFactor, maxFactor)
	}
	return &RepetitionPenalty{penalty: float32(penalty)}, nil
}

// Process implements LogitsProcessor.
func (p *RepetitionPenalty) Process(history []int64, scores []float32) {
	// Every penalised value is computed from the original scores first, so
	// a token that occurs twice is penalised once.
	if cap(p.tmp) < len(history) {
		// Sized like the history's buffer, so it grows as rarely as the history.
		p.tmp = make([]float32, len(history), max(cap(history), 2*len(history)))
	}
	p.tmp = p.tmp[:len(history)]
	for i, t := range history {
		s := scores[t]
		if s < 0 {
			p.tmp[i] = clampFinite(s, s*p.penalty)
		} else {
			p.tmp[i] = clampFinite(s, s/p.penalty)
		}
	}
	for i, t := range history {
		scores[t] = p.tmp[i]
	}
}

// NoRepeatNGram bans every token that would repeat an n-gram of the history
// (HF's no_repeat_ngram_size).
type NoRepeatNGram struct {
	n int
}

// NewNoRepeatNGram returns a no-repeat n-gram processor; n must be 1 or more.
func NewNoRepeatNGram(n int) (*NoRepeatNGram, error) {
	if n < 1 {
		return nil, badProcessor("no_repeat_ngram_size is %d; set it to 1 or more (0 disables it)", n)
	}
	return &NoRepeatNGram{n: n}, nil
}

// Process implements LogitsProcessor.
func (p *NoRepeatNGram) Process(history []int64, scores []float32) {
	n, l := p.n, len(history)
	if l+1 < p.n {
		return
	}
	prefix := history[l+1-n:]
	for i := 0; i+n <= l; i++ {
		if slices.Equal(history[i:i+n-1], prefix) {
			scores[history[i+n-1]] = negInf
		}
	}
}

// BadWords bans token sequences: a one-token sequence is always banned, a
// longer one bans its last token when the history ends with the rest
// (HF's bad_words_ids). A one-token sequence that is an EOS id is ignored,
// as generate() ignores it.
type BadWords struct {
	single []int64
	multi  [][]int64
}

// NewBadWords returns a bad-words processor for the given sequences.
func NewBadWords(seqs [][]int64, eos []int64) (*BadWords, error) {
	p := &BadWords{}
	for _, s := range seqs {
		if len(s) == 0 {
			return nil, badProcessor("bad_words_ids holds an empty sequence; remove it")
		}
		if err := checkTokens("bad_words_ids", s); err != nil {
			return nil, err
		}
		switch {
		case len(s) == 1 && slices.Contains(eos, s[0]):
		case len(s) == 1:
			p.single = append(p.single, s[0])
		default:
			p.multi = append(p.multi, slices.Clone(s))
		}
	}
	return p, nil
}

// Process implements LogitsProcessor.
func (p *BadWords) Process(history []int64, scores []float32) {
	for _, t := range p.single {
		scores[t] = negInf
	}
	for _, s := range p.multi {
		// generate() ignores a sequence longer than the history.
		if len(s) > len(history) {
			continue
		}
		if slices.Equal(history[len(history)-len(s)+1:], s[:len(s)-1]) {
			scores[s[len(s)-1]] = negInf
		}
	}
}

// MinNewTokens bans the EOS ids until min tokens have been generated
// (HF's min_new_tokens).
type MinNewTokens struct {
	min int
	eos []int64
}

// NewMinNewTokens returns a min-new-tokens processor.
func NewMinNewTokens(min int, eos []int64) (*MinNewTokens, error) {
	if min < 0 {
		return nil, badProcessor("min_new_tokens is %d; it cannot be negative", min)
	}
	if err := checkTokens("eos_token_id", eos); err != nil {
		return nil, err
	}
	return &MinNewTokens{min: min, eos: slices.Clone(eos)}, nil
}

// Process implements LogitsProcessor.
func (p *MinNewTokens) Process(history []int64, scores []float32) {
	if len(history)-1 < p.min {
		for _, t := range p.eos {
			scores[t] = negInf
		}
	}
}

// ForcedBOS forces a token as the first generated token: every other score
// becomes -inf and its own 0 (HF's forced_bos_token_id).
type ForcedBOS struct {
	ids []int64
}

// NewForcedBOS returns a forced-BOS processor.
func NewForcedBOS(id int64) (*ForcedBOS, error) {
	if id < 0 {
		return nil, badProcessor("forced_bos_token_id is %d; token ids cannot be negative", id)
	}
	return &ForcedBOS{ids: []int64{id}}, nil
}

// Process implements LogitsProcessor.
func (p *ForcedBOS) Process(history []int64, scores []float32) {
	if len(history) == 1 {
		forceTokens(scores, p.ids)
	}
}

// ForcedEOS forces the EOS ids as the last token allowed by maxNewTokens:
// every other score becomes -inf and theirs 0 (HF's forced_eos_token_id).
type ForcedEOS struct {
	maxNewTokens int
	eos          []int64
}

// NewForcedEOS returns a forced-EOS processor for a search of maxNewTokens
// tokens.
func NewForcedEOS(maxNewTokens int, eos []int64) (*ForcedEOS, error) {
	if maxNewTokens < 1 {
		return nil, badProcessor("max_new_tokens is %d; set it to 1 or more", maxNewTokens)
	}
	if len(eos) == 0 {
		return nil, badProcessor("forced_eos_token_id is empty; set it or leave the processor out")
	}
	if err := checkTokens("forced_eos_token_id", eos); err != nil {
		return nil, err
	}
	return &ForcedEOS{maxNewTokens: maxNewTokens, eos: slices.Clone(eos)}, nil
}

// Process implements LogitsProcessor.
func (p *ForcedEOS) Process(history []int64, scores []float32) {
	// generate() forces when cur_len == max_length-1, where cur_len counts
	// the decoder start token and max_length is max_new_tokens+1.
	if len(history) == p.maxNewTokens {
		forceTokens(scores, p.eos)
	}
}

func forceTokens(scores []float32, ids []int64) {
	for i := range scores {
		scores[i] = negInf
	}
	for _, t := range ids {
		scores[t] = 0
	}
}

// SuppressTokens bans a fixed set of tokens (HF's suppress_tokens).
type SuppressTokens struct {
	ids []int64
}

// NewSuppressTokens returns a suppress-tokens processor.
func NewSuppressTokens(ids []int64) (*SuppressTokens, error) {
	if err := checkTokens("suppress_tokens", ids); err != nil {
		return nil, err
	}
	return &SuppressTokens{ids: slices.Clone(ids)}, nil
}

// Process implements LogitsProcessor.
func (p *SuppressTokens) Process(_ []int64, scores []float32) {
	for _, t := range p.ids {
		scores[t] = negInf
	}
}

// Temperature divides the scores by a temperature (HF's temperature, used
// only when sampling).
type Temperature struct {
	t float32
}

// NewTemperature returns a temperature processor; t must be above 0.
func NewTemperature(t float64) (*Temperature, error) {
	if !float32Factor(t) {
		return nil, badProcessor("temperature is %v; set it between %.3g and %.3g", t, minFactor, maxFactor)
	}
	return &Temperature{t: float32(t)}, nil
}

// Process implements LogitsProcessor. When a temperature below 1 would
// push a finite score past float32's range, the scores are first shifted
// so that the largest finite one is 0 (softmax, top-k and top-p do not
// change under a shift): the top token stays finite at 0, and scores far
// below it go to -Inf, probability 0, as the limit of a temperature going
// to 0 has it. No finite score becomes +Inf or NaN.
func (p *Temperature) Process(_ []int64, scores []float32) {
	if p.t < 1 {
		top, bottom := negInf, float32(math.Inf(1))
		for _, s := range scores {
			if s-s == 0 { // finite
				top, bottom = max(top, s), min(bottom, s)
			}
		}
		if top != negInf && max(float64(top), -float64(bottom))/float64(p.t) > math.MaxFloat32 {
			for i, s := range scores {
				if s-s == 0 {
					scores[i] = (s - top) / p.t
				} else {
					scores[i] = s / p.t // ±Inf stays as it is, NaN too
				}
			}
			return
		}
	}
	for i := range scores {
		scores[i] /= p.t
	}
}

// clampFinite returns x, or the float32 of largest magnitude of its sign
// when x overflowed from the finite score s (an infinite s stays as it is).
func clampFinite(s, x float32) float32 {
	if x-x == 0 || s-s != 0 {
		return x // x finite, or s itself infinite or NaN
	}
	if x > 0 {
		return math.MaxFloat32
	}
	return -math.MaxFloat32
}

// TopK keeps the k highest scores (and any score tied with the k-th) and
// sets the others to -inf (HF's top_k).
type TopK struct {
	k    int
	heap []float32
}

// NewTopK returns a top-k processor keeping max(k, minKeep) tokens; k and
// minKeep must be 1 or more.
func NewTopK(k, minKeep int) (*TopK, error) {
	if k < 1 {
		return nil, badProcessor("top_k is %d; set it to 1 or more (0 disables it)", k)
	}
	if minKeep < 1 {
		return nil, badProcessor("top-k min_tokens_to_keep is %d; set it to 1 or more", minKeep)
	}
	return &TopK{k: max(k, minKeep)}, nil
}

// Process implements LogitsProcessor.
func (p *TopK) Process(_ []int64, scores []float32) {
	k := min(p.k, len(scores))
	if k == len(scores) {
		return
	}
	// A min-heap of the k largest scores seen; its root is the threshold.
	h := append(p.heap[:0], scores[:k]...)
	for i := k/2 - 1; i >= 0; i-- {
		siftDown32(h, i)
	}
	for _, s := range scores[k:] {
		if s > h[0] {
			h[0] = s
			siftDown32(h, 0)
		}
	}
	p.heap = h
	threshold := h[0]
	for i, s := range scores {
		if s < threshold {
			scores[i] = negInf
		}
	}
}

func siftDown32(h []float32, i int) {
	for {
		l := 2*i + 1
		if l >= len(h) {
			return
		}
		m := l
		if r := l + 1; r < len(h) && h[r] < h[l] {
			m = r
		}
		if !(h[m] < h[i]) {
			return
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
}

// TopP keeps the most likely tokens whose probabilities add up to p, with
// at least minKeep of them, and sets the others to -inf (HF's top_p: a
// token stays when the tokens less likely than it hold more than 1-p of
// the probability, that is when the tokens more likely than it hold less
// than p).
type TopP struct {
	p       float64
	minKeep int
	heap    []int32
}

// NewTopP returns a top-p processor; p must be in (0, 1] and minKeep 1 or
// more.
func NewTopP(p float64, minKeep int) (*TopP, error) {
	if !(p > 0 && p <= 1) {
		return nil, badProcessor("top_p is %v; set it in (0, 1]", p)
	}
	if minKeep < 1 {
		return nil, badProcessor("top-p min_tokens_to_keep is %d; set it to 1 or more", minKeep)
	}
	return &TopP{p: p, minKeep: minKeep}, nil
}

// Process implements LogitsProcessor.
func (p *TopP) Process(_ []int64, scores []float32) {
	lse, nan := logSumExp(scores)
	if nan || math.IsInf(lse, 0) {
		return
	}
	// Tokens at -inf have probability 0 and stay removed. The others go
	// into a max-heap and come out most likely first until the mass above
	// the next one reaches p; what is left in the heap is removed.
	if cap(p.heap) < len(scores) {
		p.heap = make([]int32, 0, len(scores))
	}
	h := p.heap[:0]
	for i, s := range scores {
		if s > negInf {
			h = append(h, int32(i))
		}
	}
	for i := len(h)/2 - 1; i >= 0; i-- {
		siftDownByScore(h, i, scores)
	}
	var above float64
	for kept := 0; len(h) > 0; kept++ {
		if kept >= p.minKeep && above >= p.p {
			break
		}
		above += math.Exp(float64(scores[h[0]]) - lse)
		h[0] = h[len(h)-1]
		h = h[:len(h)-1]
		siftDownByScore(h, 0, scores)
	}
	for _, i := range h {
		scores[i] = negInf
	}
	p.heap = h[:0]
}

// siftDownByScore restores a max-heap of token ids ordered by score, the
// lower id first among equal scores.
func siftDownByScore(h []int32, i int, scores []float32) {
	above := func(a, b int32) bool {
		return scores[a] > scores[b] || (scores[a] == scores[b] && a < b)
	}
	for {
		l := 2*i + 1
		if l >= len(h) {
			return
		}
		m := l
		if r := l + 1; r < len(h) && above(h[r], h[l]) {
			m = r
		}
		if !above(h[m], h[i]) {
			return
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
}
