"""bench runs one checkpoint on the same inputs through every serving path
side by side: the Go host (cmd/s2s-bench; go-int8: on the exporter's int8
copy), Optimum's ORTModelForSeq2SeqLM on the very same ONNX files (I/O
binding on and off), transformers' PyTorch generate() and CTranslate2
(float32 and int8) converted from the same checkpoint, and prints one table.
Models: opus-mt-en-de- and t5-small-shaped random ones, and our seed model
g2p (models/g2p-en; PyTorch is our own module, Optimum and CTranslate2 n/a).
bench.ort_profile profiles the decoder-with-past graph by op type. See
docs/performance.md.

    bench/run.sh --quick          t5-tiny and g2p, a few inputs, a minute or two
    bench/run.sh                  the documented table
"""
