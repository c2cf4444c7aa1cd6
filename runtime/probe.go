package runtime

/*
#cgo LDFLAGS: -ldl
#define _GNU_SOURCE
#include <dlfcn.h>
#include <link.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

// s2sApiBase mirrors the two function pointers of the public OrtApiBase
// struct of the ONNX Runtime C API.
typedef struct {
	const void *(*GetApi)(uint32_t version);
	const char *(*GetVersionString)(void);
} s2sApiBase;

typedef const s2sApiBase *(*s2sGetApiBase)(void);

// s2s_probe opens path, reads the library's version string, whether it
// serves C API version api and the file the dynamic loader resolved path to,
// then closes it again. It returns 0 on success,
// 1 when dlopen fails and 2 when the library has no OrtGetApiBase; msg gets
// dlerror's text in both cases.
static int s2s_probe(const char *path, uint32_t api, char *version, size_t vn, int *has_api, char *where, size_t wn, char *msg, size_t mn) {
	*has_api = 0;
	version[0] = 0;
	where[0] = 0;
	msg[0] = 0;
	void *h = dlopen(path, RTLD_LAZY | RTLD_LOCAL);
	if (h == NULL) {
		const char *e = dlerror();
		strncpy(msg, e ? e : "dlopen failed", mn - 1);
		msg[mn - 1] = 0;
		return 1;
	}
	s2sGetApiBase get = (s2sGetApiBase)dlsym(h, "OrtGetApiBase");
	if (get == NULL) {
		const char *e = dlerror();
		strncpy(msg, e ? e : "no OrtGetApiBase symbol", mn - 1);
		msg[mn - 1] = 0;
		dlclose(h);
		return 2;
	}
	struct link_map *lm = NULL;
	if (dlinfo(h, RTLD_DI_LINKMAP, &lm) == 0 && lm != NULL && lm->l_name != NULL) {
		strncpy(where, lm->l_name, wn - 1);
		where[wn - 1] = 0;
	}
	const s2sApiBase *base = get();
	if (base != NULL) {
		if (base->GetVersionString != NULL) {
			const char *v = base->GetVersionString();
			if (v != NULL) {
				strncpy(version, v, vn - 1);
				version[vn - 1] = 0;
			}
		}
		if (base->GetApi != NULL && base->GetApi(api) != NULL) {
			*has_api = 1;
		}
	}
	dlclose(h);
	return 0;
}
// Positions in the OrtApi struct of onnxruntime_c_api.h (a table of
// function pointers that only ever grows at its end; TestOrtAPIIndexes
// checks them against the header onnxruntime_go ships).
#define S2S_API_GET_ERROR_MESSAGE 2
#define S2S_API_RELEASE_STATUS 93
#define S2S_API_GET_AVAILABLE_PROVIDERS 125
#define S2S_API_RELEASE_AVAILABLE_PROVIDERS 126

typedef void *(*s2sGetProviders)(char ***out, int *n);
typedef void *(*s2sReleaseProviders)(char **names, int n);
typedef const char *(*s2sErrorMessage)(const void *status);
typedef void (*s2sReleaseStatus)(void *status);

// s2s_providers opens path (an ONNX Runtime that serves C API version api)
// and writes the execution providers it was built with into out, one per
// line. It returns 0, or 1 with a message in msg.
static int s2s_providers(const char *path, uint32_t api, char *out, size_t on, char *msg, size_t mn) {
	out[0] = 0;
	msg[0] = 0;
	void *h = dlopen(path, RTLD_LAZY | RTLD_LOCAL);
	if (h == NULL) {
		const char *e = dlerror();
		strncpy(msg, e ? e : "dlopen failed", mn - 1);
		msg[mn - 1] = 0;
		return 1;
	}
	s2sGetApiBase get = (s2sGetApiBase)dlsym(h, "OrtGetApiBase");
	const s2sApiBase *base = get ? get() : NULL;
	void *const *fn = base && base->GetApi ? (void *const *)base->GetApi(api) : NULL;
	if (fn == NULL) {
		strncpy(msg, "the library does not serve the C API asked for", mn - 1);
		msg[mn - 1] = 0;
		dlclose(h);
		return 1;
	}
	char **names = NULL;
	int n = 0;
	void *status = ((s2sGetProviders)fn[S2S_API_GET_AVAILABLE_PROVIDERS])(&names, &n);
	if (status != NULL) {
		const char *e = ((s2sErrorMessage)fn[S2S_API_GET_ERROR_MESSAGE])(status);
		strncpy(msg, e ? e : "GetAvailableProviders failed", mn - 1);
		msg[mn - 1] = 0;
		((s2sReleaseStatus)fn[S2S_API_RELEASE_STATUS])(status);
		dlclose(h);
		return 1;
	}
	size_t used = 0;
	for (int i = 0; i < n; i++) {
		size_t l = strlen(names[i]);
		if (used + l + 2 > on) {
			break;
		}
		memcpy(out + used, names[i], l);
		used += l;
		out[used++] = '\n';
		out[used] = 0;
	}
	status = ((s2sReleaseProviders)fn[S2S_API_RELEASE_AVAILABLE_PROVIDERS])(names, n);
	if (status != NULL) {
		((s2sReleaseStatus)fn[S2S_API_RELEASE_STATUS])(status);
	}
	dlclose(h);
	return 0;
}
*/
import "C"

