package ortinstall

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// ErrNotPinned is returned (wrapped) when the version, variant or
// architecture asked for has no pinned build; check with errors.Is.
var ErrNotPinned = errors.New("ortinstall: not pinned")

// ErrToolMissing is returned (wrapped) when npm or pip, needed to fetch a
// build, is not installed; check with errors.Is.
var ErrToolMissing = errors.New("ortinstall: a package tool is missing")

// ErrFetch is returned (wrapped) when npm or pip fails to fetch a file
// (no network, a registry that refuses, an unknown version); check with
// errors.Is.
var ErrFetch = errors.New("ortinstall: fetching from the package registry failed")

// ErrChecksum is returned (wrapped) when a fetched or extracted file does
// not have its pinned sha256; the message names the file. Check with
// errors.Is.
var ErrChecksum = errors.New("ortinstall: checksum mismatch")

// Options say what Install fetches and where it puts it.
type Options struct {
	Version string // ONNX Runtime version ("" = the pin table's default)
	CUDA    bool   // the CUDA build instead of the CPU one
	Root    string // cache root ("" = CacheRoot())
	Arch    string // "x64" or "arm64" ("" = HostArch())
	Force   bool   // fetch again even when the build is installed
	Pins    *Table // nil = the embedded pin table
	Log     io.Writer

	// NPM and Pip are the commands that run npm and pip (nil = npm from
	// PATH; pip, pip3 or python3 -m pip from PATH).
	NPM, Pip []string
}

// Variant returns the variant o asks for.
func (o Options) Variant() string {
	if o.CUDA {
		return VariantCUDA
	}
	return VariantCPU
}

// Install fetches the pinned build o asks for, checks the sha256 of every
// file fetched and extracted, and installs it in the cache atomically. A
// build already installed is returned as it is unless o.Force.
func Install(ctx context.Context, o Options) (Installation, error) {
	pins := o.Pins
	if pins == nil {
		pins = Pins()
	}
	variant := o.Variant()
	version := o.Version
	if version == "" {
		version = pins.Default(variant)
	}
	arch := o.Arch
	if arch == "" {
		arch = HostArch()
	}
	b, err := pins.Build(version, variant, arch)
	if err != nil {
		return Installation{}, err
	}
	root := o.Root
	if root == "" {
		if root, err = CacheRoot(); err != nil {
			return Installation{}, err
		}
	}
	logf := func(format string, args ...any) {
		if o.Log != nil {
			fmt.Fprintf(o.Log, format+"\n", args...)
		}
	}
	final := LibDir(root, version, variant)
	if inst, err := Check(final); err == nil && !o.Force {
		logf("ONNX Runtime %s (%s) is already installed in %s", version, variant, final)
		return inst, nil
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return Installation{}, fmt.Errorf("ortinstall: making the cache %s: %w", root, err)
	}
	tmp, err := os.MkdirTemp(root, ".install-")
	if err != nil {
		return Installation{}, fmt.Errorf("ortinstall: %w", err)
	}
	defer os.RemoveAll(tmp)
	download := filepath.Join(tmp, "download")
	stage := filepath.Join(tmp, "lib")
	for _, d := range []string{download, stage} {
		if err := os.Mkdir(d, 0o755); err != nil {
			return Installation{}, fmt.Errorf("ortinstall: %w", err)
		}
	}
	if err := fetch(ctx, b, download, o, logf); err != nil {
		return Installation{}, err
	}
	for _, d := range b.Dists {
		if err := checkSum(filepath.Join(download, d.File), d.File, d.SHA256); err != nil {
			return Installation{}, err
		}
	}
	var stamp strings.Builder
	fmt.Fprintf(&stamp, "s2s-ort %s %s %s 1\n", version, variant, arch)
	for _, d := range b.Dists {
		var files []File
		for _, f := range b.Files {
			if f.From == d.File {
				files = append(files, f)
			}
		}
		sizes, err := extract(filepath.Join(download, d.File), d.File, files, stage)
		if err != nil {
			return Installation{}, err
		}
		for _, f := range files {
			fmt.Fprintf(&stamp, "%s %s %d\n", f.Name, f.SHA256, sizes[f.Name])
		}
	}
	if err := writeSynced(filepath.Join(stage, StampName), []byte(stamp.String()), 0o644); err != nil {
		return Installation{}, err
	}
	if err := os.MkdirAll(filepath.Dir(final), 0o755); err != nil {
		return Installation{}, fmt.Errorf("ortinstall: %w", err)
	}
	if _, err := os.Lstat(final); err == nil {
		// A previous installation (forced again, or broken): move it aside
		// first; it is removed with tmp.
		if err := os.Rename(final, filepath.Join(tmp, "old")); err != nil {
			return Installation{}, fmt.Errorf("ortinstall: moving the old %s aside: %w", final, err)
		}
	}
	if err := os.Rename(stage, final); err != nil {
		if inst, cerr := Check(final); cerr == nil {
			return inst, nil // another gen ort install finished first
		}
		return Installation{}, fmt.Errorf("ortinstall: installing into %s: %w", final, err)
	}
	logf("ONNX Runtime %s (%s, %s) installed in %s", version, variant, arch, final)
	return Check(final)
}

