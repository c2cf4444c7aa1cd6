"""quantize writes an int8 copy of a model directory the Go host loads: every
ONNX graph quantized with ONNX Runtime's dynamic quantization
(onnxruntime.quantization.quantize_dynamic: int8 weights, activations
quantized to uint8 at run time), every other file copied unchanged.

The source may be an s2s export (s2s.json), a directory optimum-cli wrote,
or a recurrent model such as models/g2p-en. When it has an s2s.json, the
copy's s2s.json gains a "quantization" object saying how the graphs were
made (the Go host ignores fields it does not know). docs/quantization.md
gives the measured settings and their cost in agreement with float32.

The defaults are what measured fastest on an AVX-512 VNNI CPU with ORT 1.30
at no loss of agreement: signed int8 weights, per-tensor scales, MatMul and
LSTM quantized (Gemm rewritten as MatMul first), Gather (the embeddings) left
in float32.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from .errors import ExportError

MANIFEST = "s2s.json"
WEIGHT_TYPES = ("int8", "uint8")
# Operators quantize_dynamic can quantize (its IntegerOpsRegistry) plus Gemm,
# which is rewritten as MatMul (+ Add) so that it can be.
KNOWN_OPS = ("MatMul", "Gemm", "LSTM", "Attention", "Gather", "Conv", "Transpose", "EmbedLayerNormalization")
DEFAULT_OPS = ("MatMul", "Gemm", "LSTM", "Attention")


def add_arguments(p: argparse.ArgumentParser) -> None:
    """add_arguments declares the arguments of `quantize`."""
    p.add_argument("src", metavar="SRC_DIR", help="model directory (s2s export, optimum-cli export or models/g2p-en)")
    p.add_argument("out", metavar="OUT_DIR", help="directory to write the quantized model to")
    p.add_argument("--weight-type", choices=WEIGHT_TYPES, default="int8",
                   help="weight type (default int8: signed weights, uint8 activations, fastest with VNNI)")
    p.add_argument("--per-channel", action="store_true",
                   help="one scale per output channel instead of per tensor (slower; see docs/quantization.md)")
    p.add_argument("--op-types", default=",".join(DEFAULT_OPS),
                   help=f"comma-separated operators to quantize (default {','.join(DEFAULT_OPS)}; known: {','.join(KNOWN_OPS)})")
    p.add_argument("--force", action="store_true", help="replace OUT_DIR if it exists and is not empty")


def run(args: argparse.Namespace) -> int:
    """run writes an int8 dynamic-quantized copy of a model directory."""
    ops = parse_op_types(args.op_types)
    report = quantize_dir(Path(args.src), Path(args.out), weight_type=args.weight_type, per_channel=args.per_channel,
                          op_types=ops, force=args.force)
    for line in report:
        print(line)
    return 0


def parse_op_types(text: str) -> tuple[str, ...]:
    """parse_op_types splits a comma-separated operator list and refuses unknown or no operators."""
    ops = tuple(o.strip() for o in text.split(",") if o.strip())
    if not ops:
        raise ExportError("--op-types is empty; name at least one operator, e.g. MatMul")
    bad = [o for o in ops if o not in KNOWN_OPS]
    if bad:
        raise ExportError(f"--op-types: unknown operator {', '.join(bad)}; known: {', '.join(KNOWN_OPS)}")
    return ops


def graph_files(src: Path) -> list[Path]:
    """graph_files returns the .onnx graphs directly in src, sorted; none is an ExportError."""
    if not src.is_dir():
        raise ExportError(f"{src} is not a directory; pass a model directory (one with .onnx graphs)")
    found = sorted(p for p in src.iterdir() if p.is_file() and p.suffix == ".onnx")
    if not found:
        raise ExportError(f"{src} has no .onnx graphs; pass a model directory the Go host loads")
    return found


def external_data_files(graph: Path) -> set[str]:
    """external_data_files returns the names of the files holding graph's external weights (empty for most graphs)."""
    import onnx

    model = onnx.load(str(graph), load_external_data=False)
    return {kv.value for g in _graphs(model.graph) for t in g.initializer
            for kv in t.external_data if kv.key == "location"}


def _graphs(g):
    """_graphs yields g and every subgraph under it (If branches, loop bodies), depth first."""
    import onnx

    yield g
    for n in g.node:
        for a in n.attribute:
            if a.type == onnx.AttributeProto.GRAPH:
                yield from _graphs(a.g)
            for sub in a.graphs:
                yield from _graphs(sub)


