package runtime

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	ort "github.com/yalue/onnxruntime_go"
)

// LibraryEnv is the environment variable that names the ONNX Runtime shared
// library. It is read by FindLibrary; config passes it on as well.
const LibraryEnv = "ONNXRUNTIME_LIB"

// SetupLibrary is where scripts/setup.sh puts the library, relative to the
// repository root.
const SetupLibrary = ".ort/lib/libonnxruntime.so.1"

// minAPI is the ONNX Runtime C API version onnxruntime_go v1.27 asks for;
// ONNX Runtime 1.24 is the first release that serves it.
const (
	minAPI   = 24
	minMajor = 1
	minMinor = 24
)

// ErrLibraryNotFound is returned (wrapped) when no ONNX Runtime shared
// library can be found; check with errors.Is.
var ErrLibraryNotFound = errors.New("runtime: libonnxruntime.so.1 not found; run scripts/setup.sh ort, or set ONNXRUNTIME_LIB / -ort-lib")

// ErrLibraryTooOld is returned (wrapped) when the library found is older
// than ONNX Runtime 1.24 (C API 24); check with errors.Is.
var ErrLibraryTooOld = errors.New("runtime: ONNX Runtime is too old; s2s needs ONNX Runtime 1.24+ (C API 24); run scripts/setup.sh ort, or set ONNXRUNTIME_LIB / -ort-lib to a newer libonnxruntime.so.1")

// ErrNotLibrary is returned (wrapped) when the file named as the library
// cannot be loaded or is not ONNX Runtime; check with errors.Is.
var ErrNotLibrary = errors.New("runtime: not a loadable ONNX Runtime library; run scripts/setup.sh ort, or point ONNXRUNTIME_LIB / -ort-lib at libonnxruntime.so.1")

// ErrNoCUDA is returned (wrapped) when provider "cuda" is asked of an ONNX
// Runtime built without the CUDA execution provider; check with errors.Is.
var ErrNoCUDA = errors.New("runtime: this ONNX Runtime has no CUDA execution provider; use provider \"cpu\", or point ONNXRUNTIME_LIB / -ort-lib at a CUDA build of libonnxruntime.so.1 (onnxruntime-gpu) with its CUDA libraries installed")

// FindLibrary returns the path of the ONNX Runtime shared library to load.
// It looks, in order, at explicit, at $ONNXRUNTIME_LIB, at the setup folder
// .ort/lib/libonnxruntime.so.1 in the working directory or any directory
// above it, then in the executable's directory or any above it, and last in
// the system's library paths (it then returns the bare name
// libonnxruntime.so.1 or libonnxruntime.so, for dlopen to resolve). An
// explicit path or $ONNXRUNTIME_LIB that names no file is an error, not a
// reason to look further.
func FindLibrary(explicit string) (string, error) {
	named := func(p, what string) (string, error) {
		st, err := os.Stat(p)
		if err != nil {
			return "", fmt.Errorf("%w (%s: no such file)", ErrLibraryNotFound, what)
		}
		if st.IsDir() {
			p = filepath.Join(p, "libonnxruntime.so.1")
			if _, err := os.Stat(p); err != nil {
				return "", fmt.Errorf("%w (%s is a directory without libonnxruntime.so.1)", ErrLibraryNotFound, what)
			}
		}
		return filepath.Abs(p)
	}
	if explicit != "" {
		return named(explicit, "library path "+explicit)
	}
	if env := os.Getenv(LibraryEnv); env != "" {
		return named(env, LibraryEnv+"="+env)
	}
	var starts []string
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	if exe, err := os.Executable(); err == nil {
		if real, err := filepath.EvalSymlinks(exe); err == nil {
			exe = real
		}
		starts = append(starts, filepath.Dir(exe))
	}
	for _, dir := range starts {
		if p, ok := searchUp(dir); ok {
			return p, nil
		}
	}
	for _, name := range []string{"libonnxruntime.so.1", "libonnxruntime.so"} {
		if _, err := probeLibrary(name, minAPI); err == nil {
			return name, nil
		}
	}
	return "", fmt.Errorf("%w (looked in %s, in .ort/lib above the working and executable directories, and in the system's library paths)", ErrLibraryNotFound, LibraryEnv)
}

// searchUp looks for SetupLibrary in dir and each directory above it.
func searchUp(dir string) (string, bool) {
	for {
		p := filepath.Join(dir, SetupLibrary)
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p, true
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", false
		}
		dir = parent
	}
}

// lib is the process's one loaded ONNX Runtime.
var lib struct {
	mu      sync.Mutex
	path    string // as FindLibrary gave it
	file    string // the file the dynamic loader opened
	version string
}

// Init loads the ONNX Runtime shared library (found with FindLibrary) and
// creates its environment, and returns the library's version. It is
// idempotent and safe for concurrent callers: once a library is loaded,
// later calls return its version. A process loads one library: asking for
// another file after that is an error.
func Init(libraryPath string) (version string, err error) {
	lib.mu.Lock()
	defer lib.mu.Unlock()
	if lib.path != "" && libraryPath == "" {
		return lib.version, nil
	}
	path, err := FindLibrary(libraryPath)
	if err != nil {
		return "", err
	}
	if lib.path != "" && sameLibrary(path, lib.path) {
		return lib.version, nil
	}
	probe, err := checkLibrary(path)
	if err != nil {
		return "", err
	}
	if lib.path != "" {
		return "", fmt.Errorf("runtime: ONNX Runtime is already loaded from %s; a process loads one library, so drop %s or use that one", lib.path, path)
	}
	ort.SetSharedLibraryPath(path)
	if err := ort.InitializeEnvironment(); err != nil {
		return "", fmt.Errorf("%w (%s: %v)", ErrNotLibrary, path, err)
	}
	lib.path = path
	lib.file = probe.file
	if lib.file == "" {
		lib.file = path
	}
	lib.version = ort.GetVersion()
	return lib.version, nil
}

// checkLibrary loads path on its own to tell a missing, broken or too old
// library apart before onnxruntime_go loads it for good.
func checkLibrary(path string) (probeResult, error) {
	p, err := probeLibrary(path, minAPI)
	if err != nil {
		return p, fmt.Errorf("%w (%s: %v)", ErrNotLibrary, path, err)
	}
	tooOld := !p.hasAPI
	if major, minor, ok := parseVersion(p.version); ok && (major < minMajor || major == minMajor && minor < minMinor) {
		tooOld = true
	}
	if tooOld {
		found := p.version
		if found == "" {
			found = "an unknown version"
		}
		return p, fmt.Errorf("%w (found %s at %s)", ErrLibraryTooOld, found, path)
	}
	return p, nil
}

// loadedLibraryFile returns the file of the loaded library ("" before Init).
func loadedLibraryFile() string {
	lib.mu.Lock()
	defer lib.mu.Unlock()
	return lib.file
}

// parseVersion reads the major and minor numbers of a version like "1.30.0".
func parseVersion(v string) (major, minor int, ok bool) {
	parts := strings.SplitN(v, ".", 3)
	if len(parts) < 2 {
		return 0, 0, false
	}
	major, err1 := strconv.Atoi(parts[0])
	minor, err2 := strconv.Atoi(parts[1])
	return major, minor, err1 == nil && err2 == nil
}

// sameLibrary reports whether two library paths name the same file.
func sameLibrary(a, b string) bool {
	if a == b {
		return true
	}
	sa, errA := os.Stat(a)
	sb, errB := os.Stat(b)
	return errA == nil && errB == nil && os.SameFile(sa, sb)
}
