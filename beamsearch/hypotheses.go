package beamsearch

// hypothesis is one finished beam, or an empty slot.
type hypothesis struct {
	tokens   []int64 // generated tokens, EOS included, no decoder start token
	score    float32 // length-penalised; beamSentinel for an empty slot
	finished bool
}

// hypotheses is the n-best list of finished beams of one input, Hugging
// Face's BeamHypotheses as generate() 4.57 keeps it: num_beams slots, best
// first, that start empty at the -1e9 sentinel score. A new hypothesis
// enters when it scores strictly above a slot (earlier entries win ties)
// and pushes the lower ones down, so an entry's rank never improves.
type hypotheses struct {
	slots         []hypothesis
	lengthPenalty float64
	earlyStopping string
	maxNewTokens  int
	// improvable is generate()'s is_early_stop_heuristic_unsatisfied: false
	// once no running beam can beat the slots any more. It never comes back.
	improvable bool
}

func newHypotheses(numBeams int, opts Options) *hypotheses {
	h := &hypotheses{
		slots:         make([]hypothesis, numBeams),
		lengthPenalty: opts.LengthPenalty,
		earlyStopping: opts.EarlyStopping,
		maxNewTokens:  opts.MaxNewTokens,
		improvable:    true,
	}
	for i := range h.slots {
		h.slots[i].score = beamSentinel
	}
	return h
}

// add offers a beam that just finished, with its summed log-probabilities.
// tokens are copied.
func (h *hypotheses) add(tokens []int64, sumLogProbs float32) {
	score := lengthPenalized(sumLogProbs, len(tokens), h.lengthPenalty)
	pos := 0
	for pos < len(h.slots) && h.slots[pos].score >= score {
		pos++
	}
	if pos == len(h.slots) {
		return
	}
	last := h.slots[len(h.slots)-1] // its token buffer is reused
	copy(h.slots[pos+1:], h.slots[pos:len(h.slots)-1])
	last.tokens = append(last.tokens[:0], tokens...)
	last.score = score
	last.finished = true
	h.slots[pos] = last
}

// full reports whether every slot holds a finished hypothesis.
func (h *hypotheses) full() bool {
	for _, s := range h.slots {
		if !s.finished {
			return false
		}
	}
	return true
}

// update is generate()'s _check_early_stop_heuristic, run after a step
// that left generated tokens in every beam: can the best running beam,
// with summed log-probabilities best, still beat a slot? Under "never" with
// a positive length penalty the best case is a beam grown to
// MaxNewTokens; otherwise it is the current length.
func (h *hypotheses) update(best float32, generated int) {
	if !h.improvable {
		return
	}
	length := generated
	if h.earlyStopping == EarlyStoppingNever && h.lengthPenalty > 0 {
		length = h.maxNewTokens
	}
	bestPossible := lengthPenalized(best, length, h.lengthPenalty)
	worst := h.slots[0].score
	for _, s := range h.slots {
		worst = min(worst, s.score)
	}
	for _, s := range h.slots {
		w := beamSentinel
		if s.finished {
			w = worst
		}
		if bestPossible > w {
			return
		}
	}
	h.improvable = false
}

// done reports whether the slots can no longer change: no running beam can
// improve them, or early stopping is "true" and every slot is finished.
func (h *hypotheses) done() bool {
	return !h.improvable || (h.earlyStopping == EarlyStoppingTrue && h.full())
}

// sequences returns the best n hypotheses. An empty slot (possible only
// when fewer than num_beams hypotheses have a score above -1e9) comes back
// as generate() returns it: no tokens and score -1e9.
func (h *hypotheses) sequences(n int, eos []int64) []Sequence {
	out := make([]Sequence, n)
	for i := range out {
		s := h.slots[i]
		out[i] = Sequence{
			Tokens:       append([]int64{}, s.tokens...),
			Score:        float64(s.score),
			FinishReason: finishReason(eos, s.tokens),
		}
	}
	return out
}
