// Command embedded is one Go binary with a model inside: the G2P model
// (models/g2p-en.onnx, embedded by package models with go:embed) is opened
// from memory with s2s.OpenBytes, so the program needs nothing on disk but
// the ONNX Runtime library.
//
//	go build -o g2p ./examples/embedded
//	./g2p hello pronunciation          # HH EH L OW
//	                                   # P R AH N AH N S IY EY SH AH N
//
// It finds ONNX Runtime as every s2s program does: $ONNXRUNTIME_LIB, then
// .ort/lib near the working directory or the executable, then the system
// library paths (-ort-lib names it).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/s2s-dev/s2s"
	"github.com/s2s-dev/s2s/models"
	"github.com/s2s-dev/s2s/runtime"
)

func main() {
	lib := flag.String("ort-lib", "", "path of libonnxruntime (default: $ONNXRUNTIME_LIB, .ort/lib, system paths)")
	beams := flag.Int("num-beams", 1, "beam search width (1: greedy)")
	flag.Usage = func() {
		fmt.Fprintln(flag.CommandLine.Output(), "usage: embedded [-ort-lib PATH] [-num-beams N] WORD...")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() == 0 {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(*lib, *beams, flag.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "embedded:", err)
		os.Exit(1)
	}
}

func run(lib string, beams int, words []string) error {
	g, err := s2s.OpenBytes(models.G2PEn, s2s.Options{Runtime: runtime.Options{LibraryPath: lib}})
	if err != nil {
		return err
	}
	defer g.Close()
	opts := g.Defaults()
	opts.NumBeams = beams
	outs, err := g.Generate(context.Background(), words, opts, nil)
	if err != nil {
		return err
	}
	for _, o := range outs {
		fmt.Println(o.Text())
	}
	return nil
}
