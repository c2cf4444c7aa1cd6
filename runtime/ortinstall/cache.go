package ortinstall

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"strconv"
	"strings"
)

// LibraryName is the file name of the ONNX Runtime library in a lib
// directory.
const LibraryName = "libonnxruntime.so.1"

// cudaProvider is the CUDA execution provider's library in a CUDA lib
// directory.
const cudaProvider = "libonnxruntime_providers_cuda.so"

// StampName is the file that marks a complete installation; it lists the
// installed files.
const StampName = "INSTALLED"

// CacheRoot returns the per-user cache of ONNX Runtime builds:
// $XDG_CACHE_HOME/s2s/ort, else ~/.cache/s2s/ort.
func CacheRoot() (string, error) {
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("ortinstall: no per-user cache directory (%v); set XDG_CACHE_HOME or HOME", err)
	}
	return filepath.Join(dir, "s2s", "ort"), nil
}

// HostArch returns the pin table's name of this machine's architecture
// ("x64", "arm64"), or "" when none is pinned for it.
func HostArch() string {
	if goruntime.GOOS != "linux" {
		return ""
	}
	switch goruntime.GOARCH {
	case "amd64":
		return "x64"
	case "arm64":
		return "arm64"
	}
	return ""
}

// LibDir returns the lib directory of version and variant under the cache
// root: root/VERSION/lib for the CPU build, root/VERSION/cuda/lib for CUDA.
func LibDir(root, version, variant string) string {
	if variant == VariantCUDA {
		return filepath.Join(root, version, "cuda", "lib")
	}
	return filepath.Join(root, version, "lib")
}

// Installation is one installed build in the cache.
type Installation struct {
	Version string
	Variant string
	Arch    string
	Dir     string // its lib directory
}

// Library returns the path of the installation's libonnxruntime.so.1.
func (i Installation) Library() string { return filepath.Join(i.Dir, LibraryName) }

// Installed lists the complete installations under root, newest version
// first, CPU before CUDA. A directory without its stamp, or whose files do
// not match the stamp's sizes, is left out (see Check).
func Installed(root string) ([]Installation, error) {
	entries, err := os.ReadDir(root)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("ortinstall: reading the cache %s: %w", root, err)
	}
	var out []Installation
	for _, e := range entries {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		for _, variant := range []string{VariantCPU, VariantCUDA} {
			if inst, err := Check(LibDir(root, e.Name(), variant)); err == nil && inst.Version == e.Name() && inst.Variant == variant {
				out = append(out, inst)
			}
		}
	}
	slices.SortStableFunc(out, func(a, b Installation) int {
		if c := compareVersions(b.Version, a.Version); c != 0 {
			return c
		}
		return strings.Compare(a.Variant, b.Variant)
	})
	return out, nil
}

// Preferred returns the installation of variant under root that the host
// loads: the pinned default version when it is installed, else the newest
// installed one. ok is false when none is installed.
func Preferred(root, variant string, pins *Table) (inst Installation, ok bool, err error) {
	all, err := Installed(root)
	if err != nil {
		return Installation{}, false, err
	}
	if pins == nil {
		pins = Pins()
	}
	var newest *Installation
	for i := range all {
		if all[i].Variant != variant {
			continue
		}
		if all[i].Version == pins.Default(variant) {
			return all[i], true, nil
		}
		if newest == nil {
			newest = &all[i]
		}
	}
	if newest == nil {
		return Installation{}, false, nil
	}
	return *newest, true, nil
}

// Check reads the stamp of the lib directory dir and checks that every file
// it lists is there with its size. It does not hash the files (that is
// done once, at install time).
func Check(dir string) (Installation, error) {
	f, err := os.Open(filepath.Join(dir, StampName))
	if err != nil {
		return Installation{}, fmt.Errorf("ortinstall: %s is not a complete installation (no %s); run gen ort install again", dir, StampName)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	var inst Installation
	files := 0
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		switch {
		case len(fields) == 5 && fields[0] == "s2s-ort":
			inst = Installation{Version: fields[1], Variant: fields[2], Arch: fields[3], Dir: dir}
		case len(fields) == 3:
			size, err := strconv.ParseInt(fields[2], 10, 64)
			st, serr := os.Stat(filepath.Join(dir, fields[0]))
			if err != nil || serr != nil || st.Size() != size {
				return Installation{}, fmt.Errorf("ortinstall: %s: %s is missing or changed since it was installed; run gen ort install --force", dir, fields[0])
			}
			files++
		}
	}
	if err := sc.Err(); err != nil {
		return Installation{}, fmt.Errorf("ortinstall: reading %s: %w", filepath.Join(dir, StampName), err)
	}
	if inst.Version == "" || files == 0 {
		return Installation{}, fmt.Errorf("ortinstall: %s has a broken %s; run gen ort install --force", dir, StampName)
	}
	return inst, nil
}