// fetch runs npm and pip to download b's dists into dir.
func fetch(ctx context.Context, b *Build, dir string, o Options, logf func(string, ...any)) error {
	var wheels []Dist
	for _, d := range b.Dists {
		switch d.Tool {
		case "npm":
			npm := o.NPM
			if npm == nil {
				p, err := exec.LookPath("npm")
				if err != nil {
					return fmt.Errorf("%w: npm is needed to fetch ONNX Runtime from the npm registry (install Node.js's npm, e.g. apt-get install npm), or set ONNXRUNTIME_LIB to a libonnxruntime.so.1 you have", ErrToolMissing)
				}
				npm = []string{p}
			}
			spec := d.Package + "@" + d.PackageVersion
			logf("fetching %s with npm pack (no install scripts run)", spec)
			if err := run(ctx, dir, append(slices.Clone(npm), "pack", "--silent", spec), "npm pack "+spec,
				"check the network and npm's registry (npm config get registry), or set ONNXRUNTIME_LIB"); err != nil {
				return err
			}
		case "pip":
			wheels = append(wheels, d)
		}
	}
	if len(wheels) == 0 {
		return nil
	}
	pip := o.Pip
	if pip == nil {
		pip = findPip()
		if pip == nil {
			return fmt.Errorf("%w: pip is needed to fetch the CUDA build from PyPI (apt-get install python3-pip), or set ONNXRUNTIME_LIB to a CUDA build of libonnxruntime.so.1 you have", ErrToolMissing)
		}
	}
	req := filepath.Join(dir, "requirements.txt")
	var lines strings.Builder
	var names []string
	for _, w := range wheels {
		fmt.Fprintf(&lines, "%s==%s --hash=sha256:%s\n", w.Package, w.PackageVersion, w.SHA256)
		names = append(names, w.Package+"=="+w.PackageVersion)
	}
	if err := os.WriteFile(req, []byte(lines.String()), 0o644); err != nil {
		return fmt.Errorf("ortinstall: %w", err)
	}
	args := append(slices.Clone(pip), "download", "--no-deps", "--only-binary=:all:", "--require-hashes",
		"--disable-pip-version-check", "--progress-bar", "off", "-d", dir, "-r", req)
	args = append(args, wheelTags(wheels)...)
	logf("fetching %s with pip download --no-deps (nothing is installed)", strings.Join(names, " "))
	return run(ctx, dir, args, "pip download "+strings.Join(names, " "),
		"check the network and pip's index (pip config list), or set ONNXRUNTIME_LIB")
}

// findPip returns the command that runs pip, nil when there is none.
func findPip() []string {
	for _, name := range []string{"pip", "pip3"} {
		if p, err := exec.LookPath(name); err == nil {
			return []string{p}
		}
	}
	if p, err := exec.LookPath("python3"); err == nil {
		if exec.Command(p, "-m", "pip", "--version").Run() == nil {
			return []string{p, "-m", "pip"}
		}
	}
	return nil
}

// wheelTags returns the pip download flags that let pip pick exactly the
// pinned wheel files whatever Python runs pip: the platforms and the
// CPython version their file names carry.
func wheelTags(wheels []Dist) []string {
	var platforms []string
	var python string
	for _, w := range wheels {
		parts := strings.Split(strings.TrimSuffix(w.File, ".whl"), "-")
		if len(parts) < 5 {
			continue
		}
		if py := parts[len(parts)-3]; strings.HasPrefix(py, "cp3") && python == "" {
			python = py
		}
		for _, p := range strings.Split(parts[len(parts)-1], ".") {
			if !slices.Contains(platforms, p) {
				platforms = append(platforms, p)
			}
		}
	}
	var args []string
	for _, p := range platforms {
		args = append(args, "--platform", p)
	}
	if python != "" {
		args = append(args, "--python-version", "3."+strings.TrimPrefix(python, "cp3"), "--implementation", "cp", "--abi", python)
	}
	return args
}

