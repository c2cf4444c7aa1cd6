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
*/
import "C"

import (
	"errors"
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
