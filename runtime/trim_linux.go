//go:build linux && cgo

package runtime

/*
#include <stdlib.h>
#ifdef __GLIBC__
#include <malloc.h>
static void s2s_trim_heap(void) { malloc_trim(0); }
#else
static void s2s_trim_heap(void) {}
#endif
*/
import "C"

// trimHeap hands the C heap's free memory back to the system (glibc's
// malloc_trim). Loading a model frees the parsed graph files, hundreds of
// MB, which glibc otherwise keeps in the process.
func trimHeap() { C.s2s_trim_heap() }
