"""ort_profile: where the decoder-with-past graph spends its time, by op type,
from ONNX Runtime's own profiler; in particular the Concat nodes that copy
the growing self-attention cache (past + new key/value) at every step.

    .venv/bin/python -m bench.ort_profile --model marian --past 64,256 --batch 1,32 --beams 1,4

It loads MODEL's decoder_with_past_model.onnx (marian / t5: the harness's
cached export in WORK/MODEL/onnx; t5-tiny / marian-tiny: testdata; or a
directory) with the Go host's session settings (intra-op 2, inter-op 1,
graph optimization all, sequential), profiling on, and runs for every
(past, batch, beams) a warm-up step and then --steps steps feeding the
present cache back as the next past (so the past grows from the start
length; encoder outputs fixed, rows = batch x beams). As in the Go host, the
presents are written into preallocated buffers through I/O binding
(--ort-outputs: ORT allocates them, as Optimum without I/O binding). The profile's node
events are assigned to their run (model_run event) and summed by op type;
Concat is split into the cache Concats (an input is a past_key_values.*
decoder input of the graph, i.e. the self-attention cache) and the others
(shape arithmetic). It also saves the optimized graph
(optimized_model_filepath) and counts what it contains.

A model in the inplace layout (--model marian-inplace, t5-inplace,
t5-tiny-inplace or such a directory) runs its decoder_step.onnx instead, as
the Go host does: one buffer per cache tensor of past + steps + 1 slots,
bound as both the past and the present, cache_length growing from the
column's past, beam_width = rows, an identity cache indirection, and the
cross-attention keys and values one per input (rows = batch x beams).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections import Counter, defaultdict
from pathlib import Path

from . import models

CACHE_CONCAT = "Concat (cache)"
OTHER_CONCAT = "Concat (other)"
GRAPH = "decoder_with_past_model.onnx"


INPLACE_GRAPH = "decoder_step.onnx"


def is_inplace(directory: Path) -> bool:
    """is_inplace reports whether the model directory is in the inplace layout."""
    try:
        return json.loads((directory / "s2s.json").read_text()).get("layout") == "inplace"
    except (OSError, ValueError):
        return False


def model_dir(name: str, work: Path) -> Path:
    """model_dir returns the directory holding the decoder-with-past graph of
    name, or its step graph for the inplace layout."""
    p = Path(name)
    if p.is_dir():
        return p
    if (models.ROOT / "testdata" / name / GRAPH).is_file() or (models.ROOT / "testdata" / name / INPLACE_GRAPH).is_file():
        return models.ROOT / "testdata" / name
    if name.endswith("-inplace") and name.removesuffix("-inplace") in models.SHAPES:
        base = name.removesuffix("-inplace")
        d = work / base / "onnx-inplace"
        if not (d / INPLACE_GRAPH).is_file():
            models.prepare(base, work, log=lambda s: print(s, file=sys.stderr))
        return d
    if name in models.SHAPES:
        d = work / name / "onnx"
        if not (d / GRAPH).is_file():
            models.prepare(name, work, log=lambda s: print(s, file=sys.stderr))
        return d
    raise SystemExit(f"ort_profile: unknown model {name!r}; use {', '.join(models.SHAPES)}, t5-tiny, marian-tiny or a directory with {GRAPH}")


def session_options(intra: int, inter: int, profile_prefix: str | None = None, optimized: str | None = None):
    """session_options returns the Go host's session settings (runtime/session.go's defaults)."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = intra
    so.inter_op_num_threads = inter
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if profile_prefix:
        so.enable_profiling = True
        so.profile_file_prefix = profile_prefix
    if optimized:
        so.optimized_model_filepath = optimized
    return so


def graph_contents(path: Path) -> dict:
    """graph_contents returns the op counts of an ONNX file and the names of its
    cache Concats (a Concat with a past_key_values.*.decoder.* graph input)."""
    import onnx

    g = onnx.load(str(path), load_external_data=False).graph
    cache_inputs = {i.name for i in g.input if i.name.startswith("past_key_values.") and ".decoder." in i.name}
    ops = Counter(n.op_type for n in g.node)
    cache = [n.name for n in g.node if n.op_type == "Concat" and cache_inputs & set(n.input)]
    return dict(ops=dict(ops), cache_concats=cache, nodes=len(g.node))