def _check_out(src: Path, out: Path, force: bool) -> None:
    """_check_out refuses an existing non-empty OUT_DIR unless force, and an
    OUT_DIR that is SRC_DIR, holds it, or is a top directory."""
    if out.exists() and not out.is_dir():
        raise ExportError(f"{out} exists and is a file; pass a directory path")
    o, s = out.resolve(), src.resolve()
    if o == s or o in s.parents or o == Path(o.anchor) or o == Path.home().resolve():
        raise ExportError(f"refusing to write into {out}: it is or holds SRC_DIR, or is a top directory; pick a new OUT_DIR")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise ExportError(f"{out} exists and is not empty; pass --force to replace it")


def gemm_to_matmul(model) -> int:
    """gemm_to_matmul rewrites, in place, every Gemm of model's main graph whose
    B is an initializer as MatMul (+ Add of C), which quantize_dynamic can
    quantize and Gemm it cannot. The result is the same function: A is 2-D in
    a Gemm; transB is applied to the stored weight, alpha and beta to B and C.
    Gemms with transA or a computed B are left alone. It returns how many it rewrote."""
    import numpy as np
    from onnx import helper, numpy_helper

    g = model.graph
    inits = {t.name: t for t in g.initializer}
    uses: dict[str, int] = {}
    for n in g.node:
        for i in n.input:
            uses[i] = uses.get(i, 0) + 1
    nodes = []
    done = 0
    for n in g.node:
        attrs = {a.name: helper.get_attribute_value(a) for a in n.attribute}
        if (n.op_type != "Gemm" or n.input[1] not in inits or attrs.get("transA", 0)
                or (len(n.input) > 2 and n.input[2] and n.input[2] not in inits)):
            nodes.append(n)
            continue
        b = numpy_helper.to_array(inits[n.input[1]]).astype(np.float32)
        if attrs.get("transB", 0):
            b = b.T
        b = np.ascontiguousarray(b * np.float32(attrs.get("alpha", 1.0)))
        wname = f"{n.name or n.output[0]}_matmul_B"
        g.initializer.append(numpy_helper.from_array(b, wname))
        if len(n.input) > 2 and n.input[2]:
            mm = f"{n.output[0]}_matmul"
            nodes.append(helper.make_node("MatMul", [n.input[0], wname], [mm], name=f"{n.name}_MatMul"))
            c = numpy_helper.to_array(inits[n.input[2]]).astype(np.float32) * np.float32(attrs.get("beta", 1.0))
            cname = f"{n.name or n.output[0]}_add_C"
            g.initializer.append(numpy_helper.from_array(c, cname))
            nodes.append(helper.make_node("Add", [mm, cname], [n.output[0]], name=f"{n.name}_Add"))
        else:
            nodes.append(helper.make_node("MatMul", [n.input[0], wname], [n.output[0]], name=f"{n.name}_MatMul"))
        done += 1
    if done:
        del g.node[:]
        g.node.extend(nodes)
        used = {i for n in g.node for i in n.input}
        keep = [t for t in g.initializer if t.name in used or t.name in {o.name for o in g.output}]
        del g.initializer[:]
        g.initializer.extend(keep)
    return done


def _computed_lstm_weights(model) -> bool:
    """_computed_lstm_weights reports whether an LSTM of model's main graph
    takes its weights from nodes rather than initializers (PyTorch's export
    reorders the gates with Slice and Concat), which quantize_dynamic skips."""
    inits = {t.name for t in model.graph.initializer}
    return any(n.op_type == "LSTM" and not (n.input[1] in inits and n.input[2] in inits) for n in model.graph.node)


def fold_constants(src: Path):
    """fold_constants returns src's graph after ONNX Runtime's basic
    optimizations (constant folding, redundant node removal: standard ONNX
    operators only, the same on every machine)."""
    import onnx
    import onnxruntime as ort

    with tempfile.TemporaryDirectory() as tmp:
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        so.optimized_model_filepath = str(Path(tmp) / src.name)
        so.log_severity_level = 3
        try:
            ort.InferenceSession(str(src), so, providers=["CPUExecutionProvider"])
        except Exception as e:
            raise ExportError(f"{src}: onnxruntime cannot load it ({e}); pass a graph the Go host loads") from e
        return onnx.load(so.optimized_model_filepath)


