"""check is the exporter's self-check: it runs an exported model directory's
graphs step by step in ONNX Runtime, as the Go host does, and compares them
with the PyTorch model of the checkpoint they came from.

The inputs are a batch of two sources of different lengths (the shorter one
right-padded with pad_token_id and masked), then a few forced decoder tokens
starting with decoder_start_token_id. The split graphs run the first step
with decoder_model.onnx and the following ones with
decoder_with_past_model.onnx, feeding back the self-attention presents and
the cross-attention presents of the first step; the merged graph runs the
same steps with use_cache_branch false, then true. PyTorch runs the same
tokens one at a time with its own cache (an EncoderDecoderCache).

A directory of the inplace layout (inplace.py) is run by inplace_run's
protocol instead, through a batch that has it all: padded inputs, beams and
a beam reorder through the cache indirection, inputs joining and leaving
between steps (rows at different steps), rows compacted, inputs with
different row counts, and the cache moved left when full; every row's
logits at every step are compared with PyTorch's for that row's source and
tokens.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import graphs, inplace
from .errors import CheckError, ExportError

DEFAULT_STEPS = 4


@dataclass
class Diff:
    """Diff is the largest absolute difference of one output at one step."""

    graph: str
    step: int  # decoder step; -1 for the encoder
    output: str
    max_abs: float
    atol: float

    def ok(self) -> bool:
        """ok reports whether the difference is within the tolerance (a NaN is not)."""
        return self.max_abs <= self.atol

    def __str__(self) -> str:
        where = "" if self.step < 0 else f" step {self.step}"
        return f"{self.graph}{where}: {self.output} max abs diff {self.max_abs:.3g} (atol {self.atol:g})"


@dataclass
class Report:
    """Report holds every compared output of a self-check."""

    diffs: list[Diff] = field(default_factory=list)

    def failures(self) -> list[Diff]:
        """failures returns the diffs above the tolerance, in the order they were made."""
        return [d for d in self.diffs if not d.ok()]

    def summary(self) -> str:
        """summary returns one line per graph with its largest difference over all steps."""
        worst: dict[str, Diff] = {}
        for d in self.diffs:
            w = worst.get(d.graph)
            if w is None or not d.max_abs <= w.max_abs:
                worst[d.graph] = d
        steps = max((d.step for d in self.diffs), default=-1) + 1
        what = ("4 inputs joining and leaving, beams, rows at different steps" if any(d.graph == inplace.STEP for d in self.diffs)
                else "batch 2 (one padded row)")
        lines = [f"self-check: {what}, {steps} decoder steps, max abs diff vs PyTorch:"]
        for g, d in worst.items():
            lines.append(f"  {g:30s} {d.output:18s} {d.max_abs:.3g}{'' if d.ok() else '  FAIL'}")
        return "\n".join(lines)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """add_arguments declares the arguments of `check`."""
    p.add_argument("src", metavar="SRC_DIR", help="the Hugging Face checkpoint the model was exported from")
    p.add_argument("model", metavar="MODEL_DIR", help="the s2s model directory to check")
    p.add_argument("--atol", type=float, default=1e-4, help="tolerance on logits (default 1e-4)")
    p.add_argument("--steps", type=int, default=DEFAULT_STEPS, help=f"decoder steps (default {DEFAULT_STEPS})")


def run(args: argparse.Namespace) -> int:
    """run compares an exported model directory with its PyTorch checkpoint, step by step."""
    report = check(Path(args.src), Path(args.model), atol=args.atol, steps=args.steps)
    print(report.summary())
    return 0


def _session(path: Path):
    """_session opens path in ONNX Runtime on the CPU with at most two threads."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = min(2, os.cpu_count() or 1)
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    try:
        return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    except Exception as e:
        raise ExportError(f"{path}: onnxruntime cannot load it ({e}); re-export the model") from e


