//go:build !purego

package beamsearch

// vectorLSE is whether logSumExp runs the AVX2 + FMA kernels of
// lse_amd64.s. Tests turn it off to compare with the scalar path.
var vectorLSE = hasAVX2FMA()

// cpuid and xgetbv are the instructions (cpu_amd64.s).
func cpuid(leaf, sub uint32) (eax, ebx, ecx, edx uint32)
func xgetbv() (eax, edx uint32)

// hasAVX2FMA reports whether the CPU has AVX2 and FMA and the operating
// system saves the YMM registers (the package stays on the standard
// library: no golang.org/x/sys/cpu).
func hasAVX2FMA() bool {
	maxLeaf, _, _, _ := cpuid(0, 0)
	if maxLeaf < 7 {
		return false
	}
	_, _, ecx1, _ := cpuid(1, 0)
	const fma, osxsave, avx = 1 << 12, 1 << 27, 1 << 28
	if ecx1&(fma|osxsave|avx) != fma|osxsave|avx {
		return false
	}
	if xcr0, _ := xgetbv(); xcr0&0x6 != 0x6 { // XMM and YMM state
		return false
	}
	_, ebx7, _, _ := cpuid(7, 0)
	const avx2 = 1 << 5
	return ebx7&avx2 != 0
}

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

// subAVX2 writes float32(float64(x[i]) - lse) to dst[i]; len(x) is a
// multiple of 8.
//
//go:noescape
func subAVX2(dst, x []float32, lse float64)

// firstAboveAVX2 returns the first i with x[i]+base > worst, or len(x);
// len(x) is a multiple of 8.
//
//go:noescape
func firstAboveAVX2(x []float32, base, worst float32) int

// subLSE writes float32(float64(x[i]) - lse) to dst[i] for every i of x.
func subLSE(dst, x []float32, lse float64) {
	n := len(x) &^ 7
	if !vectorLSE || n == 0 {
		subLSEGo(dst, x, lse)
		return
	}
	dst = dst[:len(x)]
	subAVX2(dst[:n], x[:n], lse)
	subLSEGo(dst[n:], x[n:], lse)
}

// firstAbove returns the first i with x[i]+base > worst (float32), or len(x).
func firstAbove(x []float32, base, worst float32) int {
	n := len(x) &^ 7
	if !vectorLSE || n == 0 {
		return firstAboveGo(x, base, worst)
	}
	if i := firstAboveAVX2(x[:n], base, worst); i < n {
		return i
	}
	return n + firstAboveGo(x[n:], base, worst)
}
