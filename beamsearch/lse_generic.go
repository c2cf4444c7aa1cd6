//go:build !amd64 || purego

package beamsearch

// vectorLSE is false where there are no vector kernels (see lse_amd64.go).
var vectorLSE = false

func rowMax(scores []float32) (float32, bool)    { return rowMaxGo(scores) }
func expSum(scores []float32, t float32) float64 { return expSumGo(scores, t) }

func subLSE(dst, x []float32, lse float64) { subLSEGo(dst, x, lse) }

func firstAbove(x []float32, base, worst float32) int { return firstAboveGo(x, base, worst) }
