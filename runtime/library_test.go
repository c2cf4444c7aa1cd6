package runtime

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// buildFake compiles testdata/fakeort.c into dir with the given -D flags
// and returns the library's path.
func buildFake(t *testing.T, name string, defines ...string) string {
	t.Helper()
	cc := "cc"
	if out, err := exec.Command("go", "env", "CC").Output(); err == nil && strings.TrimSpace(string(out)) != "" {
		cc = strings.Fields(strings.TrimSpace(string(out)))[0]
	}
	lib := filepath.Join(t.TempDir(), name)
	args := append([]string{"-shared", "-fPIC", "-o", lib}, defines...)
	args = append(args, filepath.Join("testdata", "fakeort.c"))
	if out, err := exec.Command(cc, args...).CombinedOutput(); err != nil {
		t.Fatalf("compiling the fake library with %s (cgo needs a C compiler anyway): %v\n%s", cc, err, out)
	}
	return lib
}

func TestFindLibrary(t *testing.T) {
	t.Run("explicit path that does not exist", func(t *testing.T) {
		_, err := FindLibrary("/nonexistent/libonnxruntime.so.1")
		if !errors.Is(err, ErrLibraryNotFound) {
			t.Fatalf("got %v, want ErrLibraryNotFound", err)
		}
		if !strings.Contains(err.Error(), "scripts/setup.sh ort") || !strings.Contains(err.Error(), "/nonexistent/") {
			t.Errorf("message %q should name the path and say how to fix it", err)
		}
	})
	t.Run("environment names a missing file", func(t *testing.T) {
		t.Setenv(LibraryEnv, "/nonexistent/lib.so")
		if _, err := FindLibrary(""); !errors.Is(err, ErrLibraryNotFound) {
			t.Fatalf("got %v, want ErrLibraryNotFound", err)
		}
	})
	t.Run("explicit wins over the environment", func(t *testing.T) {
		dir := t.TempDir()
		want := filepath.Join(dir, "mine.so")
		os.WriteFile(want, nil, 0o644)
		t.Setenv(LibraryEnv, "/nonexistent/lib.so")
		if got, err := FindLibrary(want); err != nil || got != want {
			t.Fatalf("got %q, %v; want %q", got, err, want)
		}
	})
	t.Run("environment", func(t *testing.T) {
		want := filepath.Join(t.TempDir(), "env.so")
		os.WriteFile(want, nil, 0o644)
		t.Setenv(LibraryEnv, want)
		if got, err := FindLibrary(""); err != nil || got != want {
			t.Fatalf("got %q, %v; want %q", got, err, want)
		}
	})
	t.Run("directory holding the library", func(t *testing.T) {
		dir := t.TempDir()
		want := filepath.Join(dir, "libonnxruntime.so.1")
		os.WriteFile(want, nil, 0o644)
		if got, err := FindLibrary(dir); err != nil || got != want {
			t.Fatalf("got %q, %v; want %q", got, err, want)
		}
		if _, err := FindLibrary(t.TempDir()); !errors.Is(err, ErrLibraryNotFound) {
			t.Fatalf("empty directory: got %v, want ErrLibraryNotFound", err)
		}
	})
	t.Run("setup folder above the working directory", func(t *testing.T) {
		root := t.TempDir()
		want := filepath.Join(root, SetupLibrary)
		os.MkdirAll(filepath.Dir(want), 0o755)
		os.WriteFile(want, nil, 0o644)
		deep := filepath.Join(root, "a", "b", "c")
		os.MkdirAll(deep, 0o755)
		t.Setenv(LibraryEnv, "")
		t.Chdir(deep)
		if got, err := FindLibrary(""); err != nil || got != want {
			t.Fatalf("got %q, %v; want %q", got, err, want)
		}
	})
	t.Run("nothing anywhere", func(t *testing.T) {
		t.Setenv(LibraryEnv, "")
		t.Chdir(t.TempDir())
		got, err := FindLibrary("")
		switch {
		case err == nil && !strings.Contains(got, "/"):
			// the system's library paths hold one: a bare name for dlopen
		case errors.Is(err, ErrLibraryNotFound):
		default:
			t.Fatalf("got %q, %v; want ErrLibraryNotFound or a bare system name", got, err)
		}
	})
}

