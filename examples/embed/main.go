// Command embed is the smallest program that embeds s2s: it opens a model
// directory and prints what the model generates for each text argument.
//
//	go run ./examples/embed models/g2p-en hello world
//
// Outside this repository it finds ONNX Runtime in the per-user cache that
// `gen ort install` fills, or wherever ONNXRUNTIME_LIB points.
package main

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/s2s-dev/s2s"
	"github.com/s2s-dev/s2s/runtime"
)

func main() {
	if len(os.Args) < 3 {
		log.Fatal("usage: embed MODEL_DIR TEXT...")
	}
	g, err := s2s.Open(os.Args[1], s2s.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer g.Close()
	path, _, version := runtime.LoadedLibrary()
	log.Printf("ONNX Runtime %s from %s", version, path)

	outs, err := g.Generate(context.Background(), os.Args[2:], g.Defaults(), nil)
	if err != nil {
		log.Fatal(err)
	}
	for _, o := range outs {
		fmt.Println(o.Text())
	}
}
