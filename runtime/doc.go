// Package runtime runs exported sequence-to-sequence models with ONNX
// Runtime. It is the only package of s2s that imports onnxruntime_go (and so
// needs cgo and libonnxruntime.so.1 at run time).
//
// Init (InitFor, for a provider) finds and loads the shared library:
// FindLibraryFor says where it looks (never the working directory), and
// SearchLibrary reports every place and why it was passed over. For the
// CUDA provider, CheckCUDA names what is missing (the provider libraries,
// a CUDA library, the driver, a device) before ONNX Runtime is asked. The
// per-user cache it searches is filled by package ortinstall (gen ort
// install). Providers and Inspect serve gen doctor and gen inspect.
// Load opens the graphs of a model directory: the encoder, and either the
// split decoder graphs (decoder_model.onnx for the first step,
// decoder_with_past_model.onnx for the others) or the merged one
// (decoder_model_merged.onnx with its use_cache_branch input). The names of
// the inputs and outputs are read from the graphs, so graphs with pruned
// inputs load too. A recurrent model (architecture "rnn") has an encoder
// and one step graph; the "states" of its s2s.json say which encoder output
// starts each state, which states are carried from step to step (and follow
// their beam) and which are per-source constants.
//
// Model.Encode runs the encoder once over a padded batch and returns a
// Decoder, which implements beamsearch.Decoder: Step feeds one token per row
// and returns the next-token logits; Reorder makes rows follow other rows
// (beam expansion, beam selection, dropping finished inputs).
//
// A Decoder owns its buffers. The self-attention cache lives in two backing
// buffers per layer tensor used in turn, so that the cache ONNX Runtime
// writes at one step is read in place at the next. The cross-attention keys
// and values are computed once, at the first step, and gathered only when
// the rows' inputs change. Beams expanded before the first step share it:
// the first-step graph runs once per distinct input and token. All output
// tensors are preallocated, so a step copies nothing on the Go side.
package runtime
