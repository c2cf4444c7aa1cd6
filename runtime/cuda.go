package runtime

/*
#cgo LDFLAGS: -ldl
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

typedef int (*s2sCuInit)(unsigned int);
typedef int (*s2sCuCount)(int *);
typedef int (*s2sCuVersion)(int *);
typedef int (*s2sCuErrorName)(int, const char **);

static void s2s_copy(char *dst, const char *src, size_t n) {
	strncpy(dst, src ? src : "", n - 1);
	dst[n - 1] = 0;
}

// s2s_cuda_driver opens the CUDA driver library at path (kept open: the
// CUDA provider links it anyway), initializes it and counts the devices.
// It returns 0 on success; 1 when dlopen fails (msg: dlerror), 2 when a
// symbol is missing, 3 when cuInit fails and 4 when cuDeviceGetCount fails
// (code: the CUresult, msg: its name when the driver gives one).
static int s2s_cuda_driver(const char *path, int *count, int *version, int *code, char *msg, size_t mn) {
	*count = 0;
	*version = 0;
	*code = 0;
	msg[0] = 0;
	void *h = dlopen(path, RTLD_NOW | RTLD_GLOBAL);
	if (h == NULL) {
		s2s_copy(msg, dlerror(), mn);
		return 1;
	}
	s2sCuInit init = (s2sCuInit)dlsym(h, "cuInit");
	s2sCuCount devices = (s2sCuCount)dlsym(h, "cuDeviceGetCount");
	s2sCuVersion driver = (s2sCuVersion)dlsym(h, "cuDriverGetVersion");
	s2sCuErrorName name = (s2sCuErrorName)dlsym(h, "cuGetErrorName");
	if (init == NULL || devices == NULL) {
		s2s_copy(msg, "no cuInit or cuDeviceGetCount", mn);
		return 2;
	}
	if (driver != NULL) {
		driver(version);
	}
	int rc = init(0);
	int stage = 3;
	if (rc == 0) {
		rc = devices(count);
		if (rc == 0) {
			return 0;
		}
		stage = 4;
	}
	*code = rc;
	const char *n = NULL;
	if (name != NULL && name(rc, &n) == 0) {
		s2s_copy(msg, n, mn);
	}
	return stage;
}

// s2s_preload opens path for good, its symbols global, so that libraries
// opened later that need its soname find it loaded. It returns 0, or 1 with
// dlerror's text in msg.
static int s2s_preload(const char *path, char *msg, size_t mn) {
	msg[0] = 0;
	if (dlopen(path, RTLD_NOW | RTLD_GLOBAL) == NULL) {
		s2s_copy(msg, dlerror(), mn);
		return 1;
	}
	return 0;
}

// s2s_resolvable reports whether dlopen finds name in the system's library
// paths; the handle is closed again.
static int s2s_resolvable(const char *name) {
	void *h = dlopen(name, RTLD_LAZY | RTLD_LOCAL);
	if (h == NULL) {
		return 0;
	}
	dlclose(h);
	return 1;
}
*/
import "C"

import (
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"unsafe"
)

// ErrNoCUDA is returned (wrapped) when provider "cuda" is asked of an ONNX
// Runtime built without the CUDA execution provider; check with errors.Is.
var ErrNoCUDA = errors.New("runtime: this ONNX Runtime has no CUDA execution provider; use provider \"cpu\", or run gen ort install --cuda (scripts/setup.sh ort-cuda in the repository), or point ONNXRUNTIME_LIB / -ort-lib at a CUDA build of libonnxruntime.so.1 (onnxruntime-gpu) with its CUDA libraries")

// ErrCUDALibraryMissing is returned (wrapped) when a CUDA library the CUDA
// provider links (cuBLAS, cuRAND, the CUDA runtime) is neither beside
// ONNX Runtime nor in the system's library paths; check with errors.Is.
var ErrCUDALibraryMissing = errors.New("runtime: a CUDA library is missing")

// ErrNoCUDADriver is returned (wrapped) when the NVIDIA driver's
// libcuda.so.1 cannot be loaded, or is too old for the CUDA build; check
// with errors.Is.
var ErrNoCUDADriver = errors.New("runtime: no usable NVIDIA driver")

// ErrNoCUDADevice is returned (wrapped) when the driver loads but finds no
// CUDA device, or not the one asked for; check with errors.Is.
var ErrNoCUDADevice = errors.New("runtime: no CUDA device")

// cudaDriver is the driver library the CUDA provider links.
const cudaDriver = "libcuda.so.1"

// cudaProviderFiles are the libraries a CUDA build of ONNX Runtime keeps
// beside libonnxruntime.so.1; the CPU build has neither.
var cudaProviderFiles = []string{"libonnxruntime_providers_shared.so", "libonnxruntime_providers_cuda.so"}

