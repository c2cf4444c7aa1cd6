package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/s2s-dev/s2s/models"
	"github.com/s2s-dev/s2s/runtime"
)

func init() {
	register(command{name: "inspect", summary: "show a model's graphs, their inputs and outputs, and the layout the host detects", run: runInspect})
}

const inspectUsage = `Usage:
  gen inspect [-json] [-ort-lib PATH] MODEL_DIR

Prints each graph of the model directory with its inputs and outputs (type,
shape, what the host feeds or takes there), and the decoder layout the host
detects for each choice of decoder graphs.

Flags:
`

// runInspect runs gen inspect.
func runInspect(_ context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("gen inspect", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, inspectUsage); fs.PrintDefaults() }
	asJSON := fs.Bool("json", false, "print the report as JSON")
	ortLib := fs.String("ort-lib", "", "explicit ONNX Runtime library, as gen's -ort-lib")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "gen inspect: give one model directory")
		fs.Usage()
		return errUsage
	}
	m, err := models.Load(fs.Arg(0))
	if err != nil {
		return err
	}
	spec, err := runtime.Inspect(m, *ortLib)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(spec)
	}
	writeInspect(stdout, m, spec)
	return nil
}

// writeInspect prints spec as text.
func writeInspect(w io.Writer, m *models.Manifest, spec *runtime.ModelSpec) {
	fmt.Fprintf(w, "%s: %s (%s)\n", spec.Dir, spec.Architecture, m.ModelType)
	for _, g := range spec.Graphs {
		if g.Size > 0 {
			fmt.Fprintf(w, "\n%s: %s (%s)\n", g.Role, filepath.Base(g.File), sizeText(g.Size))
		} else {
			fmt.Fprintf(w, "\n%s: %s\n", g.Role, filepath.Base(g.File))
		}
		if g.Err != "" {
			fmt.Fprintf(w, "  unusable: %s\n", g.Err)
		}
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		for _, part := range []struct {
			what string
			ts   []runtime.TensorSpec
		}{{"in", g.Inputs}, {"out", g.Outputs}} {
			for _, t := range part.ts {
				role := t.Role
				if role == "" {
					role = "(not used by the host)"
				}
				fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", part.what, t.Name, t.Type, shapeText(t.Shape), role)
			}
		}
		tw.Flush()
	}
	fmt.Fprintln(w)
	for _, l := range spec.Layouts {
		if l.Err != "" {
			fmt.Fprintf(w, "layout (%s decoder graphs): unusable: %s\n", l.Graphs, l.Err)
			continue
		}
		cross := "takes the cross-attention cache (computed once, at the first step)"
		if !l.CrossCache {
			cross = "recomputes cross-attention from encoder_hidden_states at each step"
		}
		fmt.Fprintf(w, "layout (%s decoder graphs): %d layers, %d heads x %d, encoder hidden %d, %d logits; the step graph %s\n",
			l.Graphs, l.Layers, l.Heads, l.HeadDim, l.Hidden, l.Vocab, cross)
	}
	if spec.Architecture == models.ArchTransformer {
		fmt.Fprintf(w, "decoder graphs auto: %s on the CPU, %s on CUDA\n", orNone(spec.AutoCPU), orNone(spec.AutoCUDA))
	}
	if spec.Architecture == models.ArchRNN {
		if spec.Err != "" {
			fmt.Fprintf(w, "states: unusable: %s\n", spec.Err)
		} else {
			fmt.Fprintf(w, "states: %s; %d logits\n", stateNames(m.States), spec.Vocab)
		}
	}
}

// shapeText writes a shape with "?" for open axes: [?, ?, 512].
func shapeText(shape []int64) string {
	if shape == nil {
		return "-"
	}
	parts := make([]string, len(shape))
	for i, d := range shape {
		if d < 0 {
			parts[i] = "?"
		} else {
			parts[i] = strconv.FormatInt(d, 10)
		}
	}
	return "[" + strings.Join(parts, ", ") + "]"
}
