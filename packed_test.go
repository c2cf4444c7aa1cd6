package s2s_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/s2s-dev/s2s"
	"github.com/s2s-dev/s2s/config"
	"github.com/s2s-dev/s2s/models"
	"github.com/s2s-dev/s2s/runtime"
)

// openBytes opens the packed model file from memory.
func openBytes(t *testing.T, file string, opts s2s.Options) *s2s.Generator {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	g, err := s2s.OpenBytes(data, opts)
	if err != nil {
		t.Fatalf("open %s from memory: %v", file, err)
	}
	t.Cleanup(func() {
		if err := g.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return g
}

// sameOutputs compares two generators' outputs sequence by sequence:
// the same tokens, text and finish reason, scores within 1e-5 (the parts
// are the directory's graphs after ONNX Runtime's basic optimizations, which
// order some float operations differently: logits differ by up to 6e-6).
func sameOutputs(t *testing.T, what string, got, want []s2s.Output) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d outputs, directory %d", what, len(got), len(want))
	}
	for i := range want {
		if len(got[i].Sequences) != len(want[i].Sequences) {
			t.Errorf("%s input %d: %d sequences, directory %d", what, i, len(got[i].Sequences), len(want[i].Sequences))
			continue
		}
		for k, w := range want[i].Sequences {
			g := got[i].Sequences[k]
			if !slices.Equal(g.Tokens, w.Tokens) || g.Text != w.Text || g.FinishReason != w.FinishReason || math.Abs(g.Score-w.Score) > 1e-5 {
				t.Errorf("%s input %d sequence %d: packed %v %q (%v), directory %v %q (%v)", what, i, k, g.Tokens, g.Text, g.Score, w.Tokens, w.Text, w.Score)
			}
		}
	}
}

// TestPackedMatchesTransformers runs the greedy goldens through each
// family's packed file, opened from its path and from memory.
func TestPackedMatchesTransformers(t *testing.T) {
	for _, family := range families {
		file := filepath.Join("testdata", family+"-tiny.onnx")
		t.Run(family+"/file", func(t *testing.T) { checkGreedyGoldens(t, open(t, file, s2s.Options{}), family) })
		t.Run(family+"/bytes", func(t *testing.T) { checkGreedyGoldens(t, openBytes(t, file, s2s.Options{}), family) })
	}
}

// TestPackedMatchesDirectory generates the goldens' inputs, greedy and with
// the beam goldens' options, through each family's packed file (from
// memory) and its directory (the split graphs, which the packed parts
// are): the same outputs.
func TestPackedMatchesDirectory(t *testing.T) {
	for _, family := range families {
		t.Run(family, func(t *testing.T) {
			dir := open(t, filepath.Join("testdata", family+"-tiny"), s2s.Options{Runtime: runtime.Options{DecoderGraphs: runtime.GraphsSplit}})
			packed := openBytes(t, filepath.Join("testdata", family+"-tiny.onnx"), s2s.Options{})
			ctx := context.Background()
			var inputs []string
			for _, gd := range readGoldens(t, filepath.Join("testdata", "goldens", "greedy-"+family+".jsonl"))[:12] {
				inputs = append(inputs, gd.Input)
			}
			for _, beams := range []int{1, 4} {
				opts := dir.Defaults()
				opts.NumBeams, opts.NumReturnSequences = beams, beams
				want, err := dir.Generate(ctx, inputs, opts, nil)
				if err != nil {
					t.Fatal(err)
				}
				got, err := packed.Generate(ctx, inputs, opts, nil)
				if err != nil {
					t.Fatal(err)
				}
				sameOutputs(t, family, got, want)
			}
			seen := map[string]bool{}
			for _, gd := range readGoldens(t, filepath.Join("testdata", "goldens", "beam-"+family+".jsonl")) {
				k, _ := json.Marshal([]any{gd.Batch, gd.Options})
				if seen[string(k)] || len(seen) == 6 { // six requests keep the test quick
					continue
				}
				seen[string(k)] = true
				opts, err := config.ApplyGenerateKwargs(dir.Defaults(), gd.Options)
				if err != nil {
					t.Fatal(err)
				}
				want, err := dir.Generate(ctx, gd.Batch, opts, nil)
				if err != nil {
					t.Fatal(err)
				}
				got, err := packed.Generate(ctx, gd.Batch, opts, nil)
				if err != nil {
					t.Fatal(err)
				}
				sameOutputs(t, family, got, want)
			}
		})
	}
}

// TestPackedG2P runs words of the G2P test split through models/g2p-en.onnx
// and models/g2p-en, greedy and beam 5: the same pronunciations.
func TestPackedG2P(t *testing.T) {
	dir := open(t, filepath.Join("models", "g2p-en"), s2s.Options{})
	packed := openBytes(t, filepath.Join("models", "g2p-en.onnx"), s2s.Options{})
	f, err := os.Open(filepath.Join("models", "g2p-en", "test.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var words []string
	sc := bufio.NewScanner(f)
	for sc.Scan() && len(words) < 200 {
		w, _, _ := strings.Cut(sc.Text(), "\t")
		words = append(words, w)
	}
	if len(words) < 200 {
		t.Fatalf("%d words in test.tsv", len(words))
	}
	for _, beams := range []int{1, 5} {
		opts := dir.Defaults()
		opts.NumBeams = beams
		for i := 0; i < len(words); i += 50 {
			want, err := dir.Generate(context.Background(), words[i:i+50], opts, nil)
			if err != nil {
				t.Fatal(err)
			}
			got, err := packed.Generate(context.Background(), words[i:i+50], opts, nil)
			if err != nil {
				t.Fatal(err)
			}
			sameOutputs(t, "g2p-en", got, want)
		}
	}
	if got, err := packed.GenerateText(context.Background(), "hello", packed.Defaults()); err != nil || got != "HH EH L OW" {
		t.Errorf("hello: %q, %v", got, err)
	}
}

// TestOpenPackedErrors checks what Open and OpenBytes refuse.
func TestOpenPackedErrors(t *testing.T) {
	if _, err := s2s.Open(filepath.Join("testdata", "t5-tiny", models.OptimumEncoder), s2s.Options{}); !errors.Is(err, models.ErrNotPacked) {
		t.Errorf("a graph file of a directory: %v", err)
	} else {
		t.Log(err)
	}
	if _, err := s2s.OpenBytes(nil, s2s.Options{}); !errors.Is(err, models.ErrNotPacked) {
		t.Errorf("no bytes: %v", err)
	}
	if _, err := s2s.OpenBytes([]byte("not a model"), s2s.Options{}); !errors.Is(err, models.ErrNotPacked) {
		t.Errorf("text: %v", err)
	}
	data, err := os.ReadFile(filepath.Join("testdata", "t5-tiny.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s2s.OpenBytes(data, s2s.Options{Runtime: runtime.Options{Provider: "tpu"}}); err == nil {
		t.Error("an unknown provider was accepted")
	}
}