// CUDALibrary is one CUDA library the CUDA provider needs or can use.
type CUDALibrary struct {
	Name     string // its soname, e.g. libcublas.so.13
	Path     string // where it was found: a file beside ONNX Runtime, or the bare name for the system's paths
	Optional bool   // loaded by ONNX Runtime only when an operator needs it (cuDNN, NVRTC)
}

// CUDAReport is what CheckCUDA found.
type CUDAReport struct {
	Dir           string        // the ONNX Runtime lib directory checked
	Libraries     []CUDALibrary // the CUDA libraries, in the order they are loaded
	Missing       []string      // optional libraries not found
	Driver        string        // the driver library loaded
	DriverVersion int           // the CUDA version the driver supports, e.g. 13000 for 13.0
	NeedVersion   int           // the CUDA version the build needs (from its libcudart soname), e.g. 13000
	Devices       int           // CUDA devices the driver sees
}

// CheckCUDA checks, without loading ONNX Runtime, what the CUDA provider of
// the ONNX Runtime in dir needs to run on device id: its provider
// libraries, the CUDA libraries they link (beside it, or in the system's
// library paths), the NVIDIA driver libcuda.so.1, its CUDA version and the
// device. The first thing missing is the error (ErrNoCUDA,
// ErrCUDALibraryMissing, ErrNoCUDADriver or ErrNoCUDADevice), which names
// it and says what to do. It does not load the CUDA libraries; Init does,
// before ONNX Runtime needs them.
func CheckCUDA(dir string, id int) (CUDAReport, error) {
	return checkCUDA(dir, id, cudaDriver, false)
}

// cudaReady caches the preloads done for each library directory.
var cudaReady struct {
	mu   sync.Mutex
	dirs map[string]bool
}

// checkCUDA is CheckCUDA with the driver library to load and, with
// preload, the CUDA libraries beside ONNX Runtime loaded for good
// (RTLD_GLOBAL), so that the provider, which records no search path of its
// own, finds them by soname.
func checkCUDA(dir string, id int, driver string, preload bool) (CUDAReport, error) {
	r := CUDAReport{Dir: dir}
	if !filepath.IsAbs(dir) {
		return r, fmt.Errorf("%w (%q is not an absolute directory)", ErrNoCUDA, dir)
	}
	for _, f := range cudaProviderFiles {
		if !isFile(filepath.Join(dir, f)) {
			return r, fmt.Errorf("%w (%s has no %s)", ErrNoCUDA, dir, f)
		}
	}
	provider := filepath.Join(dir, "libonnxruntime_providers_cuda.so")
	needed, err := neededLibraries(provider)
	if err != nil {
		return r, fmt.Errorf("%w (%s: %v)", ErrNoCUDA, provider, err)
	}
	fix := "run gen ort install --cuda (scripts/setup.sh ort-cuda in the repository), or install the CUDA toolkit's libraries into the system's library paths"
	for _, name := range needed {
		if name == cudaDriver || !isCUDALibrary(name) {
			continue
		}
		if v, ok := cudartVersion(name); ok {
			r.NeedVersion = v
		}
		p := filepath.Join(dir, name)
		switch {
		case isFile(p):
			r.Libraries = append(r.Libraries, CUDALibrary{Name: name, Path: p})
		case resolvable(name):
			r.Libraries = append(r.Libraries, CUDALibrary{Name: name, Path: name})
		default:
			return r, fmt.Errorf("%w: %s, which the CUDA provider links, is neither in %s nor in the system's library paths; %s", ErrCUDALibraryMissing, name, dir, fix)
		}
	}
	for _, pattern := range []string{"libcudnn.so.*", "libnvrtc.so.*"} {
		matches, _ := filepath.Glob(filepath.Join(dir, pattern))
		if len(matches) == 0 {
			r.Missing = append(r.Missing, strings.TrimSuffix(pattern, "*"))
		}
		for _, m := range matches {
			r.Libraries = append(r.Libraries, CUDALibrary{Name: filepath.Base(m), Path: m, Optional: true})
		}
	}

	count, version, err := cudaDevices(driver)
	r.Driver, r.DriverVersion, r.Devices = driver, version, count
	if err != nil {
		return r, err
	}
	if r.NeedVersion > 0 && version > 0 && version < r.NeedVersion {
		return r, fmt.Errorf("%w: the driver supports CUDA %s, this CUDA build of ONNX Runtime needs CUDA %s or newer; update the NVIDIA driver, or use provider \"cpu\"", ErrNoCUDADriver, cudaVersion(version), cudaVersion(r.NeedVersion))
	}
	if count == 0 {
		return r, fmt.Errorf("%w: the driver sees no CUDA device; check nvidia-smi (in a container, run it with the GPUs passed in, e.g. docker run --gpus all), or use provider \"cpu\"", ErrNoCUDADevice)
	}
	if id >= count {
		return r, fmt.Errorf("%w: device %d asked for, the driver sees %d (ids 0 to %d); use -device-id below %d", ErrNoCUDADevice, id, count, count-1, count)
	}
	if !preload {
		return r, nil
	}
	cudaReady.mu.Lock()
	defer cudaReady.mu.Unlock()
	if cudaReady.dirs[dir] {
		return r, nil
	}
	for _, l := range r.Libraries {
		if l.Path == l.Name {
			continue // the system's: the loader finds it by itself
		}
		if err := preloadLibrary(l.Path); err != nil {
			return r, fmt.Errorf("%w: %s cannot be loaded: %v; %s", ErrCUDALibraryMissing, l.Path, err, fix)
		}
	}
	if cudaReady.dirs == nil {
		cudaReady.dirs = map[string]bool{}
	}
	cudaReady.dirs[dir] = true
	return r, nil
}

