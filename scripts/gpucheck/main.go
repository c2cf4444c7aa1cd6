// Command gpucheck runs the goldens through two execution providers of one
// ONNX Runtime and compares them: the same tokens at greedy and beam search,
// scores within a tolerance. scripts/gpu-check.sh runs it with the CUDA
// build (which serves the CPU provider too, so both run in one process):
//
//	go run ./scripts/gpucheck -ort-lib .ort/cuda/lib              cpu against cuda
//	go run ./scripts/gpucheck -ort-lib .ort/cuda/lib -against cpu  the plumbing, without a GPU
//
// The inputs are those of testdata/goldens (the tiny T5, BART and Marian
// models, each golden's options) and the words of
// models/g2p-en/reference-decodes.jsonl (greedy and beam 5). Each side is
// also checked against the goldens' tokens. It prints one table and exits 1
// on any difference.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"text/tabwriter"

	"github.com/s2s-dev/s2s"
	"github.com/s2s-dev/s2s/config"
	"github.com/s2s-dev/s2s/runtime"
)

// golden is one line of testdata/goldens/*.jsonl (the fields used here).
type golden struct {
	Input     string         `json:"input"`
	Options   map[string]any `json:"options"`
	OutputIDs []int64        `json:"output_ids"`
	Sequences []struct {
		OutputIDs []int64 `json:"output_ids"`
	} `json:"sequences"`
}

// g2pCase is one line of models/g2p-en/reference-decodes.jsonl.
type g2pCase struct {
	Word      string  `json:"word"`
	GreedyIDs []int64 `json:"greedy_ids"`
	Beam5IDs  []int64 `json:"beam5_ids"`
}

// check is one request: its inputs, options and the reference tokens of
// its first sequence per input.
type check struct {
	inputs  []string
	options map[string]any
	want    [][]int64
}

// row is one line of the table.
type row struct {
	model, search               string
	cases, equal, refA, refB    int
	maxScoreDiff                float64
	firstDifference, firstError string
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "gpucheck:", err)
		os.Exit(1)
	}
}

func run() error {
	ortLib := flag.String("ort-lib", "", "the ONNX Runtime library (a CUDA build serves both providers)")
	a := flag.String("provider", runtime.ProviderCPU, "the reference provider")
	b := flag.String("against", runtime.ProviderCUDA, "the provider checked against it")
	device := flag.Int("device-id", 0, "CUDA device")
	graphs := flag.String("decoder-graphs", runtime.GraphsAuto, "decoder graphs of the Transformers: auto, split, merged")
	tol := flag.Float64("tolerance", 1e-3, "largest score difference allowed")
	root := flag.String("root", ".", "the repository root")
	flag.Parse()

	var rows []row
	ok := true
	for _, family := range []string{"t5", "bart", "marian"} {
		dir := filepath.Join(*root, "testdata", family+"-tiny")
		for _, search := range []string{"greedy", "beam"} {
			checks, err := goldenChecks(filepath.Join(*root, "testdata", "goldens", search+"-"+family+".jsonl"))
			if err != nil {
				return err
			}
			r, err := compare(dir, family+"-tiny", search, checks, *ortLib, *a, *b, *device, *graphs)
			if err != nil {
				return err
			}
			rows = append(rows, r)
		}
	}
	g2p, err := g2pChecks(filepath.Join(*root, "models", "g2p-en", "reference-decodes.jsonl"))
	if err != nil {
		return err
	}
	for _, search := range []string{"greedy", "beam"} {
		r, err := compare(filepath.Join(*root, "models", "g2p-en"), "g2p-en", search, g2p[search], *ortLib, *a, *b, *device, *graphs)
		if err != nil {
			return err
		}
		rows = append(rows, r)
	}

	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "model\tsearch\tcases\ttokens equal (%s = %s)\t%s = golden\t%s = golden\tmax |score diff|\n", *a, *b, *a, *b)
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%.2g\n", r.model, r.search, r.cases, r.equal, r.refA, r.refB, r.maxScoreDiff)
		if r.equal != r.cases || r.maxScoreDiff > *tol || r.firstError != "" {
			ok = false
		}
	}
	tw.Flush()
	for _, r := range rows {
		if r.firstError != "" {
			fmt.Printf("%s %s: %s\n", r.model, r.search, r.firstError)
		}
		if r.firstDifference != "" {
			fmt.Printf("%s %s: first difference: %s\n", r.model, r.search, r.firstDifference)
		}
	}
	if !ok {
		return fmt.Errorf("%s and %s differ (tolerance %g); see the table", *a, *b, *tol)
	}
	fmt.Printf("%s and %s: every sequence equal, scores within %g\n", *a, *b, *tol)
	return nil
}

