// Package s2s serves sequence-to-sequence models from Go: a model exported
// to ONNX (by the s2s exporter or by Optimum) runs through ONNX Runtime, one
// encoder call per input and one decoder call per generated token, with the
// attention cache kept between calls and the search (greedy, beam, sampling)
// written in Go with Hugging Face generate() semantics.
//
// A Generator is opened once and used from many goroutines:
//
//	g, err := s2s.Open("models/t5-tiny", s2s.Options{})
//	if err != nil { ... }
//	defer g.Close()
//	opts := g.Defaults()        // generate() defaults + the model's generation_config.json
//	opts.MaxNewTokens = 32
//	outs, err := g.Generate(ctx, []string{"hello world"}, opts, nil)
//	fmt.Println(outs[0].Text())
//
// The packages below it can be used on their own: runtime (ONNX Runtime
// sessions and decoder state), tokenizer (tokenizer.json), beamsearch (the
// search, pure Go), models (model directories) and config (file, environment
// and flags).
package s2s