def _feeds(sess, rows: int, past: int, src_len: int, rng):
    import numpy as np

    feeds = {}
    vocab = sess.get_outputs()[0].shape[-1]
    vocab = vocab if isinstance(vocab, int) else 100
    for i in sess.get_inputs():
        if i.name == "input_ids":
            feeds[i.name] = rng.integers(3, max(4, vocab - 1), size=(rows, 1), dtype=np.int64)
        elif i.name == "encoder_attention_mask":
            feeds[i.name] = np.ones((rows, src_len), dtype=np.int64)
        elif i.name.startswith("past_key_values."):
            heads, head_dim = i.shape[1], i.shape[3]
            n = past if ".decoder." in i.name else src_len
            feeds[i.name] = rng.standard_normal((rows, heads, n, head_dim), dtype=np.float32)
        else:
            raise SystemExit(f"ort_profile: unexpected decoder input {i.name!r}")
    return feeds


class _Steps:
    """_Steps runs one configuration's steps. With preallocated outputs (as
    the Go host: runtime/buffers.go) every cache tensor has two buffers,
    written before the clock, sized for the last step, and each step reads
    the past from one and writes the present into the other through I/O
    binding; without, ORT allocates every output (as Optimum without I/O
    binding) and the presents come back as new arrays."""

    def __init__(self, sess, feeds, steps: int, preallocated: bool):
        import numpy as np

        self.sess, self.feeds, self.pre = sess, feeds, preallocated
        self.outs = [o.name for o in sess.get_outputs()]
        self.cache = [n for n in feeds if n.startswith("past_key_values.") and ".decoder." in n]
        if not preallocated:
            return
        self.io = sess.io_binding()
        for name, v in feeds.items():
            if name not in self.cache:
                self.io.bind_cpu_input(name, v)
        rows = feeds["input_ids"].shape[0]
        self.logits = np.zeros((rows, 1, sess.get_outputs()[0].shape[-1]), dtype=np.float32)
        self.io.bind_output("logits", "cpu", 0, np.float32, list(self.logits.shape), self.logits.ctypes.data)
        self.bufs = {}
        for name in self.cache:
            v = feeds[name]
            size = v.size // v.shape[2] * (v.shape[2] + steps + 1)
            a, b = np.zeros(size, dtype=np.float32), np.zeros(size, dtype=np.float32)  # written: no page faults in the loop
            a[: v.size] = v.ravel()
            self.bufs[name] = [a, b, v.shape]

    def step(self, input_ids):
        """step runs one decoder step on input_ids and makes the present the next past; it returns the logits."""
        if not self.pre:
            self.feeds["input_ids"] = input_ids
            res = dict(zip(self.outs, self.sess.run(None, self.feeds)))
            for name in self.cache:
                self.feeds[name] = res[name.replace("past_key_values.", "present.")]
            return res["logits"]
        import numpy as np

        self.io.bind_cpu_input("input_ids", input_ids)
        for name in self.cache:
            a, b, shape = self.bufs[name]
            out = (shape[0], shape[1], shape[2] + 1, shape[3])
            self.io.bind_cpu_input(name, a[: int(np.prod(shape))].reshape(shape))
            self.io.bind_output(name.replace("past_key_values.", "present."), "cpu", 0, np.float32, list(out), b.ctypes.data)
            self.bufs[name] = [b, a, out]
        self.sess.run_with_iobinding(self.io)
        return self.logits