// goldenChecks reads a golden file: one request per line (the goldens of
// one input), its first sequence as the reference.
func goldenChecks(path string) ([]check, error) {
	var out []check
	err := readLines(path, func(line []byte) error {
		var g golden
		if err := json.Unmarshal(line, &g); err != nil {
			return err
		}
		want := g.OutputIDs
		if len(g.Sequences) > 0 {
			want = g.Sequences[0].OutputIDs
		}
		out = append(out, check{inputs: []string{g.Input}, options: g.Options, want: [][]int64{want}})
		return nil
	})
	return out, err
}

// g2pChecks reads the G2P reference decodes into a greedy and a beam-5
// request of 32 words each.
func g2pChecks(path string) (map[string][]check, error) {
	greedy := check{options: map[string]any{"num_beams": 1}}
	beam := check{options: map[string]any{"num_beams": 5}}
	err := readLines(path, func(line []byte) error {
		var c g2pCase
		if err := json.Unmarshal(line, &c); err != nil {
			return err
		}
		if len(greedy.inputs) < 32 {
			greedy.inputs = append(greedy.inputs, c.Word)
			greedy.want = append(greedy.want, c.GreedyIDs)
			beam.inputs = append(beam.inputs, c.Word)
			beam.want = append(beam.want, c.Beam5IDs)
		}
		return nil
	})
	// One request per word, as the goldens are single inputs too.
	split := func(c check) []check {
		var out []check
		for i := range c.inputs {
			out = append(out, check{inputs: c.inputs[i : i+1], options: c.options, want: c.want[i : i+1]})
		}
		return out
	}
	return map[string][]check{"greedy": split(greedy), "beam": split(beam)}, err
}

func readLines(path string, fn func([]byte) error) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for n := 1; sc.Scan(); n++ {
		if err := fn(sc.Bytes()); err != nil {
			return fmt.Errorf("%s:%d: %w", path, n, err)
		}
	}
	return sc.Err()
}

// compare runs checks on dir with providers a and b.
func compare(dir, name, search string, checks []check, ortLib, a, b string, device int, graphs string) (row, error) {
	r := row{model: name, search: search, cases: len(checks)}
	open := func(provider string) (*s2s.Generator, error) {
		o := runtime.Options{LibraryPath: ortLib, Provider: provider, DecoderGraphs: graphs}
		if provider == runtime.ProviderCUDA {
			o.DeviceID = device
		}
		return s2s.Open(dir, s2s.Options{Runtime: o})
	}
	ga, err := open(a)
	if err != nil {
		return r, fmt.Errorf("%s on %s: %w", name, a, err)
	}
	defer ga.Close()
	gb, err := open(b)
	if err != nil {
		return r, fmt.Errorf("%s on %s: %w", name, b, err)
	}
	defer gb.Close()
	ctx := context.Background()
	for i, c := range checks {
		opts, err := config.ApplyGenerateKwargs(ga.Defaults(), c.options)
		if err != nil {
			return r, err
		}
		outA, errA := ga.Generate(ctx, c.inputs, opts, nil)
		outB, errB := gb.Generate(ctx, c.inputs, opts, nil)
		if err := errors.Join(errA, errB); err != nil {
			if r.firstError == "" {
				r.firstError = fmt.Sprintf("case %d: %v", i, err)
			}
			continue
		}
		equal := true
		for j := range outA {
			sa, sb := outA[j].Sequences, outB[j].Sequences
			if len(sa) != len(sb) {
				equal = false
				continue
			}
			for k := range sa {
				if !slices.Equal(sa[k].Tokens, sb[k].Tokens) {
					equal = false
					if r.firstDifference == "" {
						r.firstDifference = fmt.Sprintf("case %d %q %v: %s %v, %s %v", i, c.inputs[j], c.options, a, sa[k].Tokens, b, sb[k].Tokens)
					}
				}
				if d := math.Abs(sa[k].Score - sb[k].Score); d > r.maxScoreDiff && !math.IsInf(sa[k].Score, 0) {
					r.maxScoreDiff = d
				}
			}
			if slices.Equal(sa[0].Tokens, c.want[j]) {
				r.refA++
			}
			if slices.Equal(sb[0].Tokens, c.want[j]) {
				r.refB++
			}
		}
		if equal {
			r.equal++
		}
	}
	return r, nil
}
