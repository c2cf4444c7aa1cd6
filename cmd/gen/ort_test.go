package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/s2s-dev/s2s/runtime/ortinstall"
)

// checkout is the repository root, from cmd/gen.
func checkout(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// TestORTInstallRefusesTamperedDownload runs gen ort install against a fake
// npm whose onnxruntime-node tarball differs from the pinned one by one
// byte: nothing is installed and the error names the file.
func TestORTInstallRefusesTamperedDownload(t *testing.T) {
	cache := t.TempDir()
	t.Setenv("XDG_CACHE_HOME", cache)
	pins := ortinstall.Pins()
	b, err := pins.Build(pins.Default(ortinstall.VariantCPU), ortinstall.VariantCPU, "x64")
	if err != nil {
		t.Fatal(err)
	}
	// A tarball with the right member names, whatever its bytes.
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	lib := []byte("one byte changed")
	tw.WriteHeader(&tar.Header{Name: b.Files[0].Member, Mode: 0o755, Size: int64(len(lib)), Typeflag: tar.TypeReg})
	tw.Write(lib)
	tw.Close()
	gz.Close()
	reg := t.TempDir()
	os.WriteFile(filepath.Join(reg, b.Dists[0].File), buf.Bytes(), 0o644)
	bin := t.TempDir()
	os.WriteFile(filepath.Join(bin, "npm"), []byte("#!/bin/sh\ncp '"+reg+"'/*.tgz .\n"), 0o755)
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))

	out, _, err := gen(t, "", "ort", "install", "-version", pins.Default(ortinstall.VariantCPU))
	if !errors.Is(err, ortinstall.ErrChecksum) || !strings.Contains(err.Error(), b.Dists[0].File) {
		t.Fatalf("got %v, want ErrChecksum naming %s", err, b.Dists[0].File)
	}
	if out != "" {
		t.Errorf("printed %q for a refused install", out)
	}
	if list, _ := ortinstall.Installed(filepath.Join(cache, "s2s", "ort")); len(list) != 0 {
		t.Fatalf("installed %+v from a tampered download", list)
	}
}

func TestORTListAndPath(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	t.Setenv("ONNXRUNTIME_LIB", "")
	out, _, err := gen(t, "", "ort", "list")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "(empty: gen ort install") || !strings.Contains(out, "-provider cpu: "+filepath.Join(checkout(t), ".ort", "lib")) {
		t.Errorf("gen ort list:\n%s", out)
	}
	out, _, err = gen(t, "", "ort", "path")
	if err != nil || strings.TrimSpace(out) != filepath.Join(checkout(t), ".ort", "lib", "libonnxruntime.so.1") {
		t.Fatalf("gen ort path: %q, %v", out, err)
	}
	if _, _, err := gen(t, "", "ort", "frobnicate"); !errors.Is(err, errUsage) {
		t.Errorf("unknown subcommand: %v", err)
	}
	if _, _, err := gen(t, "", "ort"); !errors.Is(err, errUsage) {
		t.Errorf("no subcommand: %v", err)
	}
}

// TestEmbedderOutsideRepository is issue 15's test: a program outside the
// repository (its own module, requiring s2s through a replace to this
// checkout) finds the ONNX Runtime that gen ort install put into an empty
// per-user cache, with no ONNX Runtime variable set, run from a directory
// that holds nothing, and generates text. gen ort install really runs npm
// pack against the registry.
func TestEmbedderOutsideRepository(t *testing.T) {
	if _, err := exec.LookPath("npm"); err != nil {
		t.Fatal("npm is needed for gen ort install (scripts/setup.sh needs it too)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	// The go command keeps its build cache under XDG_CACHE_HOME too: keep
	// using the usual one.
	goCache, err := exec.Command("go", "env", "GOCACHE").Output()
	if err != nil {
		t.Fatalf("go env GOCACHE: %v", err)
	}
	cache := t.TempDir()
	t.Setenv("XDG_CACHE_HOME", cache)
	t.Setenv("ONNXRUNTIME_LIB", "")

	var out, errOut bytes.Buffer
	if err := Execute(ctx, []string{"ort", "install"}, nil, &out, &errOut); err != nil {
		t.Fatalf("gen ort install: %v\n%s", err, errOut.String())
	}
	pins := ortinstall.Pins()
	want := ortinstall.LibDir(filepath.Join(cache, "s2s", "ort"), pins.Default(ortinstall.VariantCPU), ortinstall.VariantCPU)
	if got := strings.TrimSpace(out.String()); got != filepath.Join(want, "libonnxruntime.so.1") {
		t.Fatalf("gen ort install printed %q, want the library in %s", got, want)
	}

	root := checkout(t)
	app := t.TempDir()
	src, err := os.ReadFile(filepath.Join(root, "examples", "embed", "main.go"))
	if err != nil {
		t.Fatal(err)
	}
	goSum, err := os.ReadFile(filepath.Join(root, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	goVersion := "1.26"
	if data, err := os.ReadFile(filepath.Join(root, "go.mod")); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if v, ok := strings.CutPrefix(line, "go "); ok {
				goVersion = strings.TrimSpace(v)
			}
		}
	}
	mod := "module example.com/embedder\n\ngo " + goVersion + "\n\nrequire github.com/s2s-dev/s2s v0.0.0\n\nreplace github.com/s2s-dev/s2s => " + root + "\n"
	for name, data := range map[string][]byte{"main.go": src, "go.mod": []byte(mod), "go.sum": goSum} {
		os.WriteFile(filepath.Join(app, name), data, 0o644)
	}
	exe := filepath.Join(t.TempDir(), "embedder")
	build := exec.CommandContext(ctx, "go", "build", "-mod=mod", "-o", exe, ".")
	build.Dir = app
	build.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOCACHE="+strings.TrimSpace(string(goCache)))
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the outside program: %v\n%s", err, b)
	}

	run := exec.CommandContext(ctx, exe, filepath.Join(root, "models", "g2p-en"), "hello")
	run.Dir = t.TempDir()
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ONNXRUNTIME_LIB=") && !strings.HasPrefix(kv, "S2S_") && !strings.HasPrefix(kv, "LD_LIBRARY_PATH=") {
			env = append(env, kv)
		}
	}
	run.Env = env // XDG_CACHE_HOME is the test's cache
	var stdout, stderr bytes.Buffer
	run.Stdout, run.Stderr = &stdout, &stderr
	if err := run.Run(); err != nil {
		t.Fatalf("the outside program: %v\n%s", err, stderr.String())
	}
	if got := strings.TrimSpace(stdout.String()); got != "HH EH L OW" {
		t.Errorf("the outside program generated %q, want HH EH L OW", got)
	}
	if !strings.Contains(stderr.String(), want) {
		t.Errorf("the outside program did not load the cache's library %s: %s", want, stderr.String())
	}
}