class _InplaceSteps:
    """_InplaceSteps runs the inplace step graph as the Go host does."""

    def __init__(self, sess, rows: int, inputs: int, past: int, steps: int, src_len: int, rng):
        import numpy as np

        self.sess = sess
        ins = {i.name: i for i in sess.get_inputs()}
        heads, head_dim = ins["past.0.key"].shape[1], ins["past.0.key"].shape[3]
        vocab = sess.get_outputs()[0].shape[-1]
        self.pos = past
        m = past + steps + 1
        self.io = sess.io_binding()
        self.keep = []
        self.row_start = np.zeros(rows, np.int32)
        self.io.bind_cpu_input("row_start", self.row_start)
        self.io.bind_cpu_input("beam_width", np.array([rows], np.int32))
        ind = np.tile(np.arange(rows, dtype=np.int32)[:, None], (1, m))[None].copy()
        self.io.bind_cpu_input("cache_indirection", ind)
        self.io.bind_cpu_input("encoder_attention_mask", np.ones((inputs, src_len), np.int32))
        self.keep.append(ind)
        for name, i in ins.items():
            if name.startswith("cross."):
                a = rng.standard_normal((inputs, heads, src_len, head_dim), dtype=np.float32)
                self.io.bind_cpu_input(name, a)
                self.keep.append(a)
            elif name.startswith("past."):
                a = rng.standard_normal((rows, heads, m, head_dim), dtype=np.float32)
                self.io.bind_cpu_input(name, a)
                self.io.bind_output(name.replace("past.", "present."), "cpu", 0, np.float32, list(a.shape), a.ctypes.data)
                self.keep.append(a)
        self.logits = np.zeros((rows, 1, vocab), np.float32)
        self.io.bind_output("logits", "cpu", 0, np.float32, list(self.logits.shape), self.logits.ctypes.data)
        self.cache_length = np.array([past], np.int32)

    def step(self, input_ids):
        import numpy as np

        self.cache_length[0] = self.pos
        self.io.bind_cpu_input("cache_length", self.cache_length.copy())
        self.io.bind_cpu_input("input_ids", input_ids)
        self.sess.run_with_iobinding(self.io)
        self.pos += 1
        return self.logits


def profile(directory: Path, pasts, batches, beams, steps: int = 8, src_len: int = 24, intra: int = 2,
            inter: int = 1, seed: int = 0, preallocated: bool = True, cross_per_row: bool = False) -> dict:
    """profile runs the steps described in the module doc and returns, per
    configuration, the time by op type and the time per step, and the
    optimized graph's contents."""
    import numpy as np
    import onnxruntime as ort

    rng = np.random.default_rng(seed)
    with tempfile.TemporaryDirectory() as tmp:
        opt = Path(tmp) / "optimized.onnx"
        so = session_options(intra, inter, profile_prefix=str(Path(tmp) / "prof"), optimized=str(opt))
        inplace = is_inplace(directory)
        sess = ort.InferenceSession(str(directory / (INPLACE_GRAPH if inplace else GRAPH)), so, providers=["CPUExecutionProvider"])
        configs, labels = [], []  # labels[i]: the config of the i-th run, None for a warm-up
        for past in pasts:
            for batch in batches:
                for nb in beams:
                    cfg = dict(past=past, batch=batch, beams=nb, rows=batch * nb)
                    configs.append(cfg)
                    if inplace:
                        groups = cfg["rows"] if cross_per_row else batch
                        runner = _InplaceSteps(sess, cfg["rows"], groups, past, steps + 1, src_len, rng)
                        ids = rng.integers(3, 100, size=(cfg["rows"], 1), dtype=np.int64)
                    else:
                        feeds = _feeds(sess, cfg["rows"], past, src_len, rng)
                        runner = _Steps(sess, feeds, steps + 1, preallocated)
                        ids = feeds["input_ids"]
                    for k in range(steps + 1):
                        logits = runner.step(ids)
                        labels.append(None if k == 0 else len(configs) - 1)
                        ids = rng.integers(3, max(4, logits.shape[-1] - 1), size=(cfg["rows"], 1), dtype=np.int64)
        prof = Path(sess.end_profiling())
        events = json.loads(prof.read_text())
        contents = graph_contents(opt) if opt.is_file() else dict(ops={}, cache_concats=[], nodes=0)
    return dict(model=str(directory), steps=steps, src_len=src_len, threads=[intra, inter], configs=configs,
                outputs="inplace" if inplace else "preallocated" if preallocated else "ort",
                **_aggregate(events, labels, configs, set(contents["cache_concats"])), graph=contents)