import (
	"errors"
	"fmt"
	"strings"
	"unsafe"
)

// probeResult is what probeLibrary learns of a shared library.
type probeResult struct {
	version string // the library's version string, "" when it gives none
	hasAPI  bool   // whether it serves the C API version asked for
	file    string // the file the dynamic loader opened
}

// errNoAPIBase marks a library that loads but is not ONNX Runtime.
var errNoAPIBase = errors.New("no OrtGetApiBase symbol")

// probeLibrary dlopens path (a file path or a bare name for the system's
// search), reads its ONNX Runtime version, whether it serves C API version
// api and which file it is, and closes it. It does not initialize ONNX
// Runtime.
func probeLibrary(path string, api uint32) (probeResult, error) {
	cPath := C.CString(path)
	defer C.free(unsafe.Pointer(cPath))
	var version [64]C.char
	var msg [512]C.char
	var where [4096]C.char
	var hasAPI C.int
	rc := C.s2s_probe(cPath, C.uint32_t(api), &version[0], C.size_t(len(version)), &hasAPI,
		&where[0], C.size_t(len(where)), &msg[0], C.size_t(len(msg)))
	switch rc {
	case 1:
		return probeResult{}, errors.New(C.GoString(&msg[0]))
	case 2:
		return probeResult{}, errNoAPIBase
	}
	return probeResult{version: C.GoString(&version[0]), hasAPI: hasAPI != 0, file: C.GoString(&where[0])}, nil
}

// Providers returns the execution providers the ONNX Runtime library at
// path was built with (GetAvailableProviders of the C API), e.g.
// CUDAExecutionProvider and CPUExecutionProvider. The library must be ONNX
// Runtime 1.24+; it is checked first. A provider listed may still be
// unusable on this machine (CheckCUDA says whether CUDA is).
func Providers(path string) ([]string, error) {
	if _, err := checkLibrary(path); err != nil {
		return nil, err
	}
	cPath := C.CString(path)
	defer C.free(unsafe.Pointer(cPath))
	var out [4096]C.char
	var msg [512]C.char
	if C.s2s_providers(cPath, C.uint32_t(minAPI), &out[0], C.size_t(len(out)), &msg[0], C.size_t(len(msg))) != 0 {
		return nil, fmt.Errorf("runtime: listing the providers of %s: %s", path, C.GoString(&msg[0]))
	}
	return strings.Fields(C.GoString(&out[0])), nil
}

// apiIndexes are the OrtApi positions probe.go calls, for the test that
// checks them against onnxruntime_c_api.h.
var apiIndexes = map[string]int{
	"GetErrorMessage":           C.S2S_API_GET_ERROR_MESSAGE,
	"ReleaseStatus":             C.S2S_API_RELEASE_STATUS,
	"GetAvailableProviders":     C.S2S_API_GET_AVAILABLE_PROVIDERS,
	"ReleaseAvailableProviders": C.S2S_API_RELEASE_AVAILABLE_PROVIDERS,
}
