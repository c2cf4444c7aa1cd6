package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
)

func TestDefaultWords(t *testing.T) {
	for model, want := range map[string]string{
		"models/g2p-en":      "models/g2p-en/test.tsv",
		"models/g2p-en.onnx": "models/g2p-en/test.tsv",
		"/m/other.onnx":      "/m/other/test.tsv",
	} {
		if got := defaultWords(model); got != want {
			t.Errorf("defaultWords(%q) = %q, want %q", model, got, want)
		}
	}
}

// TestPackedModelScores scores the first words of the test split through
// the packed G2P model and its directory: the same error rates.
func TestPackedModelScores(t *testing.T) {
	score := func(model string) string {
		var out, errOut bytes.Buffer
		if err := Execute(context.Background(), []string{"-model", model, "-limit", "40", "-beams", "1,3"}, &out, &errOut); err != nil {
			t.Fatalf("%s: %v (%s)", model, err, errOut.String())
		}
		// The error rates, without the timing columns (seconds, words/s)
		// and the header's paths.
		var rows []string
		for _, l := range strings.Split(out.String(), "\n")[2:] {
			if f := strings.Fields(l); len(f) >= 4 {
				rows = append(rows, strings.Join(f[:len(f)-2], " "))
			}
		}
		return strings.Join(rows, "\n")
	}
	dir := filepath.Join("..", "..", "models", "g2p-en")
	want, got := score(dir), score(dir+".onnx")
	if want == "" || got != want {
		t.Fatalf("packed:\n%s\ndirectory:\n%s", got, want)
	}
	t.Log(got)
}
