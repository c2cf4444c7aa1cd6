package runtime

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// cudaLayout is a synthetic CUDA build of ONNX Runtime: a fake
// libonnxruntime.so.1 and a libonnxruntime_providers_cuda.so that links
// (DT_NEEDED) the libraries onnxruntime-gpu 1.30's provider links, each a
// small library with that soname, so that CheckCUDA reads the same
// dependencies from it as from the real provider.
type cudaLayout struct {
	dir   string            // the lib directory, as setup.sh ort-cuda lays it out
	libs  map[string]string // soname -> file in dir
	build string            // where the fakes were linked
}

var fakeCUDANeeded = []string{"libcublasLt.so.13", "libcublas.so.13", "libcurand.so.10", "libcudart.so.13", "libcuda.so.1"}

func newCUDALayout(t *testing.T, optional ...string) cudaLayout {
	t.Helper()
	return newCUDALayoutLinking(t, fakeCUDANeeded, optional...)
}

// newCUDALayoutLinking is newCUDALayout with the provider linking needed.
func newCUDALayoutLinking(t *testing.T, needed []string, optional ...string) cudaLayout {
	t.Helper()
	build := t.TempDir()
	src := filepath.Join(build, "empty.c")
	os.WriteFile(src, []byte("int s2s_fake_cuda_library;\n"), 0o644)
	l := cudaLayout{dir: filepath.Join(t.TempDir(), ".ort", "cuda", "lib"), libs: map[string]string{}, build: build}
	os.MkdirAll(l.dir, 0o755)
	var linked []string
	for _, name := range append(slices.Clone(needed), optional...) {
		p := compileLib(t, filepath.Join(build, name), src, "-Wl,-soname,"+name)
		if slices.Contains(needed, name) {
			linked = append(linked, p)
		}
		if name == cudaDriver {
			continue // the driver is the system's, never beside ONNX Runtime
		}
		data, _ := os.ReadFile(p)
		l.libs[name] = filepath.Join(l.dir, name)
		os.WriteFile(l.libs[name], data, 0o755)
	}
	args := append([]string{"-Wl,--no-as-needed"}, linked...)
	compileLib(t, filepath.Join(l.dir, "libonnxruntime_providers_cuda.so"), src, args...)
	compileLib(t, filepath.Join(l.dir, "libonnxruntime_providers_shared.so"), src)
	fake := buildFake(t, "libonnxruntime.so.1", `-DFAKE_VERSION="1.30.0"`, "-DFAKE_MAX_API=24", `-DFAKE_PROVIDERS="CUDAExecutionProvider","CPUExecutionProvider"`)
	data, _ := os.ReadFile(fake)
	os.WriteFile(filepath.Join(l.dir, "libonnxruntime.so.1"), data, 0o755)
	return l
}

// fakeDriver compiles testdata/fakecuda.c with defines.
func fakeDriver(t *testing.T, name string, defines ...string) string {
	t.Helper()
	return compileLib(t, filepath.Join(t.TempDir(), name), filepath.Join("testdata", "fakecuda.c"), defines...)
}

