// Command s2s-bench times generations through the s2s API for the benchmark
// harness (bench/): it reads a JSON spec (model directory, threads, cases
// of token-id inputs), runs each case and writes JSON results: the time of
// every generation, the generated tokens, the peak resident set size of
// each case and, with "limit", the limit L of each case (the recorded ONNX
// Runtime calls of one repetition replayed back to back).
//
//	s2s-bench -spec spec.json -out results.json
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"time"

	"github.com/s2s-dev/s2s"
	"github.com/s2s-dev/s2s/beamsearch"
	"github.com/s2s-dev/s2s/runtime"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	err := Execute(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "s2s-bench:", err)
		os.Exit(1)
	}
}

// Spec is what to run.
type Spec struct {
	Model          string `json:"model"`
	IntraOpThreads int    `json:"intra_op_threads"`
	InterOpThreads int    `json:"inter_op_threads"`
	DecoderGraphs  string `json:"decoder_graphs"` // auto, split, merged
	Provider       string `json:"provider"`       // cpu (default) or cuda
	Limit          bool   `json:"limit"`          // also measure L per case
	// DisableMemArena and SessionConfig are runtime.Options' fields of the
	// same names (the harness's --no-arena and --ort-config).
	DisableMemArena bool              `json:"disable_mem_arena"`
	SessionConfig   map[string]string `json:"session_config"`
	Cases           []Case            `json:"cases"`
	// Serve, when set, runs concurrent clients through the batchers
	// (serve.go) after the cases (which may then be empty).
	Serve *Serve `json:"serve,omitempty"`
}

// Case is one benchmark case: inputs generated batch at a time, Reps times.
type Case struct {
	Name      string    `json:"name"`
	Inputs    [][]int64 `json:"inputs"`
	Batch     int       `json:"batch"`
	Beams     int       `json:"beams"`
	NewTokens int       `json:"new_tokens"` // min_new_tokens = max_new_tokens
	Reps      int       `json:"reps"`
}

// Result is what one case gave.
type Result struct {
	Name string `json:"name"`
	// GenMS[rep][i] is the time of generation i (one batch) of repetition rep.
	GenMS [][]float64 `json:"gen_ms"`
	// Outputs are the best sequences' tokens, one per input, in input order.
	Outputs   [][]int64 `json:"outputs"`
	PeakRSSKB int64     `json:"peak_rss_kb"`
	// With limit: per generation of one repetition, the fastest of the
	// end-to-end runs on the traced model, the replayed calls (L), the
	// traced generation's own time and the time its calls spent in ONNX
	// Runtime (the last two from the same run, so that their difference
	// is the host's own time).
	LimitE2EMS []float64 `json:"limit_e2e_ms,omitempty"`
	LimitMS    []float64 `json:"limit_ms,omitempty"`
	TracedMS   []float64 `json:"traced_ms,omitempty"`
	InSituMS   []float64 `json:"in_situ_ort_ms,omitempty"`
	Calls      int       `json:"calls,omitempty"`
}

// Output is the results file.
type Output struct {
	Engine  string        `json:"engine"`
	Results []Result      `json:"results"`
	Serve   []ServeResult `json:"serve,omitempty"`
}

// Execute runs the command with args.
func Execute(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("s2s-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	specPath := fs.String("spec", "", "JSON spec file (required)")
	outPath := fs.String("out", "", "results file (default: stdout)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *specPath == "" || fs.NArg() > 0 {
		return errors.New("usage: s2s-bench -spec spec.json [-out results.json]")
	}
	raw, err := os.ReadFile(*specPath)
	if err != nil {
		return err
	}
	var spec Spec
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&spec); err != nil {
		return fmt.Errorf("%s: %w", *specPath, err)
	}
	if err := spec.validate(); err != nil {
		return fmt.Errorf("%s: %w", *specPath, err)
	}
	out, err := run(ctx, spec)
	if err != nil {
		return err
	}
	b, err := json.Marshal(out)
	if err != nil {
		return err
	}
	if *outPath == "" {
		_, err = stdout.Write(append(b, '\n'))
		return err
	}
	return os.WriteFile(*outPath, b, 0o644)
}

func (s Spec) validate() error {
	if s.Model == "" {
		return errors.New("no model; set \"model\" to a model directory")
	}
	if s.Serve != nil {
		if err := s.Serve.validate(); err != nil {
			return err
		}
	} else if len(s.Cases) == 0 {
		return errors.New("no cases; give at least one")
	}
	for _, c := range s.Cases {
		switch {
		case len(c.Inputs) == 0:
			return fmt.Errorf("case %q has no inputs", c.Name)
		case c.Batch < 1 || c.Beams < 1 || c.NewTokens < 1 || c.Reps < 1:
			return fmt.Errorf("case %q: batch, beams, new_tokens and reps must be at least 1", c.Name)
		}
	}
	return nil
}

func (s Spec) runtimeOptions() runtime.Options {
	return runtime.Options{
		IntraOpThreads: s.IntraOpThreads, InterOpThreads: s.InterOpThreads, DecoderGraphs: s.DecoderGraphs,
		DisableMemArena: s.DisableMemArena, SessionConfig: s.SessionConfig, Provider: s.Provider,
	}
}

