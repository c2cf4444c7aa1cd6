package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/s2s-dev/s2s/runtime"
)

// TestBinaryRunsAlone builds the program, copies it into an empty
// directory and runs it from there with only ONNXRUNTIME_LIB set: the model
// comes from the binary itself.
func TestBinaryRunsAlone(t *testing.T) {
	lib, err := runtime.FindLibrary("")
	if err != nil {
		t.Fatalf("ONNX Runtime is needed for this test: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "g2p")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	work := t.TempDir()
	cmd := exec.Command(bin, "hello", "pronunciation")
	cmd.Dir = work
	// HOME elsewhere: sugarme/tokenizer makes ~/.cache/tokenizer when it loads.
	cmd.Env = []string{"ONNXRUNTIME_LIB=" + lib, "PATH=/usr/bin:/bin", "HOME=" + t.TempDir()}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if got, want := string(out), "HH EH L OW\nP R AH N AH N S IY EY SH AH N\n"; got != want {
		t.Fatalf("output %q, want %q", got, want)
	}
	st, err := os.Stat(bin)
	if err != nil {
		t.Fatal(err)
	}
	if model, err := os.Stat(filepath.Join("..", "..", "models", "g2p-en.onnx")); err != nil || st.Size() < model.Size() {
		t.Fatalf("the binary (%d bytes) is smaller than the model it embeds (%v)", st.Size(), err)
	}
	entries, _ := os.ReadDir(work)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if len(names) != 0 {
		t.Errorf("the program wrote %s into its working directory", strings.Join(names, ", "))
	}
}
