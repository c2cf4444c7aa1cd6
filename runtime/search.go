package runtime

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	goruntime "runtime"
	"runtime/debug"
	"strings"

	"github.com/s2s-dev/s2s/runtime/ortinstall"
)

// modulePath is the module this package belongs to; the build repository
// is searched only in executables built from it.
const modulePath = "github.com/s2s-dev/s2s"

// Places the library search looks at (LibraryPlace.Where), in order, and
// the working directory, which it reports but never loads from.
const (
	PlaceFlag       = "-ort-lib"
	PlaceEnv        = "$" + LibraryEnv
	PlaceExecutable = "next to the executable"
	PlaceBuild      = "the repository the executable was built in"
	PlaceCache      = "the per-user cache (gen ort install)"
	PlaceSystem     = "the system's library paths"
	PlaceWorkingDir = "the working directory"
)

// LibraryPlace is one place the library search looked at.
type LibraryPlace struct {
	Where  string // one of the Place constants
	Path   string // the file looked for or found there ("" when the place has none)
	Chosen bool   // this place gave the library
	Skip   string // why it did not ("" when Chosen)
}

// searchEnv is what the library search reads of the process; tests make
// their own.
type searchEnv struct {
	getenv    func(string) string
	exe       string // the executable, symbolic links resolved ("" unknown)
	exeErr    error
	buildRoot string // the s2s checkout the executable was built from
	buildWhy  string // why there is none
	cacheRoot string // ortinstall.CacheRoot()
	cacheErr  error
	wd        string
	pins      *ortinstall.Table
	system    func(name string) bool // whether dlopen resolves name to ONNX Runtime 1.24+
}

func defaultSearchEnv() searchEnv {
	e := searchEnv{getenv: os.Getenv, pins: ortinstall.Pins(), system: func(name string) bool {
		_, err := checkLibrary(name)
		return err == nil
	}}
	if exe, err := os.Executable(); err != nil {
		e.exeErr = err
	} else if real, err := filepath.EvalSymlinks(exe); err == nil {
		e.exe = real
	} else {
		e.exe = exe
	}
	e.buildRoot, e.buildWhy = buildRoot()
	e.cacheRoot, e.cacheErr = ortinstall.CacheRoot()
	e.wd, _ = os.Getwd()
	return e
}