// run runs a package tool in dir and turns its failure into an error that
// quotes the end of its output and says what to do.
func run(ctx context.Context, dir string, args []string, what, hint string) error {
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Dir = dir
	cmd.WaitDelay = 5 * time.Second
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("%w: %s stopped: %v; %s", ErrFetch, what, ctx.Err(), hint)
		}
		var execErr *exec.Error
		if errors.As(err, &execErr) {
			return fmt.Errorf("%w: %s: %v", ErrToolMissing, what, err)
		}
		return fmt.Errorf("%w: %s failed (%v): %s; %s", ErrFetch, what, err, tail(out.String(), 1500), hint)
	}
	return nil
}

// tail returns the last n bytes of s, on one line.
func tail(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) > n {
		s = "…" + s[len(s)-n:]
	}
	if s == "" {
		return "no output"
	}
	return strings.Join(strings.Fields(s), " ")
}

// checkSum checks that the file at path has the sha256 want; name is how
// the error names it.
func checkSum(path, name, want string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("%w: %s was not fetched (%v); the package tool wrote something else", ErrFetch, name, err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return fmt.Errorf("ortinstall: reading %s: %w", name, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want {
		return fmt.Errorf("%w: %s has sha256 %s, not the pinned %s; refusing it (a changed or corrupted download: run again, and if it persists report it)", ErrChecksum, name, got, want)
	}
	return nil
}

// extract takes files out of the archive at path (a .tgz or a .whl) into
// dir, checking each one's sha256 as it is written, and returns their
// sizes.
func extract(path, name string, files []File, dir string) (map[string]int64, error) {
	want := map[string]File{}
	for _, f := range files {
		want[f.Member] = f
	}
	sizes := map[string]int64{}
	take := func(member string, r io.Reader) error {
		f, ok := want[member]
		if !ok {
			return nil
		}
		delete(want, member)
		n, err := writeChecked(filepath.Join(dir, f.Name), r, name+":"+member, f.SHA256)
		sizes[f.Name] = n
		return err
	}
	switch {
	case strings.HasSuffix(name, ".tgz") || strings.HasSuffix(name, ".tar.gz"):
		fh, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("ortinstall: %w", err)
		}
		defer fh.Close()
		gz, err := gzip.NewReader(fh)
		if err != nil {
			return nil, fmt.Errorf("ortinstall: %s is not a gzip tarball: %v", name, err)
		}
		tr := tar.NewReader(gz)
		for len(want) > 0 {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				return nil, fmt.Errorf("ortinstall: reading %s: %v", name, err)
			}
			if h.Typeflag != tar.TypeReg {
				continue
			}
			if err := take(h.Name, tr); err != nil {
				return nil, err
			}
		}
	case strings.HasSuffix(name, ".whl"):
		zr, err := zip.OpenReader(path)
		if err != nil {
			return nil, fmt.Errorf("ortinstall: %s is not a wheel (zip): %v", name, err)
		}
		defer zr.Close()
		for _, zf := range zr.File {
			if _, ok := want[zf.Name]; !ok {
				continue
			}
			rc, err := zf.Open()
			if err != nil {
				return nil, fmt.Errorf("ortinstall: reading %s:%s: %v", name, zf.Name, err)
			}
			err = take(zf.Name, rc)
			rc.Close()
			if err != nil {
				return nil, err
			}
		}
	default:
		return nil, fmt.Errorf("ortinstall: %s is neither a .tgz nor a .whl", name)
	}
	for member := range want {
		return nil, fmt.Errorf("%w: %s has no %s; the pins do not match the package", ErrChecksum, name, member)
	}
	return sizes, nil
}

// writeChecked writes r to path (mode 0755) and checks its sha256.
func writeChecked(path string, r io.Reader, name, want string) (int64, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		return 0, fmt.Errorf("ortinstall: %w", err)
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), r)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return n, fmt.Errorf("ortinstall: extracting %s: %w", name, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want {
		return n, fmt.Errorf("%w: %s has sha256 %s, not the pinned %s; refusing it", ErrChecksum, name, got, want)
	}
	return n, nil
}

// writeSynced writes data to path and flushes it to disk.
func writeSynced(path string, data []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return fmt.Errorf("ortinstall: %w", err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("ortinstall: writing %s: %w", path, err)
	}
	return nil
}