func TestInitErrors(t *testing.T) {
	mustInit(t)
	notELF := filepath.Join(t.TempDir(), "libonnxruntime.so.1")
	os.WriteFile(notELF, []byte("not a shared library\n"), 0o644)
	tests := []struct {
		name    string
		path    func(t *testing.T) string
		want    error
		message string
	}{
		{"missing file", func(*testing.T) string { return "/nonexistent/libonnxruntime.so.1" }, ErrLibraryNotFound, "not found"},
		{"not a shared library", func(*testing.T) string { return notELF }, ErrNotLibrary, notELF},
		{"a library that is not onnx runtime", func(t *testing.T) string {
			return buildFake(t, "libother.so", "-DFAKE_NO_BASE")
		}, ErrNotLibrary, "OrtGetApiBase"},
		{"onnx runtime 1.20", func(t *testing.T) string {
			return buildFake(t, "libold.so", `-DFAKE_VERSION="1.20.0"`, "-DFAKE_MAX_API=20")
		}, ErrLibraryTooOld, "found 1.20.0"},
		{"new version string but no c api 24", func(t *testing.T) string {
			return buildFake(t, "libodd.so", `-DFAKE_VERSION="1.30.0"`, "-DFAKE_MAX_API=23")
		}, ErrLibraryTooOld, "found 1.30.0"},
		{"c api 24 but version 1.23", func(t *testing.T) string {
			return buildFake(t, "libold2.so", `-DFAKE_VERSION="1.23.2"`, "-DFAKE_MAX_API=24")
		}, ErrLibraryTooOld, "found 1.23.2"},
		{"a second, usable library after the first", func(t *testing.T) string {
			return buildFake(t, "libnew.so", `-DFAKE_VERSION="1.31.0"`, "-DFAKE_MAX_API=30")
		}, nil, "already loaded"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Init(tc.path(t))
			if err == nil {
				t.Fatal("no error")
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "runtime: ") || !strings.Contains(msg, tc.message) {
				t.Errorf("message %q should start with \"runtime: \" and contain %q", msg, tc.message)
			}
		})
	}
}

func TestInitIdempotent(t *testing.T) {
	mustInit(t)
	path, err := FindLibrary("")
	if err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(t.TempDir(), "libonnxruntime.so.1")
	if err := os.Symlink(path, link); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	versions := make([]string, 16)
	errs := make([]error, 16)
	for i := range versions {
		wg.Go(func() {
			p := ""
			switch i % 3 {
			case 1:
				p = path
			case 2:
				p = link // the same file by another name
			}
			versions[i], errs[i] = Init(p)
		})
	}
	wg.Wait()
	for i := range versions {
		if errs[i] != nil || versions[i] != versions[0] {
			t.Fatalf("call %d: %q, %v; want %q", i, versions[i], errs[i], versions[0])
		}
	}
	major, minor, ok := parseVersion(versions[0])
	if !ok || major < minMajor || major == minMajor && minor < minMinor {
		t.Fatalf("loaded version %q is not 1.24+", versions[0])
	}
}

func TestParseVersion(t *testing.T) {
	tests := []struct {
		in           string
		major, minor int
		ok           bool
	}{
		{"1.30.0", 1, 30, true},
		{"1.24.1", 1, 24, true},
		{"2.0", 2, 0, true},
		{"1", 0, 0, false},
		{"", 0, 0, false},
		{"x.y.z", 0, 0, false},
	}
	for _, tc := range tests {
		major, minor, ok := parseVersion(tc.in)
		if major != tc.major || minor != tc.minor || ok != tc.ok {
			t.Errorf("parseVersion(%q) = %d, %d, %v; want %d, %d, %v", tc.in, major, minor, ok, tc.major, tc.minor, tc.ok)
		}
	}
}
