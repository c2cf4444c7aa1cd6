/*
 * fakeort.c is a stand-in for libonnxruntime.so.1 that the runtime tests
 * compile (with the C compiler cgo uses) to check how Init treats libraries
 * that are not usable. It exports OrtGetApiBase, whose GetVersionString
 * returns FAKE_VERSION and whose GetApi serves C API versions up to
 * FAKE_MAX_API (a dummy table that must never be called). Built with
 * -DFAKE_NO_BASE it exports no OrtGetApiBase at all. Built with
 * -DFAKE_PROVIDERS='"AExecutionProvider","BExecutionProvider"' its table
 * serves GetAvailableProviders (and ReleaseAvailableProviders) at their
 * places in OrtApi, and nothing else. Built with -DFAKE_MARKER='"/path"' a
 * constructor appends a line to /path whenever the library is loaded (the
 * tests check that a library was never loaded).
 *
 *   cc -shared -fPIC -DFAKE_VERSION='"1.20.0"' -DFAKE_MAX_API=20 -o libfake.so fakeort.c
 */
#include <stdint.h>
#include <stddef.h>

#ifdef FAKE_MARKER
#include <stdio.h>
__attribute__((constructor)) static void fake_loaded(void) {
	FILE *f = fopen(FAKE_MARKER, "a");
	if (f != NULL) {
		fputs("loaded\n", f);
		fclose(f);
	}
}
#endif

#ifndef FAKE_VERSION
#define FAKE_VERSION "1.20.0"
#endif
#ifndef FAKE_MAX_API
#define FAKE_MAX_API 20
#endif

#ifdef FAKE_NO_BASE
int fake_not_onnxruntime(void) { return 0; }
#else
typedef struct {
	const void *(*GetApi)(uint32_t version);
	const char *(*GetVersionString)(void);
} fake_api_base;

#ifdef FAKE_PROVIDERS
static char *fake_names[] = {FAKE_PROVIDERS};

static void *fake_get_providers(char ***out, int *n) {
	*out = fake_names;
	*n = (int)(sizeof(fake_names) / sizeof(fake_names[0]));
	return NULL;
}

static void *fake_release_providers(char **names, int n) {
	(void)names;
	(void)n;
	return NULL;
}

/* OrtApi positions 125 and 126 (see S2S_API_* in probe.go). */
static const void *fake_api_table[127] = {
	[125] = (const void *)fake_get_providers,
	[126] = (const void *)fake_release_providers,
};
#else
static const int fake_api_table[1];
#endif

static const void *fake_get_api(uint32_t version) {
	return version <= FAKE_MAX_API ? (const void *)fake_api_table : NULL;
}

static const char *fake_version(void) { return FAKE_VERSION; }

static const fake_api_base fake_base = {fake_get_api, fake_version};

const fake_api_base *OrtGetApiBase(void) { return &fake_base; }
#endif
