package beamsearch

import (
	"math"
	"math/rand/v2"
	"testing"
)

// lseReference is log-sum-exp in float64 with math.Exp, no kernels.
func lseReference(scores []float32) (float64, bool) {
	top, nan := rowMaxGo(scores)
	if nan {
		return 0, true
	}
	if top == negInf || math.IsInf(float64(top), 1) {
		return float64(top), false
	}
	return float64(top) + math.Log(expSumGo(scores, top)), false
}

// TestLogSumExpKernels checks logSumExp (the vector kernels where the CPU
// has them) against the float64 reference: every length from 0 to 70 (the
// kernels take 16 and 8 at a time, the rest is scalar), a vocabulary-sized
// row, rows with -inf, +inf and NaN in the vector part and in the tail,
// and spreads of logits that put most terms under exp's clamp.
func TestLogSumExpKernels(t *testing.T) {
	if !vectorLSE {
		t.Log("no AVX2+FMA (or purego): checking the scalar path only")
	}
	rng := rand.New(rand.NewPCG(3, 4))
	row := func(n int, spread float64) []float32 {
		x := make([]float32, n)
		for i := range x {
			x[i] = float32(rng.NormFloat64()*spread + 5)
		}
		return x
	}
	check := func(name string, x []float32) {
		t.Helper()
		got, gotNaN := logSumExp(x)
		want, wantNaN := lseReference(x)
		if gotNaN != wantNaN {
			t.Fatalf("%s (len %d): nan %v, want %v", name, len(x), gotNaN, wantNaN)
		}
		if wantNaN {
			return
		}
		if math.IsInf(want, 0) || math.IsInf(got, 0) {
			if got != want {
				t.Fatalf("%s (len %d): %v, want %v", name, len(x), got, want)
			}
			return
		}
		if d := math.Abs(got - want); d > 1e-6*max(1, math.Abs(want)) {
			t.Fatalf("%s (len %d): %.9f, want %.9f (diff %g)", name, len(x), got, want, d)
		}
	}
	for n := 0; n <= 70; n++ {
		for _, spread := range []float64{0.01, 3, 60} {
			x := row(n, spread)
			check("random", x)
			for _, at := range []int{0, n / 2, n - 1} {
				if n == 0 {
					continue
				}
				for _, v := range []float32{negInf, float32(math.Inf(1)), float32(math.NaN())} {
					y := append([]float32(nil), x...)
					y[at] = v
					check("special", y)
				}
			}
		}
		allMinus := make([]float32, n)
		for i := range allMinus {
			allMinus[i] = negInf
		}
		check("all -inf", allMinus)
	}
	check("vocabulary", row(58101, 3))
	check("vocabulary, wide", row(58101, 40))
	masked := row(32128, 2)
	for i := range masked {
		if i%3 != 0 {
			masked[i] = negInf
		}
	}
	check("two thirds -inf", masked)
}

// BenchmarkLogSumExp is the per-logit cost of log-sum-exp over an
// opus-mt-sized row, with the kernels and with the scalar path.
func BenchmarkLogSumExp(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	x := make([]float32, 58101)
	for i := range x {
		x[i] = float32(rng.NormFloat64() * 3)
	}
	benchKernelPaths(b, func(b *testing.B) {
		for b.Loop() {
			logSumExp(x)
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(x)), "ns/logit")
	})
}

// benchKernelPaths runs body as sub-benchmarks "vector" (the kernels;
// skipped where there are none) and "scalar".
func benchKernelPaths(b *testing.B, body func(b *testing.B)) {
	for _, vector := range []bool{true, false} {
		name := "scalar"
		if vector {
			name = "vector"
		}
		b.Run(name, func(b *testing.B) {
			if vector && !vectorLSE {
				b.Skip("no vector kernels on this CPU or build")
			}
			defer func(v bool) { vectorLSE = v }(vectorLSE)
			vectorLSE = vector
			body(b)
		})
	}
}

// TestSubAndFirstAboveKernels wants the kernels bit for bit equal to the
// scalar loops at every length up to 70 and at a vocabulary-sized row:
// subLSE rounds as Go rounds float64 to float32, and firstAbove finds the
// same first index for thresholds that no, one, a few or every token beats.
func TestSubAndFirstAboveKernels(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	lengths := []int{58101}
	for n := 0; n <= 70; n++ {
		lengths = append(lengths, n)
	}
	for _, n := range lengths {
		x := make([]float32, n)
		for i := range x {
			x[i] = float32(rng.NormFloat64() * 4)
		}
		if n > 3 {
			x[n/3] = negInf
		}
		lse := rng.NormFloat64()*3 + 10
		got := make([]float32, n)
		want := make([]float32, n)
		subLSE(got, x, lse)
		subLSEGo(want, x, lse)
		for i := range want {
			if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
				t.Fatalf("subLSE len %d [%d]: %v, want %v", n, i, got[i], want[i])
			}
		}
		base := float32(rng.NormFloat64())
		for _, worst := range []float32{float32(math.Inf(1)), 20, 9, 5, 0, negInf} {
			for _, from := range []int{0, n / 2} {
				g, w := firstAbove(x[from:], base, worst), firstAboveGo(x[from:], base, worst)
				if g != w {
					t.Fatalf("firstAbove len %d from %d worst %v: %d, want %d", n, from, worst, g, w)
				}
			}
		}
		if n > 0 { // the last token alone beats the threshold
			y := append([]float32(nil), x...)
			for i := range y {
				y[i] = -1
			}
			y[n-1] = 1
			if g := firstAbove(y, 0, 0); g != n-1 {
				t.Fatalf("firstAbove len %d: %d, want %d", n, g, n-1)
			}
		}
	}
}

// TestArgmaxOf wants argmaxOf equal to the scalar argmax (first index of
// the largest) on rows with ties, -inf and +inf, at lengths around the
// kernels' 8 and 16.
func TestArgmaxOf(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for n := 1; n <= 70; n++ {
		for trial := range 20 {
			x := make([]float32, n)
			for i := range x {
				x[i] = float32(rng.IntN(5)) // many ties
			}
			switch trial % 4 {
			case 1:
				x[rng.IntN(n)] = float32(math.Inf(1))
			case 2:
				for i := range x {
					x[i] = negInf
				}
			case 3:
				x[rng.IntN(n)] = negInf
			}
			top, _ := rowMax(x)
			if g, w := argmaxOf(x, top), argmax(x); g != w {
				t.Fatalf("len %d %v: argmaxOf %d, argmax %d", n, x, g, w)
			}
		}
	}
}

// BenchmarkTopK is the beam step's per-row work on an opus-mt-sized row:
// log-softmax into the scratch row, then offering every token to the heap
// of the best 2 x 4 continuations (beam 4), as beamSearch does per beam.
func BenchmarkTopK(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	x := make([]float32, 58101)
	for i := range x {
		x[i] = float32(rng.NormFloat64() * 3)
	}
	lp := make([]float32, len(x))
	const keep = 8
	h := make([]candidate, 0, keep)
	benchKernelPaths(b, func(b *testing.B) {
		for b.Loop() {
			h = h[:0]
			for beam := range int32(4) {
				logSoftmax(lp, x, 0)
				h = offerAll(h, keep, lp, -float32(beam), beam)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*4*len(x)), "ns/logit")
	})
}
