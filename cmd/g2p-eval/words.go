package main

import (
	"path/filepath"
	"strings"
)

// defaultWords returns the test file of a model: test.tsv in its
// directory, or for a packed file DIR.onnx (which holds no test split) the
// one in the directory DIR it was packed from.
func defaultWords(model string) string {
	if strings.HasSuffix(model, ".onnx") {
		return filepath.Join(strings.TrimSuffix(model, ".onnx"), "test.tsv")
	}
	return filepath.Join(model, "test.tsv")
}
