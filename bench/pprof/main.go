// Command pprof profiles the Go host on one benchmark case: it opens a
// model directory, generates batches of random source ids (5 to 40 tokens
// with EOS, seeded) with min_new_tokens = max_new_tokens, and writes a CPU
// profile of the timed repetitions (the warm-up run is off the profile).
//
//	go run ./bench/pprof -model ~/.cache/s2s-bench/marian/onnx -beams 4 -batch 32 \
//	    -tokens 64 -reps 2 -cpuprofile /tmp/beam4-b32.pprof
//	go tool pprof -top /tmp/beam4-b32.pprof
package main

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime/pprof"
	"slices"
	"time"

	"github.com/s2s-dev/s2s"
	"github.com/s2s-dev/s2s/runtime"
)

func main() {
	model := flag.String("model", "", "model directory (required)")
	beams := flag.Int("beams", 4, "num_beams")
	batch := flag.Int("batch", 32, "inputs per generation")
	tokens := flag.Int("tokens", 64, "forced output length")
	reps := flag.Int("reps", 2, "profiled repetitions")
	threads := flag.Int("intra-op-threads", 2, "intra-op threads")
	graphs := flag.String("decoder-graphs", "auto", "auto, split or merged (split and merged: Optimum's layout only)")
	out := flag.String("cpuprofile", "cpu.pprof", "CPU profile file")
	flag.Parse()
	if *model == "" {
		fmt.Fprintln(os.Stderr, "pprof: -model is required")
		os.Exit(2)
	}
	if err := run(*model, *beams, *batch, *tokens, *reps, *threads, *graphs, *out); err != nil {
		fmt.Fprintln(os.Stderr, "pprof:", err)
		os.Exit(1)
	}
}

func run(model string, beams, batch, tokens, reps, threads int, graphs, out string) error {
	ctx := context.Background()
	g, err := s2s.Open(model, s2s.Options{Runtime: runtime.Options{IntraOpThreads: threads, InterOpThreads: 1, DecoderGraphs: graphs}})
	if err != nil {
		return err
	}
	defer g.Close()
	opts := g.Defaults()
	opts.DoSample, opts.NumBeams, opts.NumReturnSequences = false, beams, 1
	opts.MaxNewTokens, opts.MinNewTokens = tokens, tokens
	eos := int64(0)
	if len(opts.EOSTokenIDs) > 0 {
		eos = opts.EOSTokenIDs[0]
	}
	rng := rand.New(rand.NewPCG(8, 8))
	ids := make([][]int64, batch)
	for i := range ids {
		n := 4 + rng.IntN(36)
		for range n {
			ids[i] = append(ids[i], int64(3+rng.IntN(min(31998, g.Manifest().VocabSize-4))))
		}
		ids[i] = append(ids[i], eos)
	}
	slices.SortFunc(ids, func(a, b []int64) int { return len(a) - len(b) })
	if _, err := g.GenerateIDs(ctx, ids, opts, nil); err != nil { // warm up
		return err
	}
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := pprof.StartCPUProfile(f); err != nil {
		return err
	}
	for range reps {
		start := time.Now()
		if _, err := g.GenerateIDs(ctx, ids, opts, nil); err != nil {
			pprof.StopCPUProfile()
			return err
		}
		fmt.Printf("beam %d batch %d %d tokens: %.0f ms\n", beams, batch, tokens, float64(time.Since(start).Microseconds())/1e3)
	}
	pprof.StopCPUProfile()
	return nil
}
