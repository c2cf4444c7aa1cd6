package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"strings"

	"github.com/s2s-dev/s2s"
	"github.com/s2s-dev/s2s/config"
)

// errUsage marks command-line mistakes (exit status 2).
var errUsage = errors.New("usage")

const usageHead = `gen generates text with a sequence-to-sequence model.

Usage:
  gen -model DIR [flags] "text" ["text" ...]   one output line per text
  gen -model DIR [flags] < inputs.txt          one output line per input line
  gen -model DIR [flags] -- "-text" ...        after --, every argument is a text

Flags may come before, between or after the texts.

DIR is a model directory or a packed model file (MODEL.onnx).
`

const flagsHead = `Flags (each also from the environment as S2S_<NAME>, or from a YAML file
given with -config whose keys are the names with underscores; flags win over
the environment, which wins over the file, which wins over the model's
generation_config.json):
`

// jsonLine is one line of -json output.
type jsonLine struct {
	Input        string         `json:"input"`
	Output       string         `json:"output"`
	Tokens       []int64        `json:"tokens"`
	Score        float64        `json:"score"`
	FinishReason string         `json:"finish_reason"`
	Sequences    []s2s.Sequence `json:"sequences,omitempty"`
	Error        string         `json:"error,omitempty"`
}

// Execute runs gen with args (without the program name).
// A first argument that names a command (gen serve, ...) runs that command
// with the arguments after it.
func Execute(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		if c, ok := commands[args[0]]; ok {
			return c.run(ctx, args[1:], stdin, stdout, stderr)
		}
	}
	fs := flag.NewFlagSet("gen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	config.RegisterFlags(fs)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usageHead)
		if len(commands) > 0 {
			fmt.Fprintf(fs.Output(), "\nCommands (gen COMMAND -h for each):\n%s", commandList())
		}
		fmt.Fprint(fs.Output(), "\n"+flagsHead)
		fs.PrintDefaults()
	}
	texts, err := parseArgs(fs, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	cfg, err := config.Load(fs)
	if err != nil {
		if errors.Is(err, config.ErrNoModel) {
			fmt.Fprintln(stderr, "gen:", err)
			return errUsage
		}
		return err
	}
	g, err := s2s.Open(cfg.Model, s2s.Options{Runtime: cfg.Runtime, Limits: cfg.Limits})
	if err != nil {
		return err
	}
	defer g.Close()
	// Options every input would be refused for are reported once.
	if err := g.CheckOptions(cfg.Generation); err != nil {
		return err
	}

	out := bufio.NewWriter(stdout)
	defer out.Flush()
	r := &runner{g: g, cfg: cfg, out: out, stderr: stderr}
	if len(texts) > 0 {
		return r.run(ctx, texts)
	}
	return r.runLines(ctx, stdin)
}

// parseArgs parses flags wherever they are among the texts (Go's flag
// package stops at the first argument that is not a flag, so parsing goes
// on after each text) and returns the texts. "--" ends the flags: every
// argument after it is a text, even one that starts with "-".
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var texts []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if used := len(args) - len(rest); used > 0 && args[used-1] == "--" && (used < 2 || !takesValue(fs, args[used-2])) {
			return append(texts, rest...), nil
		}
		if len(rest) == 0 {
			return texts, nil
		}
		texts = append(texts, rest[0])
		args = rest[1:]
	}
}

// takesValue reports whether arg is a flag of fs that takes the next
// argument as its value (-name, not -name=value, not a boolean flag).
func takesValue(fs *flag.FlagSet, arg string) bool {
	name, ok := strings.CutPrefix(arg, "-")
	if !ok {
		return false
	}
	name = strings.TrimPrefix(name, "-")
	if strings.Contains(name, "=") {
		return false
	}
	f := fs.Lookup(name)
	if f == nil {
		return false
	}
	b, isBool := f.Value.(interface{ IsBoolFlag() bool })
	return !isBool || !b.IsBoolFlag()
}

// runner generates batches of inputs and writes their outputs.
type runner struct {
	g      *s2s.Generator
	cfg    *config.Config
	out    *bufio.Writer
	stderr io.Writer
	failed int
}

