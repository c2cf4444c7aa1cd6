package main

import (
	"encoding/json"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestPackedModelFile runs gen on a packed model file and on its directory
// (split graphs, which the file's parts are): the same outputs and tokens,
// scores within 1e-5.
func TestPackedModelFile(t *testing.T) {
	file := filepath.Join("..", "..", "testdata", "bart-tiny.onnx")
	dir := filepath.Join("..", "..", "testdata", "bart-tiny")
	lines := func(out string) []jsonLine {
		var ls []jsonLine
		for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
			var j jsonLine
			if err := json.Unmarshal([]byte(l), &j); err != nil {
				t.Fatalf("%q: %v", l, err)
			}
			ls = append(ls, j)
		}
		return ls
	}
	for _, beams := range []string{"1", "3"} {
		args := []string{"-json", "-max-new-tokens", "10", "-num-beams", beams, "-decoder-graphs", "split", "hello world", "a fool and his money"}
		want, _, err := gen(t, "", append([]string{"-model", dir}, args...)...)
		if err != nil {
			t.Fatal(err)
		}
		got, _, err := gen(t, "", append([]string{"-model", file}, args...)...)
		if err != nil {
			t.Fatal(err)
		}
		w, g := lines(want), lines(got)
		if len(w) != 2 || len(g) != len(w) {
			t.Fatalf("beams %s: %d lines from the file, %d from the directory", beams, len(g), len(w))
		}
		for i := range w {
			if g[i].Output != w[i].Output || !slices.Equal(g[i].Tokens, w[i].Tokens) || math.Abs(g[i].Score-w[i].Score) > 1e-5 {
				t.Errorf("beams %s line %d: file %+v, directory %+v", beams, i, g[i], w[i])
			}
		}
	}
	if _, _, err := gen(t, "", "-model", filepath.Join(dir, "encoder_model.onnx"), "hello"); err == nil {
		t.Fatal("gen ran a graph file of a directory")
	}
}
