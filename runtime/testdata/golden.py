"""golden.py writes the reference logits the runtime tests compare with.

For each model directory it runs the split graphs with Python onnxruntime,
step by step, as docs/model-format.md describes ("Running the graphs"): the
encoder once over two right-padded inputs, decoder_model.onnx for the first
step, decoder_with_past_model.onnx with the cache after that. The inputs, the
forced decoder tokens and every step's logits go to golden/<name>.json.

This is an implementation apart from the Go runtime (numpy, the documented
protocol), so the Go tests catch a runtime that feeds the graphs wrongly in
a way its self-consistency tests (split vs merged, batched vs single) cannot.

Run from the repository root after the test models change:

    .venv/bin/python runtime/testdata/golden.py testdata/t5-tiny testdata/bart-tiny testdata/marian-tiny
"""

import json
import os
import sys

import numpy as np
import onnxruntime as ort

STEPS = 5


def golden(model_dir):
    with open(os.path.join(model_dir, "s2s.json")) as f:
        man = json.load(f)
    vocab = man["vocab_size"]
    eos = man["eos_token_id"][0]
    pad = man["pad_token_id"] if man["pad_token_id"] >= 0 else 0
    start = man["decoder_start_token_id"]

    def tid(i):
        return 3 + (i * 7) % (vocab - 4)

    inputs = [[tid(1), tid(2), tid(3), tid(4), tid(5), eos], [tid(6), tid(7), eos]]
    tokens = [[start, start]] + [[tid(10 + 3 * s), tid(20 + 5 * s)] for s in range(1, STEPS)]

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    files = man["files"]
    enc = ort.InferenceSession(os.path.join(model_dir, files["encoder"]), so)
    first = ort.InferenceSession(os.path.join(model_dir, files["decoder"]), so)
    step = ort.InferenceSession(os.path.join(model_dir, files["decoder_with_past"]), so)

    width = max(len(x) for x in inputs)
    ids = np.array([x + [pad] * (width - len(x)) for x in inputs], dtype=np.int64)
    mask = np.array([[1] * len(x) + [0] * (width - len(x)) for x in inputs], dtype=np.int64)
    hidden = enc.run(["last_hidden_state"], {"input_ids": ids, "attention_mask": mask})[0]

    logits = []
    names = [o.name for o in first.get_outputs()]
    out = dict(zip(names, first.run(None, {
        "input_ids": np.array(tokens[0], dtype=np.int64)[:, None],
        "encoder_hidden_states": hidden,
        "encoder_attention_mask": mask,
    })))
    logits.append(out["logits"][:, -1, :])
    cache = {k.replace("present", "past_key_values"): v for k, v in out.items() if k.startswith("present.")}
    step_inputs = {i.name for i in step.get_inputs()}
    for s in range(1, STEPS):
        feed = {"input_ids": np.array(tokens[s], dtype=np.int64)[:, None], "encoder_attention_mask": mask}
        feed.update({k: v for k, v in cache.items() if k in step_inputs})
        names = [o.name for o in step.get_outputs()]
        out = dict(zip(names, step.run(None, feed)))
        logits.append(out["logits"][:, -1, :])
        for k, v in out.items():
            if k.startswith("present."):
                cache[k.replace("present", "past_key_values")] = v

    return {
        "model": os.path.basename(os.path.normpath(model_dir)),
        "made_by": "runtime/testdata/golden.py with onnxruntime " + ort.__version__,
        "pad_token_id": pad,
        "inputs": inputs,
        "tokens": tokens,
        "logits": [[[float("%.7g" % x) for x in row] for row in step_logits] for step_logits in logits],
    }


def main(dirs):
    out_dir = os.path.join(os.path.dirname(os.path.abspath(__file__)), "golden")
    os.makedirs(out_dir, exist_ok=True)
    for d in dirs:
        g = golden(d)
        path = os.path.join(out_dir, g["model"] + ".json")
        with open(path, "w") as f:
            json.dump(g, f, separators=(",", ":"))
            f.write("\n")
        print("wrote", path)


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: golden.py MODEL_DIR...")
    main(sys.argv[1:])