// runLines reads one input per line and generates cfg.BatchSize at a time.
// A failing batch is reported and the next one still runs; a line that
// cannot be an input (longer than max_input_bytes, not UTF-8) is reported
// with its number and skipped, and the lines after it still run.
func (r *runner) runLines(ctx context.Context, stdin io.Reader) error {
	lr := newLineReader(stdin, r.g.Limits().MaxInputBytes)
	var batch []string
	first := 0 // line number of batch[0]
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := r.run(ctx, batch)
		if err != nil && ctx.Err() != nil {
			return err
		}
		if err != nil {
			r.failed++
			fmt.Fprintf(r.stderr, "gen: %s: %v\n", lineRange(first, len(batch)), err)
		}
		batch = batch[:0]
		return nil
	}
	for {
		line, n, err := lr.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("reading stdin: %w", err)
		}
		if bad := lr.bad; bad != nil {
			// Reported now, in order: the batch before it goes first.
			if err := flush(); err != nil {
				return err
			}
			r.failed++
			fmt.Fprintf(r.stderr, "gen: line %d: %v; skipped\n", n, bad)
			if r.cfg.JSON {
				r.writeJSON(jsonLine{Input: strings.ToValidUTF8(line, "\uFFFD"), Error: bad.Error()})
				r.out.Flush()
			}
			continue
		}
		if len(batch) == 0 {
			first = n
		}
		batch = append(batch, line)
		if len(batch) == r.cfg.BatchSize {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := flush(); err != nil {
		return err
	}
	if r.failed > 0 {
		return fmt.Errorf("%d input line(s) or batch(es) failed; see the errors above", r.failed)
	}
	return nil
}

// lineRange names the lines of a batch: "line 3" or "lines 3-5".
func lineRange(first, n int) string {
	if n == 1 {
		return fmt.Sprintf("line %d", first)
	}
	return fmt.Sprintf("lines %d-%d", first, first+n-1)
}

// run generates texts as one batch and writes one line per text. With
// -json a failed batch still writes one line per input, with its error.
func (r *runner) run(ctx context.Context, texts []string) error {
	var stream s2s.StreamFunc
	if r.cfg.Stream && !r.cfg.JSON && len(texts) == 1 {
		// The first sequence streams; the others (num_return_sequences)
		// follow, one line each, when the input is done.
		stream = func(ev s2s.Event) error {
			if ev.Sample != 0 || ev.Text == "" {
				return nil
			}
			if _, err := r.out.WriteString(oneLine(ev.Text)); err != nil {
				return err
			}
			return r.out.Flush()
		}
	}
	outs, err := r.g.Generate(ctx, texts, r.cfg.Generation, stream)
	if err != nil {
		if r.cfg.JSON {
			for _, t := range texts {
				r.writeJSON(jsonLine{Input: t, Error: err.Error()})
			}
			r.out.Flush()
		}
		return err
	}
	for _, o := range outs {
		if r.cfg.JSON {
			best := o.Sequences[0]
			line := jsonLine{Input: o.Input, Output: best.Text, Tokens: best.Tokens, Score: best.Score, FinishReason: string(best.FinishReason)}
			if len(o.Sequences) > 1 {
				line.Sequences = o.Sequences
			}
			r.writeJSON(line)
			continue
		}
		seqs := o.Sequences
		if stream != nil {
			r.out.WriteString("\n")
			seqs = seqs[1:]
		}
		for _, s := range seqs {
			r.out.WriteString(oneLine(s.Text))
			r.out.WriteString("\n")
		}
	}
	return r.out.Flush()
}

func (r *runner) writeJSON(line jsonLine) {
	if line.Tokens == nil {
		line.Tokens = []int64{}
	}
	// JSON has no infinities: a sequence whose every continuation was
	// masked scores -Inf, written as the lowest float64 instead.
	line.Score = finite(line.Score)
	for i := range line.Sequences {
		line.Sequences[i].Score = finite(line.Sequences[i].Score)
	}
	// Text is written as it is: no HTML escaping of <, > and &.
	enc := json.NewEncoder(r.out)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(line); err != nil {
		enc.Encode(jsonLine{Input: line.Input, Tokens: []int64{}, Error: err.Error()})
	}
}

// finite maps NaN to 0 and the infinities to the largest float64s.
func finite(x float64) float64 {
	switch {
	case math.IsNaN(x):
		return 0
	case math.IsInf(x, -1):
		return -math.MaxFloat64
	case math.IsInf(x, 1):
		return math.MaxFloat64
	}
	return x
}

// oneLine keeps one output per line: newlines inside a text become spaces.
func oneLine(s string) string {
	return strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ").Replace(s)
}
