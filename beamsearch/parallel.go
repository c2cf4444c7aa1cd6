package beamsearch

import "runtime"

// parallelLogits is the number of logits of a step from which the search
// splits its per-row work (log-softmax, processors, top-k) over two
// goroutines: about a millisecond of work, well above the cost of
// starting one. Between two decoder steps ONNX Runtime's threads are idle,
// so the second core is free for it.
var parallelLogits = 1 << 20

// splitWork reports whether a step of rows rows of vocab logits is split.
func splitWork(rows, vocab int) bool {
	return rows >= 2 && rows*vocab >= parallelLogits && runtime.GOMAXPROCS(0) >= 2
}

// halves runs f(t, 0, 0, mid) and f(t, 1, mid, n) concurrently when split,
// else f(t, 0, 0, n); it returns the first half's error, else the
// second's, so that errors come in row order. f is a method expression,
// so that an unsplit step allocates nothing.
func halves[T any](n int, split bool, t T, f func(t T, worker, lo, hi int) error) error {
	if !split {
		return f(t, 0, 0, n)
	}
	mid := n / 2
	done := make(chan error, 1)
	go func() { done <- f(t, 1, mid, n) }()
	err0 := f(t, 0, 0, mid)
	err1 := <-done
	if err0 != nil {
		return err0
	}
	return err1
}
