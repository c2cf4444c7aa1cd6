package beamsearch

import (
	"context"
	"math"
	"slices"
)

// beamInput is the search state of one input that is still running.
type beamInput struct {
	input   int
	hyps    *hypotheses
	beams   [][]int64 // running histories, decoder start token first, best first
	spare   [][]int64 // next step's histories, swapped with beams
	scores  []float32 // running summed log-probabilities, -1e9 sentinels included
	origin  []int     // which previous beam each beam continues
	emitted int       // tokens of the best sequence already streamed
}

// candidate is one (beam, token) continuation of an input.
type candidate struct {
	score float32
	beam  int32
	token int32
}

// beamSearch is generate()'s _beam_search for an encoder-decoder, without
// sampling. Per input and step it keeps the best
// max(2, 1+len(EOS ids))*num_beams continuations over beams x vocabulary;
// those among the best num_beams that end (EOS, or MaxNewTokens reached)
// are offered to the input's hypotheses, and the best num_beams that do not
// end run on. An input whose hypotheses can no longer change is finished
// and its rows leave the decoder.
func beamSearch(ctx context.Context, dec Decoder, batch int, opts Options, chain Chain, stream StreamFunc) ([]Result, error) {
	vocab := dec.VocabSize()
	nb := opts.NumBeams
	keep := max(2, 1+len(opts.EOSTokenIDs)) * nb
	if err := expand(dec, batch, nb); err != nil {
		return nil, err
	}
	capHint := min(opts.MaxNewTokens+1, 256)
	live := make([]*beamInput, batch)
	for i := range live {
		in := &beamInput{
			input:  i,
			hyps:   newHypotheses(nb, opts),
			beams:  make([][]int64, nb),
			spare:  make([][]int64, nb),
			scores: make([]float32, nb),
			origin: make([]int, nb),
		}
		for j := range nb {
			in.beams[j] = append(make([]int64, 0, capHint), opts.DecoderStartTokenID)
			in.spare[j] = make([]int64, 0, capHint)
			// Only the first beam may start: the others are copies of it.
			if j > 0 {
				in.scores[j] = beamSentinel
			}
		}
		live[i] = in
	}
	results := make([]Result, batch)
	tokens := make([]int64, batch*nb)
	src := make([]int, 0, batch*nb)
	logProbs := make([]float32, vocab)
	heap := make([]candidate, 0, keep)
	order := make([]int, keep)
	finished := make([]int64, 0, capHint)
	for generated := 1; ; generated++ {
		rows := len(live) * nb
		for p, in := range live {
			for j, b := range in.beams {
				tokens[p*nb+j] = b[len(b)-1]
			}
		}
		logits, err := step(ctx, dec, tokens[:rows], vocab)
		if err != nil {
			return nil, err
		}
		atMax := generated >= opts.MaxNewTokens
		src = src[:0]
		next := live[:0]
		for p, in := range live {
			// Top continuations over beams x vocabulary.
			heap = heap[:0]
			for j := range nb {
				base := in.scores[j]
				// Processed log-probabilities are at most 0, so a beam whose
				// score cannot beat the worst kept candidate adds nothing.
				if len(heap) == keep && !(base > heap[0].score) {
					continue
				}
				row := p*nb + j
				if err := logSoftmax(logProbs, logits[row*vocab:(row+1)*vocab], row); err != nil {
					return nil, err
				}
				chain.Process(in.beams[j], logProbs)
				heap = offerAll(heap, keep, logProbs, base, int32(j))
			}
			cands := sortCandidates(heap)

			// Only the best num_beams continuations may finish.
			for c := range min(nb, len(cands)) {
				cd := cands[c]
				if atMax || isEOS(opts.EOSTokenIDs, int64(cd.token)) {
					finished = append(append(finished[:0], in.beams[cd.beam][1:]...), int64(cd.token))
					in.hyps.add(finished, cd.score)
				}
			}
			if !atMax {
				selectRunning(in, cands, order[:len(cands)], opts.EOSTokenIDs)
				in.hyps.update(in.scores[0], generated)
			}
			if atMax || in.hyps.done() {
				seqs := in.hyps.sequences(opts.NumReturnSequences, opts.EOSTokenIDs)
				results[in.input].Sequences = seqs
				if stream != nil {
					var rest []int64
					if best := seqs[0].Tokens; in.emitted <= len(best) {
						rest = slices.Clone(best[in.emitted:])
					}
					if err := stream(Step{Input: in.input, Tokens: rest, Final: true, Sequences: seqs}); err != nil {
						return nil, err
					}
				}
				continue
			}
			if stream != nil {
				if err := streamSettled(in, stream); err != nil {
					return nil, err
				}
			}
			for _, o := range in.origin {
				src = append(src, p*nb+o)
			}
			next = append(next, in)
		}
		clear(live[len(next):])
		live = next
		if len(live) == 0 {
			return results, nil
		}
		if err := reorder(dec, src, rows); err != nil {
			return nil, err
		}
	}
}

