"""bench runs one checkpoint on the same inputs through every serving path
side by side: the Go host (cmd/s2s-bench), Optimum's ORTModelForSeq2SeqLM on
the very same ONNX files (I/O binding on and off), transformers' PyTorch
generate() and CTranslate2 (float32 and int8) converted from the same
checkpoint, and prints one table. See docs/performance.md.

    bench/run.sh --quick          tiny model, a few inputs, under a minute
    bench/run.sh                  the documented table
"""
