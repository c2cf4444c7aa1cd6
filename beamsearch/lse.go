package beamsearch

import "math"

// logSumExp returns log(sum(exp(scores))) in float64, -inf when every
// score is -inf, and nan set when a score is NaN. It is the search's
// hottest loop (one exp per logit per row per step): on amd64 with AVX2
// the max and the exp sum run as vector kernels (lse_amd64.s), whose
// result differs from the scalar float64 path by about 1e-7 relative.
func logSumExp(scores []float32) (lse float64, nan bool) {
	_, lse, nan = maxLogSumExp(scores)
	return lse, nan
}

// maxLogSumExp is logSumExp that also returns the largest score.
func maxLogSumExp(scores []float32) (top float32, lse float64, nan bool) {
	top, nan = rowMax(scores)
	if nan {
		return 0, 0, true
	}
	if top == negInf || math.IsInf(float64(top), 1) {
		return top, float64(top), false
	}
	return top, float64(top) + math.Log(expSum(scores, top)), false
}

// argmaxOf returns the first index of top in scores, top being their
// largest (NaN-free) value, as torch.argmax: 0 when every score is -inf.
func argmaxOf(scores []float32, top float32) int {
	if top == negInf {
		return 0
	}
	// x > the float below top is x >= top, that is x == top.
	i := firstAbove(scores, 0, math.Nextafter32(top, negInf))
	if i == len(scores) {
		return argmax(scores) // not reached for a NaN-free row; stay correct anyway
	}
	return i
}

// rowMaxGo is rowMax without vector instructions.
func rowMaxGo(scores []float32) (top float32, nan bool) {
	top = negInf
	for _, s := range scores {
		if s > top {
			top = s
		} else if s != s {
			return 0, true
		}
	}
	return top, false
}

// expSumGo is expSum without vector instructions, exp in float64.
func expSumGo(scores []float32, t float32) float64 {
	tt := float64(t)
	var sum float64
	for _, s := range scores {
		sum += math.Exp(float64(s) - tt)
	}
	return sum
}

// subLSEGo is subLSE without vector instructions.
func subLSEGo(dst, x []float32, lse float64) {
	dst = dst[:len(x)]
	for i, v := range x {
		dst[i] = float32(float64(v) - lse)
	}
}

// firstAboveGo is firstAbove without vector instructions.
func firstAboveGo(x []float32, base, worst float32) int {
	for i, v := range x {
		if v+base > worst {
			return i
		}
	}
	return len(x)
}
