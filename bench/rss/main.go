// Command rss shows the Go host's memory over repeated requests: it opens a
// model directory, prints VmRSS and VmHWM after loading, then runs the same
// batch -reps times (random source ids, 5 to 40 tokens with EOS, seeded;
// min_new_tokens = max_new_tokens) and prints them after each request. Flat
// figures from the second request on mean the requests reuse their memory.
//
//	go run ./bench/rss -model ~/.cache/s2s-bench/marian/onnx -beams 4 -batch 32 -tokens 64 -reps 3
package main

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/s2s-dev/s2s"
	"github.com/s2s-dev/s2s/runtime"
)

// hwm returns VmRSS and VmHWM from /proc/self/status.
func hwm() string {
	b, _ := os.ReadFile("/proc/self/status")
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmHWM") || strings.HasPrefix(l, "VmRSS") {
			out = append(out, strings.Join(strings.Fields(l), " "))
		}
	}
	return strings.Join(out, " ")
}

func main() {
	model := flag.String("model", "", "model directory (required)")
	beams := flag.Int("beams", 4, "num_beams")
	batch := flag.Int("batch", 1, "inputs per request")
	tokens := flag.Int("tokens", 32, "forced output length")
	graphs := flag.String("graphs", "auto", "decoder graphs: auto, split or merged")
	reps := flag.Int("reps", 3, "requests")
	noArena := flag.Bool("no-arena", false, "turn ONNX Runtime's CPU memory arena off")
	cfg := flag.String("ort-config", "", "ONNX Runtime session config entries, key=value[,key=value...]")
	flag.Parse()
	if *model == "" {
		fmt.Fprintln(os.Stderr, "rss: -model is required")
		os.Exit(2)
	}
	t0 := time.Now()
	g, err := s2s.Open(*model, s2s.Options{Runtime: runtime.Options{IntraOpThreads: 2, InterOpThreads: 1, DecoderGraphs: *graphs, DisableMemArena: *noArena, SessionConfig: kv(*cfg)}})
	if err != nil {
		fmt.Fprintln(os.Stderr, "rss:", err)
		os.Exit(1)
	}
	fmt.Printf("open %v: %s\n", time.Since(t0).Round(time.Millisecond), hwm())
	opts := g.Defaults()
	opts.DoSample, opts.NumBeams, opts.NumReturnSequences = false, *beams, 1
	opts.MaxNewTokens, opts.MinNewTokens = *tokens, *tokens
	eos := int64(0)
	if len(opts.EOSTokenIDs) > 0 {
		eos = opts.EOSTokenIDs[0]
	}
	hi := max(1, min(31998, g.Manifest().VocabSize-4)) // source ids inside the vocabulary
	rng := rand.New(rand.NewPCG(8, 8))
	ids := make([][]int64, *batch)
	for i := range ids {
		n := 4 + rng.IntN(36)
		for range n {
			ids[i] = append(ids[i], int64(3+rng.IntN(hi)))
		}
		ids[i] = append(ids[i], eos)
	}
	slices.SortFunc(ids, func(a, b []int64) int { return len(a) - len(b) })
	for r := range *reps {
		t := time.Now()
		if _, err := g.GenerateIDs(context.Background(), ids, opts, nil); err != nil {
			fmt.Fprintln(os.Stderr, "rss:", err)
			os.Exit(1)
		}
		fmt.Printf("gen %d %v: %s\n", r, time.Since(t).Round(time.Millisecond), hwm())
	}
	g.Close()
}

// kv parses key=value[,key=value...].
func kv(s string) map[string]string {
	m := map[string]string{}
	for _, p := range strings.Split(s, ",") {
		if k, v, ok := strings.Cut(p, "="); ok {
			m[k] = v
		}
	}
	return m
}