// logSoftmax writes log_softmax(logits) to dst in float32; a NaN or +Inf
// logit breaks the decoder contract (an error naming row).
func logSoftmax(dst, logits []float32, row int) error {
	top, lse, nan := maxLogSumExp(logits)
	if nan {
		return nanError(row)
	}
	if math.IsInf(float64(top), 1) {
		return infError(row)
	}
	if math.IsInf(lse, -1) {
		// All -inf: nothing is possible; keep generate()'s NaN-free view.
		copy(dst, logits)
		return nil
	}
	subLSE(dst, logits, lse)
	return nil
}

// offerAll offers every token of one beam to a min-heap of the best keep
// candidates. The root is the worst kept candidate; among equal scores the
// one seen first (lower beam, then lower token) is kept, so a later equal
// score never displaces it.
func offerAll(h []candidate, keep int, logProbs []float32, base float32, beam int32) []candidate {
	v := 0
	for ; len(h) < keep && v < len(logProbs); v++ {
		h = append(h, candidate{score: logProbs[v] + base, beam: beam, token: int32(v)})
		siftUp(h, len(h)-1)
	}
	if v == len(logProbs) {
		return h
	}
	// Past the first keep tokens a token enters only by beating the worst
	// kept score, which most do not: firstAbove skips to the next that does.
	worst := h[0].score
	for v < len(logProbs) {
		v += firstAbove(logProbs[v:], base, worst)
		if v == len(logProbs) {
			break
		}
		h[0] = candidate{score: logProbs[v] + base, beam: beam, token: int32(v)}
		siftDown(h, 0)
		worst = h[0].score
		v++
	}
	return h
}

// worse orders the heap: lower score first; among equal scores, the later
// candidate (higher beam, then token) first.
func worse(a, b candidate) bool {
	if a.score != b.score {
		return a.score < b.score
	}
	if a.beam != b.beam {
		return a.beam > b.beam
	}
	return a.token > b.token
}

func siftUp(h []candidate, i int) {
	for i > 0 {
		parent := (i - 1) / 2
		if !worse(h[i], h[parent]) {
			return
		}
		h[i], h[parent] = h[parent], h[i]
		i = parent
	}
}

func siftDown(h []candidate, i int) {
	for {
		l := 2*i + 1
		if l >= len(h) {
			return
		}
		m := l
		if r := l + 1; r < len(h) && worse(h[r], h[l]) {
			m = r
		}
		if !worse(h[m], h[i]) {
			return
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
}

// sortCandidates sorts the heap best first, in place.
func sortCandidates(h []candidate) []candidate {
	slices.SortFunc(h, func(a, b candidate) int {
		switch {
		case worse(b, a):
			return -1
		case worse(a, b):
			return 1
		}
		return 0
	})
	return h
}

// selectRunning picks the next running beams as generate() does: the best
// num_beams candidates once the ones that hit EOS have lost 1e9.
func selectRunning(in *beamInput, cands []candidate, order []int, eos []int64) {
	key := func(c int) float32 {
		if isEOS(eos, int64(cands[c].token)) {
			return cands[c].score + beamSentinel
		}
		return cands[c].score
	}
	// Insertion sort of candidate positions by key, best first; the sort is
	// stable, so equal keys keep the candidates' order.
	for c := range order {
		order[c] = c
		k := key(c)
		i := c
		for i > 0 && key(order[i-1]) < k {
			order[i] = order[i-1]
			i--
		}
		order[i] = c
	}
	for j := range in.beams {
		cd := cands[order[j]]
		in.origin[j] = int(cd.beam)
		in.spare[j] = append(append(in.spare[j][:0], in.beams[cd.beam]...), int64(cd.token))
		in.scores[j] = key(order[j])
	}
	in.beams, in.spare = in.spare, in.beams
}

// streamSettled streams the tokens of the best sequence that no later step
// can change: the prefix shared by every running beam and by the best
// finished hypothesis. The final best is one of those or grows from a
// running beam, since a finished hypothesis's rank only gets worse.
func streamSettled(in *beamInput, stream StreamFunc) error {
	first := in.beams[0][1:]
	best := in.hyps.slots[0]
	n := in.emitted
	for ; n < len(first); n++ {
		t := first[n]
		same := !best.finished || (n < len(best.tokens) && best.tokens[n] == t)
		for _, b := range in.beams[1:] {
			same = same && b[1+n] == t
		}
		if !same {
			break
		}
	}
	if n == in.emitted {
		return nil
	}
	tokens := slices.Clone(first[in.emitted:n])
	in.emitted = n
	return stream(Step{Input: in.input, Tokens: tokens})
}