def make_inputs(config: Any, manifest: dict[str, Any], steps: int, seed: int = 0):
    """make_inputs returns (input_ids, attention_mask, decoder_tokens) as int64
    arrays: two sources of lengths 7 and 4 (the second right-padded), each
    ending in eos, and steps decoder tokens per row starting with
    decoder_start_token_id. Ordinary tokens avoid the special ids."""
    import numpy as np

    rng = np.random.default_rng(seed)
    special = {manifest["pad_token_id"], manifest["bos_token_id"], manifest["decoder_start_token_id"],
               *manifest["eos_token_id"]}
    limit = min(config.vocab_size, manifest["vocab_size"])
    pool = np.array([i for i in range(limit) if i not in special], dtype=np.int64)
    if len(pool) < 2:
        raise ExportError(f"the vocabulary ({limit} tokens) is too small to check; it needs ordinary tokens")
    lengths = [7, 4]
    pad = manifest["pad_token_id"] if manifest["pad_token_id"] >= 0 else manifest["eos_token_id"][0]
    ids = np.full((2, max(lengths)), pad, dtype=np.int64)
    mask = np.zeros((2, max(lengths)), dtype=np.int64)
    for row, n in enumerate(lengths):
        ids[row, : n - 1] = rng.choice(pool, n - 1)
        ids[row, n - 1] = manifest["eos_token_id"][0]
        mask[row, :n] = 1
    dec = rng.choice(pool, (2, steps)).astype(np.int64)
    dec[:, 0] = manifest["decoder_start_token_id"]
    return ids, mask, dec


def _load(src: Path):
    """_load returns the PyTorch model of the checkpoint src, in eval mode."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from transformers import AutoModelForSeq2SeqLM

    try:
        model = AutoModelForSeq2SeqLM.from_pretrained(str(src), local_files_only=True, dtype=torch.float32)
    except Exception as e:
        raise ExportError(f"{src}: transformers cannot load the model ({e}); pass the checkpoint the model came from") from e
    return model.eval()


def _reference(model, ids, mask, dec):
    """_reference runs the PyTorch model: the encoder once, then one decoder
    token per step with its own cache. It returns (encoder states, [logits per step])."""
    import torch

    with torch.no_grad():
        t_ids, t_mask = torch.from_numpy(ids), torch.from_numpy(mask)
        enc = model.get_encoder()(input_ids=t_ids, attention_mask=t_mask, return_dict=True)
        past = None
        logits = []
        for t in range(dec.shape[1]):
            out = model(
                encoder_outputs=enc, attention_mask=t_mask, decoder_input_ids=torch.from_numpy(dec[:, t : t + 1]),
                past_key_values=past, use_cache=True, return_dict=True,
            )
            past = out.past_key_values
            logits.append(out.logits.numpy())
    return enc.last_hidden_state.numpy(), logits


def _feeds(sess, graph: str, known: dict[str, Any]) -> dict[str, Any]:
    """_feeds picks the session's inputs from known; an input it does not know is an ExportError."""
    feeds = {}
    for i in sess.get_inputs():
        if i.name not in known:
            raise ExportError(f"{graph} has an input {i.name!r} the check does not know; the exporter needs updating")
        feeds[i.name] = known[i.name]
    return feeds


def _run(sess, graph: str, known: dict[str, Any]) -> dict[str, Any]:
    """_run runs sess on the inputs it takes from known and returns its outputs by name."""
    names = [o.name for o in sess.get_outputs()]
    try:
        values = sess.run(names, _feeds(sess, graph, known))
    except ExportError:
        raise
    except Exception as e:
        raise CheckError(f"{graph} failed to run in onnxruntime: {e}") from e
    return dict(zip(names, values))


def _as_past(outputs: dict[str, Any], which: str) -> dict[str, Any]:
    """_as_past renames present.<i>.<which>.<key|value> outputs to the past_key_values.* inputs they feed."""
    return {"past_key_values." + n[len("present.") :]: v for n, v in outputs.items()
            if n.startswith("present.") and f".{which}." in n}


