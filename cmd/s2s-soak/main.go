// Command s2s-soak runs many generations in one process, over mixed
// options (greedy, beam, sampling, streaming, batches) with the model
// closed and opened again every so often, and prints the process's
// resident memory, the Go heap and the goroutines every -every
// generations. It fails when any grew past its bound between the end of
// the warm-up and the end: memory must stay flat. scripts/soak.sh runs it.
//
//	go run ./cmd/s2s-soak -model testdata/t5-tiny -n 10000
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"os"
	goruntime "runtime"
	"strconv"
	"strings"
	"time"

	"github.com/s2s-dev/s2s"
	"github.com/s2s-dev/s2s/runtime"
)

var inputs = []string{
	"hello world", "the quick brown fox jumps over the lazy dog", "a", "",
	"pronunciation", "Albert Einstein, when asked to describe radio, replied", "ünïcödé and 漢字 😀",
	"one two three four five six seven eight nine ten eleven twelve", "x y", "stream me",
}

func main() {
	model := flag.String("model", "testdata/t5-tiny", "model directory")
	n := flag.Int("n", 10000, "generations")
	every := flag.Int("every", 1000, "print a row every this many generations")
	warmup := flag.Int("warmup", 1000, "generations before the baseline row")
	reopen := flag.Int("reopen", 500, "close the model and open it again every this many generations (0: never)")
	threads := flag.Int("threads", 1, "ONNX Runtime intra-op threads")
	maxRSS := flag.Float64("max-rss-growth-mb", 48, "fail when resident memory grows more than this from the baseline to the end")
	maxHeap := flag.Float64("max-heap-growth-mb", 8, "fail when the live Go heap grows more than this")
	maxG := flag.Int("max-goroutine-growth", 2, "fail when goroutines grow more than this")
	flag.Parse()
	if err := run(*model, *n, *every, *warmup, *reopen, *threads, *maxRSS, *maxHeap, *maxG); err != nil {
		fmt.Fprintln(os.Stderr, "s2s-soak:", err)
		os.Exit(1)
	}
}

// sample is one row of the memory curve.
type sample struct {
	gens       int
	rssMB      float64
	heapMB     float64
	goroutines int
}

func measure(gens int) sample {
	goruntime.GC()
	var ms goruntime.MemStats
	goruntime.ReadMemStats(&ms)
	return sample{gens: gens, rssMB: rssMB(), heapMB: float64(ms.HeapAlloc) / (1 << 20), goroutines: goruntime.NumGoroutine()}
}

// rssMB reads VmRSS from /proc/self/status (0 where there is none).
func rssMB() float64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}

func run(model string, n, every, warmup, reopen, threads int, maxRSS, maxHeap float64, maxG int) error {
	opts := s2s.Options{Runtime: runtime.Options{IntraOpThreads: threads, InterOpThreads: 1}}
	g, err := s2s.Open(model, opts)
	if err != nil {
		return err
	}
	defer func() { g.Close() }()
	ctx := context.Background()
	start := time.Now()
	fmt.Printf("%-12s %10s %10s %11s %9s\n", "generations", "rss_mb", "heap_mb", "goroutines", "seconds")
	var base, last sample
	opens := 1
	for i := 1; i <= n; i++ {
		o := g.Defaults()
		o.MaxNewTokens = 8 + i%9
		var stream s2s.StreamFunc
		batch := []string{inputs[i%len(inputs)]}
		switch i % 6 {
		case 0: // greedy
		case 1: // beam search, n-best
			o.NumBeams, o.NumReturnSequences, o.LengthPenalty = 4, 2, 0.8
		case 2: // sampling, several draws
			o.DoSample, o.NumReturnSequences, o.TopK, o.TopP, o.Temperature, o.Seed = true, 2, 20, 0.9, 0.8, uint64(i)
		case 3: // streaming greedy
			stream = func(s2s.Event) error { return nil }
		case 4: // streaming beam search
			o.NumBeams = 3
			stream = func(s2s.Event) error { return nil }
		case 5: // a batch of mixed lengths
			batch = []string{inputs[i%len(inputs)], inputs[(i+3)%len(inputs)], inputs[(i+5)%len(inputs)], inputs[(i+7)%len(inputs)]}
			o.RepetitionPenalty, o.NoRepeatNgramSize = 1.2, 2
		}
		if _, err := g.Generate(ctx, batch, o, stream); err != nil {
			return fmt.Errorf("generation %d: %w", i, err)
		}
		if reopen > 0 && i%reopen == 0 && i < n {
			if err := g.Close(); err != nil {
				return fmt.Errorf("close after %d: %w", i, err)
			}
			if g, err = s2s.Open(model, opts); err != nil {
				return fmt.Errorf("open after %d: %w", i, err)
			}
			opens++
		}
		if i%every == 0 || i == warmup {
			s := measure(i)
			if i%every == 0 {
				fmt.Printf("%-12d %10.1f %10.2f %11d %9.1f\n", s.gens, s.rssMB, s.heapMB, s.goroutines, time.Since(start).Seconds())
			}
			if i == warmup {
				base = s
			}
			last = s
		}
	}
	fmt.Printf("opened %d times; from %d to %d generations: rss %+.1f MB (bound %.0f), heap %+.2f MB (bound %.0f), goroutines %+d (bound %d)\n",
		opens, base.gens, last.gens, last.rssMB-base.rssMB, maxRSS, last.heapMB-base.heapMB, maxHeap, last.goroutines-base.goroutines, maxG)
	var fails []string
	if last.rssMB-base.rssMB > maxRSS {
		fails = append(fails, fmt.Sprintf("resident memory grew %.1f MB", last.rssMB-base.rssMB))
	}
	if last.heapMB-base.heapMB > maxHeap {
		fails = append(fails, fmt.Sprintf("the Go heap grew %.2f MB", last.heapMB-base.heapMB))
	}
	if last.goroutines-base.goroutines > maxG {
		fails = append(fails, fmt.Sprintf("goroutines grew by %d", last.goroutines-base.goroutines))
	}
	if len(fails) > 0 {
		return fmt.Errorf("memory is not flat: %s", strings.Join(fails, "; "))
	}
	return nil
}
