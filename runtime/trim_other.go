//go:build !linux || !cgo

package runtime

// trimHeap does nothing where the C heap is not glibc's (see trim_linux.go).
func trimHeap() {}
