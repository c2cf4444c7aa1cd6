// Package ortinstall fetches the pinned ONNX Runtime shared libraries into
// a per-user cache, the way `gen ort install` does, and says what that
// cache holds. It imports no cgo: it never loads a library, it only puts
// files where package runtime finds them.
//
// The pins (pins.txt, embedded) name every file fetched and every file
// installed with its sha256; scripts/setup.sh reads the same file. The CPU
// library comes out of the npm package onnxruntime-node (npm pack, no
// install scripts run); the CUDA build comes out of the PyPI wheel
// onnxruntime-gpu and NVIDIA's CUDA 13 wheels (pip download --no-deps
// --require-hashes, nothing installed into any Python environment).
//
// The cache is $XDG_CACHE_HOME/s2s/ort (else ~/.cache/s2s/ort), one
// directory per version:
//
//	VERSION/lib/libonnxruntime.so.1        the CPU build
//	VERSION/cuda/lib/libonnxruntime.so.1   the CUDA build, with its providers and CUDA libraries
//
// Each lib directory is staged beside the cache, checked, and renamed into
// place in one step, with a stamp (INSTALLED) listing its files: a half
// written download never becomes a library the host loads.
package ortinstall