// buildRoot returns the root of the s2s checkout this package was compiled
// from, or why there is none. The compiler records each source file's path
// (unless -trimpath); the executable's main module must be s2s itself, so
// that a program that only depends on s2s never searches the checkout or
// module cache its copy of s2s came from.
func buildRoot() (root, why string) {
	_, file, _, ok := goruntime.Caller(0)
	if !ok {
		return "", "no source path recorded"
	}
	if !filepath.IsAbs(file) {
		return "", "built with -trimpath: no source path recorded"
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "", "no build information in the executable"
	}
	if info.Main.Path != modulePath {
		return "", fmt.Sprintf("the executable's main module is %s, not %s", info.Main.Path, modulePath)
	}
	root = filepath.Dir(filepath.Dir(file)) // ROOT/runtime/search.go
	f, err := os.Open(filepath.Join(root, "go.mod"))
	if err != nil {
		return "", fmt.Sprintf("%s is gone (%v)", root, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if fields := strings.Fields(sc.Text()); len(fields) == 2 && fields[0] == "module" {
			if fields[1] != modulePath {
				return "", fmt.Sprintf("%s now holds module %s", root, fields[1])
			}
			return root, ""
		}
	}
	return "", fmt.Sprintf("%s/go.mod names no module", root)
}

// setupFolder is the library under a repository root for provider.
func setupFolder(provider string) string {
	if provider == ProviderCUDA {
		return SetupCUDALibrary
	}
	return SetupLibrary
}

// searchLibrary is FindLibraryFor (all false: stop at the first place that
// holds a library) and SearchLibrary (all true: report every place).
func searchLibrary(e searchEnv, explicit, provider string, all bool) (string, []LibraryPlace, error) {
	if provider == "" {
		provider = ProviderCPU
	}
	var places []LibraryPlace
	chosen := ""
	var chosenErr error
	// take records a place; it returns true when the search can stop.
	take := func(p LibraryPlace) bool {
		if p.Skip == "" {
			if chosen == "" && chosenErr == nil {
				p.Chosen = true
				chosen = p.Path
			} else {
				p.Skip = "also holds one, but an earlier place comes first"
			}
		}
		places = append(places, p)
		return chosen != "" && !all
	}
	named := func(p, what string) (string, error) {
		st, err := os.Stat(p)
		if err != nil {
			return "", fmt.Errorf("%w (%s: no such file)", ErrLibraryNotFound, what)
		}
		if st.IsDir() {
			p = filepath.Join(p, ortinstall.LibraryName)
			if _, err := os.Stat(p); err != nil {
				return "", fmt.Errorf("%w (%s is a directory without %s)", ErrLibraryNotFound, what, ortinstall.LibraryName)
			}
		}
		return filepath.Abs(p)
	}

	// 1 and 2: what the user named.
	if explicit != "" {
		p, err := named(explicit, "library path "+explicit)
		if err != nil {
			return "", append(places, LibraryPlace{Where: PlaceFlag, Path: explicit, Skip: err.Error()}), err
		}
		if take(LibraryPlace{Where: PlaceFlag, Path: p}) {
			return chosen, places, nil
		}
	} else {
		places = append(places, LibraryPlace{Where: PlaceFlag, Skip: "not given"})
	}
	if env := e.getenv(LibraryEnv); env != "" {
		p, err := named(env, LibraryEnv+"="+env)
		switch {
		case err != nil && chosen == "":
			return "", append(places, LibraryPlace{Where: PlaceEnv, Path: env, Skip: err.Error()}), err
		case err != nil:
			places = append(places, LibraryPlace{Where: PlaceEnv, Path: env, Skip: err.Error()})
		case take(LibraryPlace{Where: PlaceEnv, Path: p}):
			return chosen, places, nil
		}
	} else {
		places = append(places, LibraryPlace{Where: PlaceEnv, Skip: "not set"})
	}

	rel := setupFolder(provider)
	// 3: next to the executable.
	if e.exe == "" {
		why := "the executable's path is unknown"
		if e.exeErr != nil {
			why += " (" + e.exeErr.Error() + ")"
		}
		places = append(places, LibraryPlace{Where: PlaceExecutable, Skip: why})
	} else if p, ok := searchUp(filepath.Dir(e.exe), rel); ok {
		if take(LibraryPlace{Where: PlaceExecutable, Path: p}) {
			return chosen, places, nil
		}
	} else {
		places = append(places, LibraryPlace{Where: PlaceExecutable, Path: filepath.Join(filepath.Dir(e.exe), rel),
			Skip: "no " + rel + " in " + filepath.Dir(e.exe) + " or above"})
	}

	// 4: the repository the executable was built in.
	if e.buildRoot == "" {
		places = append(places, LibraryPlace{Where: PlaceBuild, Skip: e.buildWhy})
	} else if p := filepath.Join(e.buildRoot, rel); isFile(p) {
		if take(LibraryPlace{Where: PlaceBuild, Path: p}) {
			return chosen, places, nil
		}
	} else {
		places = append(places, LibraryPlace{Where: PlaceBuild, Path: p, Skip: "no such file (run scripts/setup.sh " + setupStep(provider) + " there)"})
	}

	// 5: the per-user cache.
	variant := ortinstall.VariantCPU
	if provider == ProviderCUDA {
		variant = ortinstall.VariantCUDA
	}
	if e.cacheErr != nil {
		places = append(places, LibraryPlace{Where: PlaceCache, Skip: e.cacheErr.Error()})
	} else if inst, ok, err := ortinstall.Preferred(e.cacheRoot, variant, e.pins); err != nil {
		places = append(places, LibraryPlace{Where: PlaceCache, Path: e.cacheRoot, Skip: err.Error()})
	} else if ok {
		if take(LibraryPlace{Where: PlaceCache, Path: inst.Library()}) {
			return chosen, places, nil
		}
	} else {
		install := "gen ort install"
		if variant == ortinstall.VariantCUDA {
			install += " --cuda"
		}
		places = append(places, LibraryPlace{Where: PlaceCache, Path: e.cacheRoot, Skip: "no " + variant + " build installed (" + install + ")"})
	}

	// 6: the system's library paths.
	if all && chosen != "" {
		places = append(places, LibraryPlace{Where: PlaceSystem, Skip: "not looked at: an earlier place comes first"})
	} else if entry, p, ok := relativeLibraryPath(e, []string{"libonnxruntime.so.1", "libonnxruntime.so"}); ok {
		// dlopen would take it from the working directory.
		places = append(places, LibraryPlace{Where: PlaceSystem, Path: p,
			Skip: fmt.Sprintf("not looked at: LD_LIBRARY_PATH has the relative entry %q, through which dlopen would load %s from the working directory; name the library with -ort-lib instead", entry, p)})
	} else {
		found := false
		for _, name := range []string{"libonnxruntime.so.1", "libonnxruntime.so"} {
			if e.system(name) {
				found = true
				if take(LibraryPlace{Where: PlaceSystem, Path: name}) {
					return chosen, places, nil
				}
				break
			}
		}
		if !found {
			places = append(places, LibraryPlace{Where: PlaceSystem, Skip: "no usable libonnxruntime.so.1 or libonnxruntime.so (ONNX Runtime 1.24+)"})
		}
	}

	// The working directory: reported, never loaded.
	if all && e.wd != "" {
		if p, ok := searchUp(e.wd, rel); ok {
			r, _ := filepath.Rel(e.wd, filepath.Dir(p))
			why := "never loaded unless named: a directory you run gen in may hold anything; to use it, pass -ort-lib " + r
			if chosen != "" && sameLibrary(p, chosen) {
				why = "the same file as the library chosen"
			}
			places = append(places, LibraryPlace{Where: PlaceWorkingDir, Path: p, Skip: why})
		}
	}

	if chosen != "" {
		return chosen, places, nil
	}
	looked := fmt.Sprintf("looked at -ort-lib, %s, %s next to the executable and in the repository it was built in, the per-user cache and the system's library paths; the working directory only when named, e.g. -ort-lib %s",
		LibraryEnv, filepath.Dir(rel), filepath.Dir(rel))
	var err error = fmt.Errorf("%w (%s)", ErrLibraryNotFound, looked)
	if provider == ProviderCUDA {
		err = &sentinels{
			msg:  "runtime: no CUDA build of ONNX Runtime found; run gen ort install --cuda (or scripts/setup.sh ort-cuda in the repository), or set ONNXRUNTIME_LIB / -ort-lib to a CUDA build of libonnxruntime.so.1 (" + looked + ")",
			errs: []error{ErrLibraryNotFound, ErrNoCUDA},
		}
	}
	return "", places, err
}

// relativeLibraryPath reports an empty or relative LD_LIBRARY_PATH entry
// (empty means the working directory) under which one of names exists,
// relative to the working directory, and that file.
func relativeLibraryPath(e searchEnv, names []string) (entry, path string, ok bool) {
	for _, entry := range strings.Split(e.getenv("LD_LIBRARY_PATH"), ":") {
		if filepath.IsAbs(entry) || e.wd == "" {
			continue
		}
		for _, name := range names {
			if p := filepath.Join(e.wd, entry, name); isFile(p) {
				return entry, p, true
			}
		}
	}
	return "", "", false
}

// setupStep is the scripts/setup.sh step that fetches the library for provider.
func setupStep(provider string) string {
	if provider == ProviderCUDA {
		return "ort-cuda"
	}
	return "ort"
}

// searchUp looks for rel in dir and each directory above it.
func searchUp(dir, rel string) (string, bool) {
	for {
		p := filepath.Join(dir, rel)
		if isFile(p) {
			return p, true
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", false
		}
		dir = parent
	}
}

// isFile reports whether p exists and is not a directory.
func isFile(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

// sentinels is an error with its own message that matches (errors.Is)
// several sentinel errors without repeating their messages.
type sentinels struct {
	msg  string
	errs []error
}

func (e *sentinels) Error() string   { return e.msg }
func (e *sentinels) Unwrap() []error { return e.errs }
