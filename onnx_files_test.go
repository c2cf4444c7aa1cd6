package s2s_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/s2s-dev/s2s"
)

// TestBadONNXFiles: a graph file that is missing, empty, truncated, random
// bytes, of no layout the host serves, or whose external data lies outside
// the model directory is refused at Open with one error naming the file
// (or what is wrong with it), never a crash.
func TestBadONNXFiles(t *testing.T) {
	src := filepath.Join("testdata", "marian-tiny")
	encoder, err := os.ReadFile(filepath.Join(src, "encoder_model.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	escape, err := os.ReadFile(filepath.Join("testdata", "bad-onnx", "escape.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	random := make([]byte, 4096)
	for i := range random {
		random[i] = byte(i*7919 + i/13)
	}
	for name, c := range map[string]struct {
		files  map[string][]byte // nil removes the file
		secret bool              // put the external data escape.onnx reads beside the directory
		says   string
	}{
		"encoder missing":   {files: map[string][]byte{"encoder_model.onnx": nil}, says: "encoder_model.onnx is missing"},
		"encoder empty":     {files: map[string][]byte{"encoder_model.onnx": {}}, says: "encoder_model.onnx"},
		"encoder truncated": {files: map[string][]byte{"encoder_model.onnx": encoder[:len(encoder)/2]}, says: "encoder_model.onnx"},
		"encoder random":    {files: map[string][]byte{"encoder_model.onnx": random}, says: "encoder_model.onnx"},
		"decoder of no layout": {files: map[string][]byte{"decoder_model_merged.onnx": encoder},
			says: `decoder_model_merged.onnx: input "attention_mask" is not one the runtime can feed`},
		"external data outside the directory": {files: map[string][]byte{"encoder_model.onnx": escape}, secret: true,
			says: "escapes model directory"},
	} {
		t.Run(name, func(t *testing.T) {
			dir := copyModel(t, src, nil)
			for file, data := range c.files {
				path := filepath.Join(dir, file)
				if data == nil {
					err = os.Remove(path)
				} else {
					err = os.WriteFile(path, data, 0o644)
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			if c.secret {
				// Readable, so that only the path check can refuse it.
				if err := os.WriteFile(filepath.Join(filepath.Dir(dir), "secret.bin"), make([]byte, 64), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			g, err := s2s.Open(dir, s2s.Options{})
			if err == nil {
				g.Close()
				t.Fatal("Open accepted it")
			}
			if !strings.Contains(err.Error(), c.says) {
				t.Errorf("%v does not say %q", err, c.says)
			}
		})
	}
}