// options are the generation options of c on top of the model's defaults.
func options(defaults s2s.GenerateOptions, c Case) s2s.GenerateOptions {
	o := defaults
	o.DoSample = false
	o.NumBeams = c.Beams
	o.NumReturnSequences = 1
	o.MaxNewTokens, o.MinNewTokens = c.NewTokens, c.NewTokens
	return o
}

// batches splits inputs into consecutive batches of n.
func batches(inputs [][]int64, n int) [][][]int64 {
	var out [][][]int64
	for i := 0; i < len(inputs); i += n {
		out = append(out, inputs[i:min(i+n, len(inputs))])
	}
	return out
}

func ms(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e6 }

func run(ctx context.Context, spec Spec) (*Output, error) {
	g, err := s2s.Open(spec.Model, s2s.Options{Runtime: spec.runtimeOptions()})
	if err != nil {
		return nil, err
	}
	defer g.Close()
	out := &Output{Engine: "go"}
	for _, c := range spec.Cases {
		opts := options(g.Defaults(), c)
		res := Result{Name: c.Name, Outputs: make([][]int64, 0, len(c.Inputs))}
		bs := batches(c.Inputs, c.Batch)
		if _, err := g.GenerateIDs(ctx, bs[0], opts, nil); err != nil { // warm up
			return nil, fmt.Errorf("case %s: %w", c.Name, err)
		}
		resetPeakRSS()
		for rep := range c.Reps {
			times := make([]float64, len(bs))
			for i, b := range bs {
				start := time.Now()
				outs, err := g.GenerateIDs(ctx, b, opts, nil)
				times[i] = ms(time.Since(start))
				if err != nil {
					return nil, fmt.Errorf("case %s: %w", c.Name, err)
				}
				if rep == 0 {
					for _, o := range outs {
						res.Outputs = append(res.Outputs, o.Sequences[0].Tokens)
					}
				}
			}
			res.GenMS = append(res.GenMS, times)
		}
		res.PeakRSSKB = peakRSS()
		out.Results = append(out.Results, res)
	}
	if spec.Limit {
		if err := limits(ctx, spec, g, out); err != nil {
			return nil, err
		}
	}
	if spec.Serve != nil {
		if out.Serve, err = runServe(ctx, g, spec.Serve); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// limits measures, for every case, each generation of one repetition three
// ways on a model of its own: end to end (fastest of the case's reps), the
// ORT time recorded during a traced generation, and L, the recorded calls
// replayed back to back (fastest of reps, at least 2).
func limits(ctx context.Context, spec Spec, g *s2s.Generator, out *Output) error {
	m, err := runtime.Load(g.Manifest(), spec.runtimeOptions().WithDefaults())
	if err != nil {
		return err
	}
	defer m.Close()
	for ci, c := range spec.Cases {
		opts := options(g.Defaults(), c)
		res := &out.Results[ci]
		gen := func(b [][]int64) error {
			d, err := m.Encode(ctx, b, max(opts.PadTokenID, 0))
			if err != nil {
				return err
			}
			defer d.Close()
			_, err = beamsearch.Generate(ctx, d, len(b), opts, nil)
			return err
		}
		bs := batches(c.Inputs, c.Batch)
		if err := gen(bs[0]); err != nil { // warm up
			return fmt.Errorf("case %s: %w", c.Name, err)
		}
		for _, b := range bs {
			best := time.Duration(-1)
			for range c.Reps {
				start := time.Now()
				if err := gen(b); err != nil {
					return fmt.Errorf("case %s: %w", c.Name, err)
				}
				if d := time.Since(start); best < 0 || d < best {
					best = d
				}
			}
			tr := &runtime.Trace{}
			m.SetTrace(tr)
			start := time.Now()
			err := gen(b)
			traced := time.Since(start)
			m.SetTrace(nil)
			if err != nil {
				return fmt.Errorf("case %s: %w", c.Name, err)
			}
			// At least two replays: the first touches the replay's freshly
			// made tensors (page faults), which on a small model (g2p: ~1 ms
			// a generation) outweighs the calls themselves.
			l, err := tr.Replay(ctx, m, max(c.Reps, 2))
			if err != nil {
				return fmt.Errorf("case %s: %w", c.Name, err)
			}
			res.LimitE2EMS = append(res.LimitE2EMS, ms(best))
			res.LimitMS = append(res.LimitMS, ms(l))
			res.TracedMS = append(res.TracedMS, ms(traced))
			res.InSituMS = append(res.InSituMS, ms(tr.ORTTime()))
			res.Calls = len(tr.Calls())
		}
	}
	return nil
}

// resetPeakRSS resets the kernel's peak resident set size of this process
// (Linux 4.0+); elsewhere it does nothing and peaks are since the start.
func resetPeakRSS() {
	_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
}

// peakRSS returns VmHWM in kB, or -1 when unknown.
func peakRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err == nil {
				return n
			}
		}
	}
	return -1
}
