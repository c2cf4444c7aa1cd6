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

// SetupLibrary is where scripts/setup.sh ort puts the library, relative to
// the repository root.
const SetupLibrary = ".ort/lib/libonnxruntime.so.1"

// SetupCUDALibrary is where scripts/setup.sh ort-cuda puts the CUDA build,
// relative to the repository root.
const SetupCUDALibrary = ".ort/cuda/lib/libonnxruntime.so.1"

// minAPI is the ONNX Runtime C API version onnxruntime_go v1.27 asks for;
// ONNX Runtime 1.24 is the first release that serves it.
const (
	minAPI   = 24
	minMajor = 1
	minMinor = 24
)

// ErrLibraryNotFound is returned (wrapped) when no ONNX Runtime shared
// library can be found; check with errors.Is.
var ErrLibraryNotFound = errors.New("runtime: libonnxruntime.so.1 not found; run gen ort install (or scripts/setup.sh ort in the repository), or set ONNXRUNTIME_LIB / -ort-lib")

// ErrLibraryTooOld is returned (wrapped) when the library found is older
// than ONNX Runtime 1.24 (C API 24); check with errors.Is.
var ErrLibraryTooOld = errors.New("runtime: ONNX Runtime is too old; s2s needs ONNX Runtime 1.24+ (C API 24); run gen ort install, or set ONNXRUNTIME_LIB / -ort-lib to a newer libonnxruntime.so.1")

// ErrNotLibrary is returned (wrapped) when the file named as the library
// cannot be loaded or is not ONNX Runtime; check with errors.Is.
var ErrNotLibrary = errors.New("runtime: not a loadable ONNX Runtime library; run gen ort install, or point ONNXRUNTIME_LIB / -ort-lib at libonnxruntime.so.1")

// FindLibrary returns the path of the ONNX Runtime shared library (the CPU
// build) to load; see FindLibraryFor.
func FindLibrary(explicit string) (string, error) {
	return FindLibraryFor(explicit, ProviderCPU)
}

// FindLibraryFor returns the path of the ONNX Runtime shared library to
// load for provider ("cpu" or "cuda"; "" is "cpu"). It looks, in order, at
//
//  1. explicit (the -ort-lib flag, Options.LibraryPath),
//  2. $ONNXRUNTIME_LIB,
//  3. .ort/lib next to the executable: in its directory (symbolic links
//     resolved) or any directory above it,
//  4. .ort/lib in the repository the executable was built in (the s2s
//     checkout a `go build`, `go run` or `go test` compiled; the source path
//     the compiler recorded), unless it was built with -trimpath or as
//     part of another module,
//  5. the per-user cache of gen ort install ($XDG_CACHE_HOME/s2s/ort,
//     else ~/.cache/s2s/ort),
//  6. the system's library paths (it then returns the bare name
//     libonnxruntime.so.1 or libonnxruntime.so, for dlopen to resolve).
//
// For "cuda" the folders are .ort/cuda/lib and the cache's VERSION/cuda/lib.
// The working directory is never searched: a library there is loaded only
// when named, e.g. -ort-lib .ort/lib (a relative path is taken from the
// working directory). An explicit path or $ONNXRUNTIME_LIB that names no
// file is an error, not a reason to look further. SearchLibrary reports
// every place and why it was passed over.
func FindLibraryFor(explicit, provider string) (string, error) {
	path, _, err := searchLibrary(defaultSearchEnv(), explicit, provider, false)
	return path, err
}

// SearchLibrary looks at every place FindLibraryFor looks at, without
// stopping at the first that holds a library, and reports each in order:
// the one chosen has Chosen set, the others say why they were passed over.
// It also reports a library in the working directory (never loaded unless
// named). path and err are FindLibraryFor's.
func SearchLibrary(explicit, provider string) (path string, places []LibraryPlace, err error) {
	return searchLibrary(defaultSearchEnv(), explicit, provider, true)
}

// lib is the process's one loaded ONNX Runtime.
var lib struct {
	mu      sync.Mutex
	path    string // as FindLibrary gave it
	file    string // the file the dynamic loader opened
	version string
}

// Init loads the ONNX Runtime shared library for the CPU provider; see
// InitFor.
func Init(libraryPath string) (version string, err error) {
	return InitFor(libraryPath, ProviderCPU)
}

// InitFor loads the ONNX Runtime shared library (found with
// FindLibraryFor(libraryPath, provider)) and creates its environment, and
// returns the library's version. For provider "cuda" it first checks what
// the CUDA provider needs (CheckCUDA) and fails with one error naming what
// is missing. It is idempotent and safe for concurrent callers: once a
// library is loaded, later calls return its version. A process loads one
// library: asking for another file after that is an error.
func InitFor(libraryPath, provider string) (version string, err error) {
	lib.mu.Lock()
	defer lib.mu.Unlock()
	if lib.path != "" && libraryPath == "" {
		return lib.version, nil
	}
	path, err := FindLibraryFor(libraryPath, provider)
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
	file := probe.file
	if file == "" {
		file = path
	}
	if provider == ProviderCUDA {
		if _, err := checkCUDA(filepath.Dir(file), 0, cudaDriver, true); err != nil {
			return "", err
		}
	}
	ort.SetSharedLibraryPath(path)
	if err := ort.InitializeEnvironment(); err != nil {
		return "", fmt.Errorf("%w (%s: %v)", ErrNotLibrary, path, err)
	}
	lib.path = path
	lib.file = file
	lib.version = ort.GetVersion()
	return lib.version, nil
}

// LoadedLibrary returns the path of the loaded library as the search gave
// it, the file the dynamic loader opened and its version; all "" before
// Init.
func LoadedLibrary() (path, file, version string) {
	lib.mu.Lock()
	defer lib.mu.Unlock()
	return lib.path, lib.file, lib.version
}

// LibraryInfo is what ProbeLibrary learns of a library.
type LibraryInfo struct {
	Version string // ONNX Runtime's version string
	File    string // the file the dynamic loader opened (a bare name resolved)
}

// ProbeLibrary opens the library at path (a file, or a bare name for the
// system's library paths) on its own, without creating its environment,
// and returns its version and file. A missing, broken or too old library
// is an error (ErrNotLibrary, ErrLibraryTooOld).
func ProbeLibrary(path string) (LibraryInfo, error) {
	p, err := checkLibrary(path)
	if err != nil {
		return LibraryInfo{}, err
	}
	info := LibraryInfo{Version: p.version, File: p.file}
	if info.File == "" {
		info.File = path
	}
	return info, nil
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