def quantize_graph(src: Path, dest: Path, *, weight_type: str = "int8", per_channel: bool = False,
                   op_types: tuple[str, ...] = DEFAULT_OPS) -> None:
    """quantize_graph writes the dynamic-quantized graph src to dest.

    Subgraphs (the merged decoder's If branches) are quantized too. A graph
    with external weights is written with external weights beside dest.
    """
    import logging

    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    external = bool(external_data_files(src))
    ops = [o for o in op_types if o != "Gemm"]
    # A graph over 2 GB cannot pass through a ModelProto in memory; such
    # graphs (Optimum's) have no Gemm and go to quantize_dynamic by path.
    model: Any = src
    if not external and ("Gemm" in op_types or "LSTM" in op_types):
        model = onnx.load(str(src))
        if "LSTM" in op_types and _computed_lstm_weights(model):
            model = fold_constants(src)
        if "Gemm" in op_types and gemm_to_matmul(model) and "MatMul" not in ops:
            ops.append("MatMul")
    qtype = QuantType.QInt8 if weight_type == "int8" else QuantType.QUInt8
    # quantize_dynamic logs a pre-processing hint for every graph; the hint
    # (symbolic shape inference for static quantization) does not apply here.
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        quantize_dynamic(
            model, dest, op_types_to_quantize=ops, per_channel=per_channel, weight_type=qtype,
            use_external_data_format=external, extra_options={"EnableSubgraph": True, "MatMulConstBOnly": True},
        )
    except Exception as e:
        raise ExportError(f"{src}: onnxruntime could not quantize it ({type(e).__name__}: {e})") from e
    finally:
        root.setLevel(level)


def op_counts(path: Path) -> dict[str, int]:
    """op_counts returns how many nodes of each operator path's graph has, If branches included."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    counts: dict[str, int] = {}
    for g in _graphs(model.graph):
        for n in g.node:
            counts[n.op_type] = counts.get(n.op_type, 0) + 1
    return counts


def _size(path: Path, extra: set[str]) -> int:
    return path.stat().st_size + sum((path.parent / e).stat().st_size for e in extra if (path.parent / e).is_file())


def quantize_dir(src: Path, out: Path, *, weight_type: str = "int8", per_channel: bool = False,
                 op_types: tuple[str, ...] = DEFAULT_OPS, force: bool = False) -> list[str]:
    """quantize_dir writes to out src's graphs quantized and its other files
    copied, and returns one report line per graph (sizes before and after).

    The copy is built in a staging directory beside out and moved into place
    when every graph is written, so a failure leaves out as it was.
    """
    src, out = Path(src), Path(out)
    if weight_type not in WEIGHT_TYPES:
        raise ExportError(f"weight type {weight_type!r} is not one of {', '.join(WEIGHT_TYPES)}")
    for o in op_types:
        if o not in KNOWN_OPS:
            raise ExportError(f"unknown operator {o!r} to quantize; known: {', '.join(KNOWN_OPS)}")
    graphs = graph_files(src)
    _check_out(src, out, force)
    manifest = None
    if (src / MANIFEST).is_file():
        try:
            manifest = json.loads((src / MANIFEST).read_text())
        except ValueError as e:
            raise ExportError(f"{src / MANIFEST}: {e}; fix or re-export the model") from e
        if "quantization" in manifest:
            raise ExportError(f"{src} is already quantized ({manifest['quantization']}); pass the float32 directory")
    data = {g: external_data_files(g) for g in graphs}
    skip = {g.name for g in graphs} | {e for names in data.values() for e in names}

    out.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    stage.chmod(0o755)
    lines = []
    try:
        for f in sorted(src.iterdir()):
            if f.name in skip:
                continue
            if f.is_dir():
                shutil.copytree(f, stage / f.name, symlinks=True)
            else:
                shutil.copy2(f, stage / f.name)
        for g in graphs:
            dest = stage / g.name
            quantize_graph(g, dest, weight_type=weight_type, per_channel=per_channel, op_types=op_types)
            before = _size(g, data[g])
            after = _size(dest, external_data_files(dest))
            lines.append(f"{g.name:32s} {before / 1e6:9.2f} MB -> {after / 1e6:8.2f} MB")
        if manifest is not None:
            import onnxruntime

            manifest["quantization"] = {
                "method": "dynamic",
                "weight_type": weight_type,
                "activation_type": "uint8",
                "per_channel": per_channel,
                "op_types": list(op_types),
                "onnxruntime": onnxruntime.__version__,
            }
            (stage / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        if out.exists():
            shutil.rmtree(out)
        shutil.move(str(stage), out)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    lines.append(f"wrote {out} ({len(graphs)} graphs, {weight_type} weights{', per channel' if per_channel else ''})")
    return lines