def _aggregate(events, labels, configs, cache_concats: set) -> dict:
    runs = sorted((e for e in events if e.get("cat") == "Session" and e.get("name") == "model_run"), key=lambda e: e["ts"])
    if len(runs) != len(labels):
        raise RuntimeError(f"ort_profile: {len(runs)} model_run events for {len(labels)} runs")
    starts = [r["ts"] for r in runs]
    by_op = [defaultdict(float) for _ in configs]  # microseconds
    run_us = [[] for _ in configs]
    for r, lab in zip(runs, labels):
        if lab is not None:
            run_us[lab].append(r["dur"])
    import bisect

    for e in events:
        if e.get("cat") != "Node" or not e.get("name", "").endswith("_kernel_time"):
            continue
        i = bisect.bisect_right(starts, e["ts"]) - 1
        if i < 0 or labels[i] is None or e["ts"] > runs[i]["ts"] + runs[i]["dur"]:
            continue
        op = e.get("args", {}).get("op_name", "?")
        if op == "Concat":
            op = CACHE_CONCAT if e["name"].removesuffix("_kernel_time") in cache_concats else OTHER_CONCAT
        by_op[labels[i]][op] += e["dur"]
    return dict(op_us=[dict(d) for d in by_op], run_us=run_us)


def _label(c) -> str:
    rows = f"b{c['batch']}" if c["beams"] == 1 else f"b{c['batch']}x{c['beams']}"
    return f"past {c['past']} {rows}"