func TestCheckCUDA(t *testing.T) {
	l := newCUDALayout(t, "libcudnn.so.9")
	good := fakeDriver(t, "libcuda-good.so.1")
	tests := []struct {
		name    string
		setup   func(t *testing.T) (dir, driver string, id int)
		want    error
		message []string
	}{
		{"a CPU build", func(t *testing.T) (string, string, int) {
			dir := t.TempDir()
			fakeFile(t, filepath.Join(dir, "libonnxruntime.so.1"))
			return dir, good, 0
		}, ErrNoCUDA, []string{"libonnxruntime_providers_shared.so", "gen ort install --cuda"}},
		{"a CUDA library missing", func(t *testing.T) (string, string, int) {
			// A soname of its own: one loaded by another test would be found.
			needed := []string{"libcublasLt.so.13", "libcublasmissing.so.13", "libcudart.so.13", "libcuda.so.1"}
			m := newCUDALayoutLinking(t, needed)
			os.Remove(m.libs["libcublasmissing.so.13"])
			return m.dir, good, 0
		}, ErrCUDALibraryMissing, []string{"libcublasmissing.so.13", "neither in", "scripts/setup.sh ort-cuda"}},
		{"no driver", func(t *testing.T) (string, string, int) {
			return l.dir, "libcuda-not-installed.so.1", 0
		}, ErrNoCUDADriver, []string{"libcuda-not-installed.so.1", "NVIDIA driver", `provider "cpu"`}},
		{"not a driver", func(t *testing.T) (string, string, int) {
			return l.dir, l.libs["libcurand.so.10"], 0
		}, ErrNoCUDADriver, []string{"not the NVIDIA driver"}},
		{"no device (cuInit)", func(t *testing.T) (string, string, int) {
			return l.dir, fakeDriver(t, "libcuda-nodev.so.1", "-DFAKE_CU_INIT=100"), 0
		}, ErrNoCUDADevice, []string{"CUDA_ERROR_NO_DEVICE", "nvidia-smi"}},
		{"no device (count)", func(t *testing.T) (string, string, int) {
			return l.dir, fakeDriver(t, "libcuda-zero.so.1", "-DFAKE_CU_COUNT=0"), 0
		}, ErrNoCUDADevice, []string{"no CUDA device"}},
		{"device id out of range", func(t *testing.T) (string, string, int) {
			return l.dir, fakeDriver(t, "libcuda-two.so.1", "-DFAKE_CU_COUNT=2"), 2
		}, ErrNoCUDADevice, []string{"device 2 asked for", "sees 2"}},
		{"driver too old", func(t *testing.T) (string, string, int) {
			return l.dir, fakeDriver(t, "libcuda-old.so.1", "-DFAKE_CU_VERSION=12040"), 0
		}, ErrNoCUDADriver, []string{"supports CUDA 12.4", "needs CUDA 13.0"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir, driver, id := tc.setup(t)
			_, err := checkCUDA(dir, id, driver, true)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			for _, m := range tc.message {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("message %q should contain %q", err, m)
				}
			}
			if !strings.HasPrefix(err.Error(), "runtime: ") {
				t.Errorf("message %q should start with \"runtime: \"", err)
			}
		})
	}
	t.Run("usable", func(t *testing.T) {
		r, err := checkCUDA(l.dir, 0, good, false)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, lib := range r.Libraries {
			names = append(names, lib.Name)
			if lib.Path != filepath.Join(l.dir, lib.Name) {
				t.Errorf("%s found at %s, want beside ONNX Runtime", lib.Name, lib.Path)
			}
		}
		want := []string{"libcublasLt.so.13", "libcublas.so.13", "libcurand.so.10", "libcudart.so.13", "libcudnn.so.9"}
		if !slices.Equal(names, want) {
			t.Errorf("libraries %v, want %v (the provider's links in order, then cuDNN)", names, want)
		}
		if r.Devices != 1 || r.DriverVersion != 13000 || r.NeedVersion != 13000 || !slices.Equal(r.Missing, []string{"libnvrtc.so."}) {
			t.Errorf("report %+v", r)
		}
	})
	t.Run("preloaded", func(t *testing.T) {
		if _, err := checkCUDA(l.dir, 0, good, true); err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"libcublas.so.13", "libcudnn.so.9"} {
			if !resolvable(name) {
				t.Errorf("%s is not loaded after the preload", name)
			}
		}
	})
	t.Run("this machine", func(t *testing.T) {
		_, err := CheckCUDA(l.dir, 0)
		if !resolvable(cudaDriver) {
			// No NVIDIA driver here (CI never has one): the error says so.
			if !errors.Is(err, ErrNoCUDADriver) || !strings.Contains(err.Error(), "libcuda.so.1") {
				t.Fatalf("got %v, want ErrNoCUDADriver naming libcuda.so.1", err)
			}
			return
		}
		t.Logf("this machine has %s: %v", cudaDriver, err)
	})
}

func TestCUDAVersionNames(t *testing.T) {
	if v, ok := cudartVersion("libcudart.so.13"); !ok || v != 13000 {
		t.Errorf("libcudart.so.13: %d, %v", v, ok)
	}
	if _, ok := cudartVersion("libcublas.so.13"); ok {
		t.Error("libcublas is not the CUDA runtime")
	}
	if s := cudaVersion(12040); s != "12.4" {
		t.Errorf("cudaVersion(12040) = %s", s)
	}
}
