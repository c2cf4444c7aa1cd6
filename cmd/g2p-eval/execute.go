package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/s2s-dev/s2s"
	"github.com/s2s-dev/s2s/runtime"
)

// errUsage marks command-line mistakes (exit status 2).
var errUsage = errors.New("usage")

// DefaultModel is the model directory scored when -model is not given.
const DefaultModel = "models/g2p-en"

// Execute runs g2p-eval with args (without the program name).
func Execute(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("g2p-eval", flag.ContinueOnError)
	fs.SetOutput(stderr)
	model := fs.String("model", DefaultModel, "grapheme-to-phoneme model directory, or its packed .onnx file")
	words := fs.String("words", "", "test file: word<TAB>pron | pron lines (default: MODEL/test.tsv; for DIR.onnx, DIR/test.tsv)")
	beams := fs.String("beams", "1,5", "comma-separated num_beams values; 1 is greedy search")
	batch := fs.Int("batch-size", 64, "words generated together")
	limit := fs.Int("limit", 0, "score only the first N words (0: all)")
	ortLib := fs.String("ort-lib", "", "path of libonnxruntime (default: $ONNXRUNTIME_LIB, .ort/lib, system paths)")
	threads := fs.Int("intra-op-threads", 1, "ONNX Runtime intra-op threads (0: its default)")
	oracle := fs.Int("oracle", 0, "also score the N-best oracle of beam search with N beams: a word is right when any of its N outputs is (0: off)")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "g2p-eval scores a grapheme-to-phoneme model through the Go host (WER and PER, greedy and beam search).\n\nUsage:\n  g2p-eval [flags]\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "g2p-eval: unexpected arguments %q; pass the test file with -words\n", fs.Args())
		return errUsage
	}
	numBeams, err := parseBeams(*beams)
	if err != nil {
		fmt.Fprintln(stderr, "g2p-eval:", err)
		return errUsage
	}
	if *batch < 1 || *limit < 0 || *threads < 0 || *oracle < 0 || *oracle == 1 {
		fmt.Fprintln(stderr, "g2p-eval: -batch-size must be 1 or more, -limit and -intra-op-threads 0 or more, -oracle 0 or 2 or more")
		return errUsage
	}
	path := *words
	if path == "" {
		path = defaultWords(*model)
	}
	entries, err := ReadWords(path)
	if err != nil {
		return err
	}
	if *limit > 0 && *limit < len(entries) {
		entries = entries[:*limit]
	}
	g, err := s2s.Open(*model, s2s.Options{Runtime: runtime.Options{LibraryPath: *ortLib, IntraOpThreads: *threads}})
	if err != nil {
		return err
	}
	defer g.Close()

	fmt.Fprintf(stdout, "%s: %d words, %s through the Go host\n", path, len(entries), *model)
	fmt.Fprintf(stdout, "%-16s %8s %8s %8s %8s\n", "search", "WER", "PER", "seconds", "words/s")
	row := func(name string, r Rates, start time.Time) {
		sec := time.Since(start).Seconds()
		fmt.Fprintf(stdout, "%-16s %7.2f%% %7.2f%% %8.1f %8.0f\n", name, 100*r.WER(), 100*r.PER(), sec, float64(r.Words)/sec)
	}
	for _, b := range numBeams {
		start := time.Now()
		r, err := Score(ctx, g, entries, b, *batch)
		if err != nil {
			return err
		}
		name := "greedy"
		if b > 1 {
			name = fmt.Sprintf("beam %d", b)
		}
		row(name, r, start)
	}
	if *oracle > 0 {
		start := time.Now()
		r, err := ScoreOracle(ctx, g, entries, *oracle, *batch)
		if err != nil {
			return err
		}
		row(fmt.Sprintf("%d-best oracle", *oracle), r, start)
	}
	return nil
}

// parseBeams reads the -beams list.
func parseBeams(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("-beams %q: want comma-separated numbers of 1 or more, such as 1,5", s)
		}
		out = append(out, n)
	}
	return out, nil
}

// Generator is the part of s2s.Generator that Score uses.
type Generator interface {
	Defaults() s2s.GenerateOptions
	Generate(ctx context.Context, inputs []string, opts s2s.GenerateOptions, stream s2s.StreamFunc) ([]s2s.Output, error)
}

// Score generates every entry's pronunciation with numBeams beams (1:
// greedy), batch words at a time, and returns the error rates.
func Score(ctx context.Context, g Generator, entries []Entry, numBeams, batch int) (Rates, error) {
	return score(ctx, g, entries, numBeams, 1, batch)
}

// ScoreOracle runs beam search with n beams and n returned sequences and
// scores each word by the closest of its n outputs: the n-best oracle (a
// word is right when any of its n outputs is one of its pronunciations).
func ScoreOracle(ctx context.Context, g Generator, entries []Entry, n, batch int) (Rates, error) {
	return score(ctx, g, entries, n, n, batch)
}

// score generates every entry with numBeams beams and nReturn sequences and
// scores the closest sequence of each.
func score(ctx context.Context, g Generator, entries []Entry, numBeams, nReturn, batch int) (Rates, error) {
	opts := g.Defaults()
	opts.NumBeams = numBeams
	opts.NumReturnSequences = nReturn
	opts.DoSample = false
	var r Rates
	for i := 0; i < len(entries); i += batch {
		part := entries[i:min(i+batch, len(entries))]
		texts := make([]string, len(part))
		for j, e := range part {
			texts[j] = e.Word
		}
		outs, err := g.Generate(ctx, texts, opts, nil)
		if err != nil {
			return Rates{}, fmt.Errorf("words %d-%d: %w", i, i+len(part)-1, err)
		}
		for j, o := range outs {
			if len(o.Sequences) != nReturn {
				return Rates{}, fmt.Errorf("word %q: %d sequences, asked for %d", part[j].Word, len(o.Sequences), nReturn)
			}
			hyps := make([][]string, len(o.Sequences))
			for k, seq := range o.Sequences {
				hyps[k] = strings.Fields(seq.Text)
			}
			r.AddBest(hyps, part[j].Prons)
		}
	}
	return r, nil
}