// neededLibraries returns the DT_NEEDED entries of the ELF file at path.
func neededLibraries(path string) ([]string, error) {
	f, err := elf.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.ImportedLibraries()
}

// isCUDALibrary reports whether a soname is one of NVIDIA's CUDA libraries.
func isCUDALibrary(name string) bool {
	return strings.HasPrefix(name, "libcu") || strings.HasPrefix(name, "libnv")
}

// cudartVersion reads the CUDA major version from a CUDA runtime soname:
// libcudart.so.13 is 13000.
func cudartVersion(name string) (int, bool) {
	rest, ok := strings.CutPrefix(name, "libcudart.so.")
	if !ok {
		return 0, false
	}
	major, err := strconv.Atoi(strings.SplitN(rest, ".", 2)[0])
	return major * 1000, err == nil
}

// cudaVersion writes a CUDA version number (13000) as "13.0".
func cudaVersion(v int) string { return fmt.Sprintf("%d.%d", v/1000, v%1000/10) }

// cudaDevices loads the driver library and counts the CUDA devices.
func cudaDevices(driver string) (count, version int, err error) {
	cPath := C.CString(driver)
	defer C.free(unsafe.Pointer(cPath))
	var n, v, code C.int
	var msg [512]C.char
	rc := C.s2s_cuda_driver(cPath, &n, &v, &code, &msg[0], C.size_t(len(msg)))
	text := C.GoString(&msg[0])
	switch rc {
	case 0:
		return int(n), int(v), nil
	case 1:
		return 0, 0, fmt.Errorf("%w: %s cannot be loaded (%s): the NVIDIA driver is not installed, or not visible here (in a container, run it with the NVIDIA container toolkit, e.g. docker run --gpus all); use provider \"cpu\" on a machine without a GPU", ErrNoCUDADriver, driver, text)
	case 2:
		return 0, 0, fmt.Errorf("%w: %s is not the NVIDIA driver (%s); reinstall the driver", ErrNoCUDADriver, driver, text)
	}
	what := "cuInit"
	if rc == 4 {
		what = "cuDeviceGetCount"
	}
	if text == "" {
		text = "CUresult " + strconv.Itoa(int(code))
	}
	if code == 100 { // CUDA_ERROR_NO_DEVICE
		return 0, int(v), fmt.Errorf("%w: %s found no CUDA device (%s); check nvidia-smi (in a container, pass the GPUs in, e.g. docker run --gpus all), or use provider \"cpu\"", ErrNoCUDADevice, what, text)
	}
	return 0, int(v), fmt.Errorf("%w: %s failed (%s); check the driver with nvidia-smi, or use provider \"cpu\"", ErrNoCUDADriver, what, text)
}

// preloadLibrary loads path for good with its symbols global.
func preloadLibrary(path string) error {
	cPath := C.CString(path)
	defer C.free(unsafe.Pointer(cPath))
	var msg [512]C.char
	if C.s2s_preload(cPath, &msg[0], C.size_t(len(msg))) != 0 {
		return errors.New(C.GoString(&msg[0]))
	}
	return nil
}

// resolvable reports whether dlopen finds the bare soname name.
func resolvable(name string) bool {
	cName := C.CString(name)
	defer C.free(unsafe.Pointer(cName))
	return C.s2s_resolvable(cName) == 1
}

// checkCUDAFiles returns ErrNoCUDA when the directory of the library file
// lacks the CUDA provider libraries.
func checkCUDAFiles(libFile string) error {
	dir := filepath.Dir(libFile)
	for _, f := range cudaProviderFiles {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			return fmt.Errorf("%w (%s has no %s)", ErrNoCUDA, dir, f)
		}
	}
	return nil
}
