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
// A server that gets requests one by one can run them through a Continuous
// batch instead (models exported in the inplace layout, the exporter's
// default): a request that arrives while others run joins them at the next
// decoder step, and leaves as soon as it is done, with the output it would
// have alone:
//
//	c, err := g.NewContinuous(s2s.ContinuousOptions{})
//	if err != nil { ... } // ErrNoContinuous for Optimum's graphs: batch by windows
//	defer c.Close()
//	outs, err := c.Generate(ctx, []string{"one request"}, opts, nil) // from many goroutines
//
// The packages below it can be used on their own: runtime (ONNX Runtime
// sessions and decoder state), tokenizer (tokenizer.json), beamsearch (the
// search, pure Go), models (model directories) and config (file, environment
// and flags).
package s2s
