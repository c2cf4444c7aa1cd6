//go:build !purego

package beamsearch

import "golang.org/x/sys/cpu"

// vectorLSE is whether logSumExp runs the AVX2 + FMA kernels of
// lse_amd64.s. Tests turn it off to compare with the scalar path.
var vectorLSE = cpu.X86.HasAVX2 && cpu.X86.HasFMA

// maxAVX2 returns the largest of x and whether any of x is NaN; len(x) is
// a positive multiple of 8.
//
//go:noescape
func maxAVX2(x []float32) (top float32, nan bool)

// expSumAVX2 returns the float64 sum of exp(x[i]-t) over x, len(x) a
// multiple of 8 and every x[i] <= t. Each exp is a float32 polynomial
// (relative error under 1e-7) of x[i]-t clamped at -87.3, so a term far
// below the largest counts about 1e-38 instead of 0.
//
//go:noescape
func expSumAVX2(x []float32, t float32) float64

// rowMax returns the largest score and whether any score is NaN.
func rowMax(scores []float32) (top float32, nan bool) {
	n := len(scores) &^ 7
	if !vectorLSE || n == 0 {
		return rowMaxGo(scores)
	}
	top, nan = maxAVX2(scores[:n])
	if nan {
		return 0, true
	}
	t, nan := rowMaxGo(scores[n:])
	return max(top, t), nan
}

// expSum returns the float64 sum of exp(scores[i]-t), every score <= t.
func expSum(scores []float32, t float32) float64 {
	n := len(scores) &^ 7
	if !vectorLSE || n == 0 {
		return expSumGo(scores, t)
	}
	return expSumAVX2(scores[:n], t) + expSumGo(scores[n:], t)
}
