package runtime

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/s2s-dev/s2s/runtime/ortinstall"
)

// buildFake compiles testdata/fakeort.c into dir with the given -D flags
// and returns the library's path.
func buildFake(t *testing.T, name string, defines ...string) string {
	t.Helper()
	return compileLib(t, filepath.Join(t.TempDir(), name), filepath.Join("testdata", "fakeort.c"), defines...)
}

// cc returns the C compiler cgo uses.
func cc() string {
	if out, err := exec.Command("go", "env", "CC").Output(); err == nil && strings.TrimSpace(string(out)) != "" {
		return strings.Fields(strings.TrimSpace(string(out)))[0]
	}
	return "cc"
}

// compileLib compiles the C source src into the shared library lib with
// the given extra arguments and returns lib.
func compileLib(t *testing.T, lib, src string, args ...string) string {
	t.Helper()
	all := append([]string{"-shared", "-fPIC", "-o", lib, src}, args...)
	if out, err := exec.Command(cc(), all...).CombinedOutput(); err != nil {
		t.Fatalf("compiling %s with %s (cgo needs a C compiler anyway): %v\n%s", filepath.Base(lib), cc(), err, out)
	}
	return lib
}

func TestFindLibrary(t *testing.T) {
	t.Run("explicit path that does not exist", func(t *testing.T) {
		_, err := FindLibrary("/nonexistent/libonnxruntime.so.1")
		if !errors.Is(err, ErrLibraryNotFound) {
			t.Fatalf("got %v, want ErrLibraryNotFound", err)
		}
		if !strings.Contains(err.Error(), "gen ort install") || !strings.Contains(err.Error(), "/nonexistent/") {
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
	t.Run("a relative path is taken from the working directory", func(t *testing.T) {
		wd := t.TempDir()
		want := filepath.Join(wd, SetupLibrary)
		os.MkdirAll(filepath.Dir(want), 0o755)
		os.WriteFile(want, nil, 0o644)
		t.Chdir(wd)
		if got, err := FindLibrary(".ort/lib"); err != nil || !sameLibrary(got, want) {
			t.Fatalf("got %q, %v; want %q", got, err, want)
		}
	})
}

// TestWorkingDirectoryLibraryIsNotLoaded is the regression test for loading
// code from the working directory: a library in .ort/lib of the directory
// gen runs in (or above it) is neither chosen nor even opened, unless named.
func TestWorkingDirectoryLibraryIsNotLoaded(t *testing.T) {
	mustInit(t) // the real library is loaded the way users find it
	wd := t.TempDir()
	marker := filepath.Join(t.TempDir(), "loaded")
	planted := filepath.Join(wd, SetupLibrary)
	os.MkdirAll(filepath.Dir(planted), 0o755)
	fake := buildFake(t, "libonnxruntime.so.1", `-DFAKE_VERSION="1.31.0"`, "-DFAKE_MAX_API=30", `-DFAKE_MARKER="`+marker+`"`)
	data, err := os.ReadFile(fake)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(planted, data, 0o755)
	deep := filepath.Join(wd, "models", "downloaded")
	os.MkdirAll(deep, 0o755)
	t.Chdir(deep)
	t.Setenv(LibraryEnv, "")
	t.Setenv("XDG_CACHE_HOME", t.TempDir())

	for _, provider := range []string{ProviderCPU, ""} {
		got, err := FindLibraryFor("", provider)
		if err == nil && sameLibrary(got, planted) {
			t.Fatalf("FindLibrary chose %s, the working directory's library", got)
		}
	}
	_, places, _ := SearchLibrary("", ProviderCPU)
	reported := false
	for _, p := range places {
		if p.Chosen && sameLibrary(p.Path, planted) {
			t.Fatalf("SearchLibrary chose the working directory's library: %+v", p)
		}
		if p.Where == PlaceWorkingDir {
			reported = true
			if !sameLibrary(p.Path, planted) || !strings.Contains(p.Skip, "-ort-lib ../../.ort/lib") {
				t.Errorf("working directory reported as %+v; want its path and how to name it", p)
			}
		}
	}
	if !reported {
		t.Errorf("SearchLibrary does not report the working directory's library: %+v", places)
	}
	if _, err := Init(""); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("the working directory's library was loaded (its constructor ran)")
	}
	// Named, it is the user's choice.
	if got, err := FindLibrary("../../.ort/lib"); err != nil || !sameLibrary(got, planted) {
		t.Fatalf("named relative path: got %q, %v; want %q", got, err, planted)
	}
}

// fakeFile writes an empty file at path, making its directories.
func fakeFile(t *testing.T, path string) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("lib"), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// fakeCache installs a fake build of version and variant in a cache root,
// stamped the way gen ort install stamps it.
func fakeCache(t *testing.T, root, version, variant string) string {
	t.Helper()
	dir := ortinstall.LibDir(root, version, variant)
	lib := fakeFile(t, filepath.Join(dir, "libonnxruntime.so.1"))
	stamp := fmt.Sprintf("s2s-ort %s %s x64 1\nlibonnxruntime.so.1 %s 3\n", version, variant, strings.Repeat("0", 64))
	if err := os.WriteFile(filepath.Join(dir, ortinstall.StampName), []byte(stamp), 0o644); err != nil {
		t.Fatal(err)
	}
	return lib
}

func TestSearchOrder(t *testing.T) {
	base := t.TempDir()
	exe := filepath.Join(base, "app", "bin", "gen")
	build := filepath.Join(base, "checkout")
	cache := filepath.Join(base, "cache")
	wd := filepath.Join(base, "work")
	os.MkdirAll(wd, 0o755)
	env := func(vars map[string]string, systemHas bool) searchEnv {
		return searchEnv{
			getenv:    func(k string) string { return vars[k] },
			exe:       exe,
			buildRoot: build,
			cacheRoot: cache,
			wd:        wd,
			pins:      ortinstall.Pins(),
			system:    func(string) bool { return systemHas },
		}
	}
	explicit := fakeFile(t, filepath.Join(base, "explicit", "libonnxruntime.so.1"))
	fromEnv := fakeFile(t, filepath.Join(base, "env", "libonnxruntime.so.1"))
	nextToExe := fakeFile(t, filepath.Join(base, "app", SetupLibrary)) // one directory above bin/
	inBuild := fakeFile(t, filepath.Join(build, SetupLibrary))
	inCache := fakeCache(t, cache, ortinstall.Pins().Default(ortinstall.VariantCPU), ortinstall.VariantCPU)
	fakeFile(t, filepath.Join(wd, SetupLibrary))
	fakeFile(t, filepath.Join(wd, SetupCUDALibrary))
	cudaExe := fakeFile(t, filepath.Join(base, "app", SetupCUDALibrary))
	cudaBuild := fakeFile(t, filepath.Join(build, SetupCUDALibrary))
	cudaCache := fakeCache(t, cache, "1.29.0", ortinstall.VariantCUDA)

	tests := []struct {
		name     string
		explicit string
		vars     map[string]string
		provider string
		remove   []string // files removed before the case
		want     string
		where    string
	}{
		{"explicit first", explicit, map[string]string{LibraryEnv: fromEnv}, "", nil, explicit, PlaceFlag},
		{"environment second", "", map[string]string{LibraryEnv: fromEnv}, "", nil, fromEnv, PlaceEnv},
		{"next to the executable third", "", nil, "", nil, nextToExe, PlaceExecutable},
		{"cuda next to the executable", "", nil, ProviderCUDA, nil, cudaExe, PlaceExecutable},
		{"the build repository fourth", "", nil, "", []string{nextToExe}, inBuild, PlaceBuild},
		{"cuda in the build repository", "", nil, ProviderCUDA, []string{cudaExe}, cudaBuild, PlaceBuild},
		{"the cache fifth", "", nil, "", []string{inBuild}, inCache, PlaceCache},
		{"cuda in the cache, any version", "", nil, ProviderCUDA, []string{cudaBuild}, cudaCache, PlaceCache},
		{"the system last", "", nil, "", []string{inCache}, "libonnxruntime.so.1", PlaceSystem},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, f := range tc.remove {
				os.Remove(f)
			}
			e := env(tc.vars, true)
			got, _, err := searchLibrary(e, tc.explicit, tc.provider, false)
			if err != nil || got != tc.want {
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
			_, places, _ := searchLibrary(e, tc.explicit, tc.provider, true)
			chosen := 0
			for _, p := range places {
				if p.Chosen {
					chosen++
					if p.Where != tc.where || p.Path != tc.want {
						t.Errorf("chosen place %+v, want %s", p, tc.where)
					}
				} else if p.Skip == "" {
					t.Errorf("place %+v neither chosen nor skipped with a reason", p)
				}
			}
			if chosen != 1 {
				t.Errorf("%d places chosen: %+v", chosen, places)
			}
			if last := places[len(places)-1]; last.Where != PlaceWorkingDir || !strings.Contains(last.Skip, "-ort-lib "+filepath.Dir(setupFolder(tc.provider))) {
				t.Errorf("the working directory's library is not reported last: %+v", places)
			}
		})
	}
	t.Run("nothing anywhere", func(t *testing.T) {
		e := env(nil, false)
		e.exe, e.buildRoot, e.cacheRoot = filepath.Join(t.TempDir(), "gen"), t.TempDir(), t.TempDir()
		_, places, err := searchLibrary(e, "", ProviderCPU, true)
		if !errors.Is(err, ErrLibraryNotFound) || !strings.Contains(err.Error(), "gen ort install") || !strings.Contains(err.Error(), "-ort-lib .ort") {
			t.Fatalf("got %v, want ErrLibraryNotFound saying gen ort install and -ort-lib", err)
		}
		if len(places) != 7 {
			t.Errorf("want the six places and the working directory, got %+v", places)
		}
		_, _, err = searchLibrary(e, "", ProviderCUDA, false)
		if !errors.Is(err, ErrLibraryNotFound) || !errors.Is(err, ErrNoCUDA) || !strings.Contains(err.Error(), "gen ort install --cuda") {
			t.Fatalf("cuda: got %v, want ErrLibraryNotFound and ErrNoCUDA saying gen ort install --cuda", err)
		}
	})
	t.Run("a relative LD_LIBRARY_PATH entry does not reach the working directory", func(t *testing.T) {
		e := env(map[string]string{"LD_LIBRARY_PATH": "/usr/lib:.ort/lib"}, true)
		e.exe, e.buildRoot, e.cacheRoot = filepath.Join(t.TempDir(), "gen"), t.TempDir(), t.TempDir()
		_, places, err := searchLibrary(e, "", ProviderCPU, false)
		if err == nil {
			t.Fatal("the system search went ahead with LD_LIBRARY_PATH pointing into the working directory")
		}
		if last := places[len(places)-1]; last.Where != PlaceSystem || !strings.Contains(last.Skip, `relative entry ".ort/lib"`) {
			t.Errorf("system place %+v", last)
		}
		e.getenv = func(k string) string { return map[string]string{"LD_LIBRARY_PATH": ":/usr/lib"}[k] } // "" is the working directory
		if _, _, err := searchLibrary(e, "", ProviderCPU, false); err != nil {
			t.Errorf("an empty entry with no library in the working directory: %v", err)
		}
	})
	t.Run("an incomplete cache installation is passed over", func(t *testing.T) {
		root := t.TempDir()
		fakeFile(t, filepath.Join(ortinstall.LibDir(root, "1.30.0", ortinstall.VariantCPU), "libonnxruntime.so.1")) // no stamp
		e := env(nil, false)
		e.exe, e.buildRoot, e.buildWhy, e.cacheRoot = "", "", "test", root
		if got, _, err := searchLibrary(e, "", ProviderCPU, false); err == nil {
			t.Fatalf("chose %q from a half-installed cache", got)
		}
	})
}

func TestBuildRoot(t *testing.T) {
	root, why := buildRoot()
	want, _ := filepath.Abs("..")
	if root != want {
		t.Fatalf("buildRoot() = %q (%s), want the checkout %q", root, why, want)
	}
}

func TestProviders(t *testing.T) {
	mustInit(t)
	_, file, _ := LoadedLibrary()
	got, err := Providers(file)
	if err != nil || !slices.Contains(got, "CPUExecutionProvider") {
		t.Fatalf("Providers(%s) = %v, %v; want CPUExecutionProvider among them", file, got, err)
	}
	fake := buildFake(t, "libprov.so", `-DFAKE_VERSION="1.30.0"`, "-DFAKE_MAX_API=24", `-DFAKE_PROVIDERS="CUDAExecutionProvider","CPUExecutionProvider"`)
	if got, err := Providers(fake); err != nil || !slices.Equal(got, []string{"CUDAExecutionProvider", "CPUExecutionProvider"}) {
		t.Fatalf("fake: %v, %v", got, err)
	}
	if _, err := Providers(buildFake(t, "libold.so", `-DFAKE_VERSION="1.20.0"`, "-DFAKE_MAX_API=20")); !errors.Is(err, ErrLibraryTooOld) {
		t.Fatalf("old library: got %v, want ErrLibraryTooOld", err)
	}
}

// TestOrtAPIIndexes checks the OrtApi positions probe.go calls against the
// onnxruntime_c_api.h that onnxruntime_go ships.
func TestOrtAPIIndexes(t *testing.T) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/yalue/onnxruntime_go").Output()
	if err != nil {
		t.Fatalf("locating onnxruntime_go: %v", err)
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "offsets.c")
	var body strings.Builder
	body.WriteString("#include <stdio.h>\n#include <stddef.h>\n#include \"onnxruntime_c_api.h\"\nint main(void) {\n")
	names := slices.Sorted(maps.Keys(apiIndexes))
	for _, n := range names {
		fmt.Fprintf(&body, "\tprintf(\"%%zu\\n\", offsetof(OrtApi, %s) / sizeof(void *));\n", n)
	}
	body.WriteString("\treturn 0;\n}\n")
	os.WriteFile(src, []byte(body.String()), 0o644)
	bin := filepath.Join(dir, "offsets")
	if out, err := exec.Command(cc(), "-I", strings.TrimSpace(string(out)), "-o", bin, src).CombinedOutput(); err != nil {
		t.Fatalf("compiling: %v\n%s", err, out)
	}
	got, err := exec.Command(bin).Output()
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Fields(string(got))
	for i, n := range names {
		if lines[i] != fmt.Sprint(apiIndexes[n]) {
			t.Errorf("OrtApi.%s is at %s, probe.go calls %d", n, lines[i], apiIndexes[n])
		}
	}
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