def check(src: Path, model_dir: Path, *, atol: float = 1e-4, steps: int = DEFAULT_STEPS, seed: int = 0) -> Report:
    """check runs the model directory's graphs against the PyTorch checkpoint src
    and returns the report; a difference above atol (or a NaN) raises CheckError
    naming the graph, the step and the largest absolute difference."""
    import json

    import numpy as np

    from .hf import load_config

    if steps < 2:
        raise ExportError(f"steps is {steps}; the check needs at least 2 (one without past, one with)")
    model_dir = Path(model_dir)
    try:
        manifest = json.loads((model_dir / "s2s.json").read_text())
    except (OSError, ValueError) as e:
        raise ExportError(f"{model_dir}/s2s.json: {e}; pass a directory written by `python -m s2s_export hf`") from e
    config = load_config(Path(src))
    ids, mask, dec = make_inputs(config, manifest, steps, seed)
    model = _load(Path(src))
    ref_states, ref_logits = _reference(model, ids, mask, dec)

    report = Report()

    def compare(graph: str, step: int, name: str, got, want, tol: float) -> None:
        if got.shape != want.shape:
            raise CheckError(f"{graph} step {step}: {name} has shape {list(got.shape)}, PyTorch gives {list(want.shape)}")
        report.diffs.append(Diff(graph, step, name, float(np.max(np.abs(got.astype(np.float64) - want))), tol))

    files = manifest["files"]
    enc = _run(_session(model_dir / files["encoder"]), graphs.ENCODER, {"input_ids": ids, "attention_mask": mask})
    states = enc["last_hidden_state"]
    # Padded positions' states are never attended to; compare the real ones.
    m = mask.astype(bool)
    compare(graphs.ENCODER, -1, "last_hidden_state", states[m], ref_states[m], atol)

    if manifest.get("layout") == inplace.LAYOUT:
        _check_inplace(model, model_dir, manifest, config, compare, atol, seed)
        return _verdict(report)

    const = {"encoder_attention_mask": mask, "encoder_hidden_states": states}

    # Split graphs: decoder_model for step 0, decoder_with_past after.
    dec0 = _run(_session(model_dir / files["decoder"]), graphs.DECODER, {**const, "input_ids": dec[:, :1]})
    compare(graphs.DECODER, 0, "logits", dec0["logits"], ref_logits[0], atol)
    cross = _as_past(dec0, "encoder")
    self_past = _as_past(dec0, "decoder")
    wp = _session(model_dir / files["decoder_with_past"])
    for t in range(1, steps):
        out = _run(wp, graphs.DECODER_WITH_PAST, {**const, **cross, **self_past, "input_ids": dec[:, t : t + 1]})
        compare(graphs.DECODER_WITH_PAST, t, "logits", out["logits"], ref_logits[t], atol)
        self_past = _as_past(out, "decoder")

    # Merged graph: use_cache_branch false with empty pasts, then true.
    merged = _session(model_dir / files["decoder_merged"])
    empty = {}
    for i in merged.get_inputs():
        if i.name.startswith("past_key_values."):
            empty[i.name] = np.zeros((2, manifest["num_heads"], 0, manifest["head_dim"]), dtype=np.float32)
    out = _run(merged, graphs.DECODER_MERGED,
               {**const, **empty, "input_ids": dec[:, :1], "use_cache_branch": np.array([False])})
    compare(graphs.DECODER_MERGED, 0, "logits", out["logits"], ref_logits[0], atol)
    cross = _as_past(out, "encoder")
    self_past = _as_past(out, "decoder")
    for t in range(1, steps):
        out = _run(merged, graphs.DECODER_MERGED,
                   {**const, **cross, **self_past, "input_ids": dec[:, t : t + 1], "use_cache_branch": np.array([True])})
        compare(graphs.DECODER_MERGED, t, "logits", out["logits"], ref_logits[t], atol)
        self_past = _as_past(out, "decoder")
    return _verdict(report)


def _check_inplace(model, model_dir: Path, manifest: dict[str, Any], config: Any, compare, atol: float, seed: int) -> None:
    """_check_inplace runs inplace_run.scenario on four sources (7, 4, 5 and 3
    tokens, each ending in eos) and compares every row's logits."""
    import numpy as np

    from . import inplace_run

    rng = np.random.default_rng(seed + 1)
    special = {manifest["pad_token_id"], manifest["bos_token_id"], manifest["decoder_start_token_id"],
               *manifest["eos_token_id"]}
    limit = min(config.vocab_size, manifest["vocab_size"])
    pool = np.array([i for i in range(limit) if i not in special], dtype=np.int64)
    sources = [np.append(rng.choice(pool, n - 1), manifest["eos_token_id"][0]).astype(np.int64) for n in (7, 4, 5, 3)]
    inplace_run.scenario(model, model_dir, sources, manifest["decoder_start_token_id"], pool,
                         lambda t, name, got, want: compare(inplace.STEP, t, name, got, want, atol), seed=seed)


def _verdict(report: Report) -> Report:
    """_verdict returns report, or raises CheckError when a difference is above its tolerance."""
    bad = report.failures()
    if bad:
        lines = "; ".join(str(d) for d in bad[:4])
        more = f" (and {len(bad) - 4} more)" if len(bad) > 4 else ""
        raise CheckError(f"self-check failed: {lines}{more}; the exported graphs do not match the PyTorch model")
    return report