def table(res, top: int = 10) -> str:
    """table prints the share of node time by op type (rows) per configuration
    (columns), the concat rows first, then the ops by total share; then the
    time per step."""
    cfgs, op_us = res["configs"], res["op_us"]
    totals = [sum(d.values()) for d in op_us]
    share = lambda i, op: 100 * op_us[i].get(op, 0.0) / totals[i] if totals[i] else 0.0  # noqa: E731
    ops = sorted({op for d in op_us for op in d}, key=lambda op: -sum(share(i, op) for i in range(len(cfgs))))
    concat = [op for op in (CACHE_CONCAT, OTHER_CONCAT) if any(op in d for d in op_us)]
    shown = concat + [op for op in ops if op not in concat][:top]
    head = ["op type"] + [_label(c) for c in cfgs]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    steps = res["steps"]
    for op in shown:
        lines.append("| " + " | ".join([op] + [f"{share(i, op):.1f}% ({op_us[i].get(op, 0.0) / steps / 1e3:.2f} ms)"
                                               for i in range(len(cfgs))]) + " |")
    rest = [op for op in ops if op not in shown]
    if rest:
        lines.append("| " + " | ".join([f"other ({len(rest)} op types)"] + [
            f"{sum(share(i, op) for op in rest):.1f}%" for i in range(len(cfgs))]) + " |")
    all_concat = [sum(share(i, op) for op in concat) for i in range(len(cfgs))]
    lines.append("| " + " | ".join(["**Concat, all**"] + [f"**{x:.1f}%**" for x in all_concat]) + " |")
    lines.append("| " + " | ".join(["node time / step"] + [f"{totals[i] / steps / 1e3:.2f} ms" for i in range(len(cfgs))]) + " |")
    med = lambda xs: sorted(xs)[len(xs) // 2] / 1e3 if xs else 0.0  # noqa: E731
    mean = lambda xs: sum(xs) / len(xs) / 1e3 if xs else 0.0  # noqa: E731
    lines.append("| " + " | ".join(["step (model_run) mean / p50"] + [
        f"{mean(res['run_us'][i]):.2f} / {med(res['run_us'][i]):.2f} ms" for i in range(len(cfgs))]) + " |")
    g = res["graph"]
    ops_g = g["ops"]
    fused = sorted(op for op in ops_g if op in ("Attention", "MultiHeadAttention", "GroupQueryAttention",
                                                 "DecoderMaskedMultiHeadAttention", "FusedMatMul", "SkipLayerNormalization",
                                                 "LayerNormalization", "SkipSimplifiedLayerNormalization",
                                                 "SimplifiedLayerNormalization", "FastGelu", "BiasGelu", "QuickGelu"))
    lines.append("")
    lines.append(f"optimized graph: {g['nodes']} nodes; Concat {ops_g.get('Concat', 0)} "
                 f"(cache {len(g['cache_concats'])}, other {ops_g.get('Concat', 0) - len(g['cache_concats'])}); "
                 f"MatMul {ops_g.get('MatMul', 0)}, Softmax {ops_g.get('Softmax', 0)}; "
                 f"fused ops: {', '.join(f'{op} {ops_g[op]}' for op in fused) or 'none'}")
    lines.append(f"{steps} steps per column after one warm-up, past growing from the column's length, "
                 f"encoder length {res['src_len']}, threads intra {res['threads'][0]} inter {res['threads'][1]}; "
                 f"outputs {_outputs(res.get('outputs'))}; "
                 "ms in a cell: per step")
    return "\n".join(lines)


def _outputs(kind) -> str:
    return {"ort": "allocated by ORT at every step",
            "inplace": "the inplace layout: one buffer per cache tensor, bound as past and present (as the Go host)"}.get(
        kind, "preallocated, I/O binding (as the Go host)")


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m bench.ort_profile", description=__doc__.strip().splitlines()[0])
    p.add_argument("--model", default="marian", help="marian, t5 (the harness's cached exports), t5-tiny, marian-tiny, or a directory")
    p.add_argument("--past", default="64,256", help="comma-separated start lengths of the self-attention cache (default 64,256)")
    p.add_argument("--batch", default="1,32", help="comma-separated batch sizes (default 1,32)")
    p.add_argument("--beams", default="1", help="comma-separated beam counts; rows = batch x beams (default 1)")
    p.add_argument("--steps", type=int, default=8, help="profiled steps per configuration, after one warm-up (default 8)")
    p.add_argument("--src-len", type=int, default=24, help="encoder length (default 24)")
    p.add_argument("--threads", default="2,1", help="intra-op,inter-op threads (default 2,1)")
    p.add_argument("--ort-outputs", action="store_true", help="let ORT allocate every output (as Optimum without I/O binding) "
                   "instead of writing the present cache into preallocated buffers (as the Go host)")
    p.add_argument("--cross-per-row", action="store_true", help="inplace layout: feed the cross-attention keys and values "
                   "once per row (as the runtime does when inputs hold different row counts) instead of once per input")
    p.add_argument("--top", type=int, default=10, help="op types shown besides Concat (default 10)")
    p.add_argument("--json", type=Path, help="also write the figures to this file")
    p.add_argument("--work", type=Path, default=Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "s2s-bench",
                   help="the harness's model cache (default ~/.cache/s2s-bench)")
    a = p.parse_args(argv)
    try:
        a.past = [int(x) for x in a.past.split(",")]
        a.batch = [int(x) for x in a.batch.split(",")]
        a.beams = [int(x) for x in a.beams.split(",")]
        a.intra, a.inter = (int(x) for x in a.threads.split(","))
    except ValueError:
        p.error("--past, --batch, --beams and --threads take comma-separated integers")
    if min(a.past) < 0 or min(a.batch) < 1 or min(a.beams) < 1 or a.steps < 1 or a.src_len < 1:
        p.error("--past must be 0 or more; --batch, --beams, --steps and --src-len at least 1")
    return a


def main(argv=None) -> int:
    a = parse_args(sys.argv[1:] if argv is None else argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    d = model_dir(a.model, a.work)
    res = profile(d, a.past, a.batch, a.beams, steps=a.steps, src_len=a.src_len, intra=a.intra, inter=a.inter,
                  preallocated=not a.ort_outputs, cross_per_row=a.cross_per_row)
    print(f"{d / (INPLACE_GRAPH if is_inplace(d) else GRAPH)}: share of node time by op type (ONNX Runtime profiler)\n")
    print(table(res, top=a.top))
    if a.json:
        a.json.write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
