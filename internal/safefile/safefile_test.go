package safefile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func TestWithin(t *testing.T) {
	dir := t.TempDir()
	outside := t.TempDir()
	os.WriteFile(filepath.Join(dir, "a"), []byte("x"), 0o644)
	os.WriteFile(filepath.Join(outside, "b"), []byte("x"), 0o644)
	os.Mkdir(filepath.Join(dir, "sub"), 0o755)
	os.Symlink("../a", filepath.Join(dir, "sub", "up"))                // inside, through ..
	os.Symlink(filepath.Join(outside, "b"), filepath.Join(dir, "out")) // outside
	os.Symlink(outside, filepath.Join(dir, "outdir"))
	for name, ok := range map[string]bool{
		"a": true, "sub/up": true, "./a": true, "sub/../a": true, "missing": true,
		"../a": false, "/etc/passwd": false, "out": false, "outdir/b": false, "sub/../../a": false, "": false,
	} {
		_, err := Within(dir, name)
		if ok != (err == nil) || !ok && !errors.Is(err, ErrOutside) {
			t.Errorf("Within(%q) = %v, want ok %v", name, err, ok)
		}
	}
}

func TestReadFile(t *testing.T) {
	dir := t.TempDir()
	small := filepath.Join(dir, "small")
	os.WriteFile(small, []byte("hello"), 0o644)
	if data, err := ReadFile(small, 5, "L"); err != nil || string(data) != "hello" {
		t.Errorf("small: %q %v", data, err)
	}
	if _, err := ReadFile(small, 4, "the.Limit"); !errors.Is(err, ErrTooLarge) {
		t.Errorf("over the limit: %v", err)
	}
	if _, err := ReadFile(dir, 100, "L"); !errors.Is(err, ErrNotRegular) {
		t.Errorf("directory: %v", err)
	}
	if _, err := ReadFile(filepath.Join(dir, "none"), 100, "L"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing: %v", err)
	}
	if _, err := ReadFile("/dev/zero", 100, "L"); !errors.Is(err, ErrNotRegular) {
		t.Errorf("/dev/zero: %v", err)
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err == nil {
		if _, err := ReadFile(fifo, 100, "L"); !errors.Is(err, ErrNotRegular) {
			t.Errorf("fifo: %v", err)
		}
	}
}
