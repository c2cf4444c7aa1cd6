"""pack turns a model directory the Go host serves into one self-contained
ONNX file:

    python -m s2s_export pack MODEL_DIR OUT.onnx [--force]

The file's graph holds every part of the model (a Transformer's encoder,
first-step decoder and later-step decoder; a recurrent model's encoder and
step graph) behind nested If nodes on one extra input, `s2s_part` (int64,
shape [1]): ONNX Runtime runs every node of a graph, so each part is a
branch that runs only when asked for. The weights are initializers of the
top-level graph (outer scope, visible to every branch), deduplicated by
content, so that what the parts share (the decoders' weights, the shared
embeddings, Optimum's duplicated copies) is stored once. The files of the
directory form the host reads (s2s.json, config.json,
generation_config.json, the tokenizers, licences) are in the model's
metadata_props, with the schema version under `s2s.format_version`.

The directory may be our exporter's, one optimum-cli wrote (no s2s.json: the
manifest is derived from config.json as the Go host derives it), a merged
decoder alone, a recurrent model such as models/g2p-en, or an int8 one from
`quantize`. Before anything is written the packed file is checked: each part
run through onnxruntime on sample inputs must give the directory's graphs'
outputs. The output is a function of the directory alone (no time, no
paths), so packing the same directory twice gives the same bytes.
docs/model-format.md documents the format.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import CheckError, ExportError

FORMAT_VERSION = "1.0"
PART_INPUT = "s2s_part"
KEY_VERSION = "s2s.format_version"
KEY_PARTS = "s2s.parts"
MANIFEST = "s2s.json"
CONFIG = "config.json"
GENERATION_CONFIG = "generation_config.json"
PRODUCER = "s2s_export.pack"

# Protobuf cannot hold a message of 2 GiB or more; such a model keeps the
# directory form (its weights in external data files).
MAX_BYTES = 2**31 - 1

# The parts of each architecture: name (the manifest's "files" key, which
# in the packed manifest names the part) and the s2s_part value that runs
# it. The most frequent part (a decoder step) is the outermost branch.
PARTS = {
    "transformer": (("encoder", 0), ("decoder", 1), ("decoder_with_past", 2)),
    "rnn": (("encoder", 0), ("decoder", 1)),
}

# Optimum's file names, for directories without s2s.json.
OPTIMUM_FILES = {
    "encoder": "encoder_model.onnx",
    "decoder": "decoder_model.onnx",
    "decoder_with_past": "decoder_with_past_model.onnx",
    "decoder_merged": "decoder_model_merged.onnx",
}

DEFAULT_ATOL = 1e-5


def add_arguments(p: argparse.ArgumentParser) -> None:
    """add_arguments declares the arguments of `pack`."""
    p.add_argument("src", metavar="MODEL_DIR", help="model directory (s2s export, optimum-cli export, models/g2p-en, int8)")
    p.add_argument("out", metavar="OUT.onnx", help="the single ONNX file to write")
    p.add_argument("--force", action="store_true", help="replace OUT.onnx if it exists")
    p.add_argument("--atol", type=float, default=DEFAULT_ATOL,
                   help=f"largest difference allowed between the packed parts and the directory's graphs (default {DEFAULT_ATOL:g})")


def run(args: argparse.Namespace) -> int:
    """run packs a model directory into one ONNX file (graphs, tokenizers, configs)."""
    for line in pack_dir(Path(args.src), Path(args.out), force=args.force, atol=args.atol):
        print(line)
    return 0


# ---- reading the directory ----


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise ExportError(f"{path}: {e}; fix or re-export the model") from e


def _first(v: Any) -> int:
    if isinstance(v, list):
        return int(v[0]) if v else -1
    return -1 if v is None else int(v)


def derive_manifest(src: Path) -> dict[str, Any]:
    """derive_manifest builds the manifest of a directory optimum-cli wrote
    (no s2s.json) from its config.json and the graph files present, as the
    Go host's models.Load derives it."""
    if not (src / CONFIG).is_file():
        raise ExportError(f"{src} has neither {MANIFEST} nor {CONFIG}; pass a model directory the Go host serves")
    c = _read_json(src / CONFIG)
    eos = c.get("eos_token_id")
    m: dict[str, Any] = {
        "format": "s2s-model", "version": 1, "architecture": "transformer", "model_type": c.get("model_type", ""),
        "files": {k: f for k, f in OPTIMUM_FILES.items() if (src / f).is_file()},
        "tokenizer": {"source": "tokenizer.json", "target": "tokenizer.json"} if (src / "tokenizer.json").is_file() else {},
        "vocab_size": int(c.get("vocab_size") or 0), "hidden_size": int(c.get("d_model") or 0),
        "pad_token_id": _first(c.get("pad_token_id")),
        "eos_token_id": [int(x) for x in eos] if isinstance(eos, list) else ([] if eos is None else [int(eos)]),
        "bos_token_id": _first(c.get("bos_token_id")),
        "decoder_start_token_id": _first(c.get("decoder_start_token_id")),
    }
    if c.get("num_heads"):  # T5 family
        m.update(num_heads=c["num_heads"], head_dim=c.get("d_kv", 0),
                 num_layers=c.get("num_decoder_layers") or c.get("num_layers", 0))
    elif c.get("decoder_attention_heads"):  # BART, mBART, Marian
        m.update(num_heads=c["decoder_attention_heads"], head_dim=m["hidden_size"] // c["decoder_attention_heads"],
                 num_layers=c.get("decoder_layers", 0))
    return m


def read_manifest(src: Path) -> dict[str, Any]:
    """read_manifest returns src's s2s.json, or the manifest derived from config.json."""
    if not src.is_dir():
        raise ExportError(f"{src} is not a directory; pass a model directory")
    m = _read_json(src / MANIFEST) if (src / MANIFEST).is_file() else derive_manifest(src)
    if m.get("architecture") not in PARTS:
        raise ExportError(f"{src}: architecture {m.get('architecture')!r} is not one pack knows ({', '.join(PARTS)})")
    if m.get("layout", "optimum") != "optimum":
        # The inplace decoder writes its cache into the buffer it reads, bound
        # as both input and output; a branch of an If node returns copies.
        raise ExportError(f"{src} is in the {m.get('layout')!r} layout; pack takes Optimum's: re-export with --layout optimum")
    tok = m.get("tokenizer") or {}
    if not tok.get("source"):
        raise ExportError(f"{src} has no tokenizer.json; add the model's tokenizer")
    if not tok.get("target"):
        tok["target"] = tok["source"]
    m["tokenizer"] = tok
    return m


@dataclass
class Part:
    """Part is one graph of the model as a branch to be: its nodes, the
    initializers it reads, its inputs and its outputs (each output as
    (name in the packed graph, value name inside the part, ValueInfoProto))."""

    name: str
    value: int
    source: str
    nodes: list
    value_info: list
    initializers: list
    inputs: list
    outputs: list
    opsets: dict[str, int]
    ir_version: int
    renames: dict[str, str] = field(default_factory=dict)
    own: dict[str, str] = field(default_factory=dict)  # packed output name -> the part's own


def _subgraphs(node):
    import onnx

    for a in node.attribute:
        if a.type == onnx.AttributeProto.GRAPH:
            yield a.g
        yield from a.graphs


def _walk(nodes):
    """_walk yields every node of nodes and of their subgraphs, depth first."""
    for n in nodes:
        yield n
        for g in _subgraphs(n):
            yield from _walk(g.node)


def _free_names(g) -> set[str]:
    """_free_names returns the names g (a subgraph) reads from outer scopes."""
    defined = {i.name for i in g.input} | {t.name for t in g.initializer} | {o for n in g.node for o in n.output}
    used: set[str] = {o.name for o in g.output}
    for n in g.node:
        used.update(x for x in n.input if x)
        for sub in _subgraphs(n):
            used |= _free_names(sub)
    return used - defined


def _load(path: Path):
    import onnx

    if not path.is_file():
        raise ExportError(f"{path} is missing; re-export the model")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as e:
        raise ExportError(f"{path}: not a readable ONNX graph ({e}); re-export the model") from e
    g = model.graph
    if any(t.data_location == onnx.TensorProto.EXTERNAL for t in g.initializer):
        raise ExportError(f"{path.name} keeps its weights in external data (a model over 2 GB); it cannot be packed into one file")
    if len(g.sparse_initializer):
        raise ExportError(f"{path.name} has sparse initializers, which pack does not handle")
    return model


def _opsets(model) -> dict[str, int]:
    return {o.domain or "": o.version for o in model.opset_import}


def _graph_part(name: str, value: int, path: Path) -> Part:
    model = _load(path)
    g = model.graph
    inits = {t.name for t in g.initializer}
    return Part(name, value, path.name, list(g.node), list(g.value_info), list(g.initializer),
                [i for i in g.input if i.name not in inits], [(o.name, o.name, o) for o in g.output],
                _opsets(model), model.ir_version)


def _merged_parts(path: Path) -> tuple[Part, Part]:
    """_merged_parts takes Optimum's merged decoder apart: the If on
    use_cache_branch gives the first-step part (else branch) and the
    later-step part (then branch, without the placeholder
    present.*.encoder outputs)."""
    model = _load(path)
    g = model.graph
    ifs = [n for n in g.node if n.op_type == "If"]
    outs = [o.name for o in g.output]
    if len(g.node) != 1 or len(ifs) != 1 or list(ifs[0].input) != ["use_cache_branch"] or list(ifs[0].output) != outs:
        raise ExportError(f"{path.name} is not Optimum's merged decoder (one If on use_cache_branch giving the outputs); "
                          "pack a directory with decoder_model.onnx and decoder_with_past_model.onnx")
    branches = {a.name: a.g for a in ifs[0].attribute}
    declared = {o.name: o for o in g.output}
    inits = {t.name: t for t in g.initializer}

    def part(name: str, value: int, b, keep) -> Part:
        free = _free_names(b)
        inputs = [i for i in g.input if i.name in free and i.name != "use_cache_branch" and i.name not in inits]
        outputs = [(top, bo.name, declared[top]) for top, bo in zip(outs, b.output) if keep(top)]
        return Part(name, value, path.name, list(b.node), list(b.value_info),
                    [t for t in g.initializer if t.name in free], inputs, outputs, _opsets(model), model.ir_version)

    first = part("decoder", 1, branches["else_branch"], lambda n: True)
    step = part("decoder_with_past", 2, branches["then_branch"], lambda n: not (n.startswith("present.") and ".encoder." in n))
    return first, step


def read_parts(src: Path, manifest: dict[str, Any]) -> list[Part]:
    """read_parts loads the graphs of the model in src as parts."""
    files = manifest.get("files") or {}
    arch = manifest["architecture"]
    if not files.get("encoder"):
        raise ExportError(f"{src}: the manifest names no encoder graph")
    parts = [_graph_part("encoder", 0, src / files["encoder"])]
    if arch == "rnn":
        if not files.get("decoder"):
            raise ExportError(f"{src}: an rnn model needs its step graph under files.decoder")
        parts.append(_graph_part("decoder", 1, src / files["decoder"]))
    elif files.get("decoder") and files.get("decoder_with_past"):
        parts.append(_graph_part("decoder", 1, src / files["decoder"]))
        parts.append(_graph_part("decoder_with_past", 2, src / files["decoder_with_past"]))
    elif files.get("decoder_merged"):
        parts.extend(_merged_parts(src / files["decoder_merged"]))
    else:
        raise ExportError(f"{src}: no decoder graphs; the directory needs decoder and decoder_with_past, or decoder_merged")
    return [optimize_part(p) for p in parts]


def optimize_part(part: Part) -> Part:
    """optimize_part returns part after ONNX Runtime's basic graph
    optimizations (constant folding, redundant node removal, fusions into
    standard ONNX operators: nothing tied to a machine or an execution
    provider), run on the part as a graph of its own.

    ONNX Runtime optimizes a graph less inside an If branch than at the top
    of a model (shape computations it folds there are left to run at every
    step), which made a packed decoder step 1.2-1.3x the directory's on the
    tiny models; optimized first, the branch runs as fast
    (docs/model-format.md, "Packed models")."""
    import onnx
    import onnxruntime as ort
    from onnx import helper

    outputs = [helper.make_tensor_value_info(v, vi.type.tensor_type.elem_type, _dims(vi, f"{part.source}: output"))
               for _, v, vi in part.outputs]
    graph = helper.make_graph(list(part.nodes), f"s2s_{part.name}", list(part.inputs), outputs,
                              initializer=list(part.initializers), value_info=list(part.value_info))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid(d, v) for d, v in sorted(part.opsets.items())])
    model.ir_version = part.ir_version
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "part.onnx", Path(tmp) / "optimized.onnx"
        onnx.save(model, str(src))
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        so.optimized_model_filepath = str(dst)
        so.intra_op_num_threads = 1
        so.log_severity_level = 3
        try:
            ort.InferenceSession(str(src), so, providers=["CPUExecutionProvider"])
        except Exception as e:
            raise ExportError(f"{part.source}: onnxruntime cannot load the {part.name} part ({e}); pass a graph the Go host loads") from e
        opt = onnx.load(str(dst))
    g = opt.graph
    if [o.name for o in g.output] != [v for _, v, _ in part.outputs] or any(i.name not in {x.name for x in part.inputs} for i in g.input):
        raise ExportError(f"{part.source}: onnxruntime's optimizer changed the {part.name} part's inputs or outputs; report it with the model")
    inits = {t.name for t in g.initializer}
    # Only the shapes of values the part's nodes compute: a stale entry
    # (a value folded away) would give a name of the outer scope, a weight
    # shared with another part, a wrong shape.
    produced = {o for n in g.node for o in n.output}
    value_info = [vi for vi in g.value_info if vi.name in produced]
    return Part(part.name, part.value, part.source, list(g.node), value_info, list(g.initializer),
                [i for i in g.input if i.name not in inits], part.outputs, _opsets(opt), opt.ir_version)


# ---- building the packed graph ----


def _dims(vi, what: str) -> list:
    """_dims returns a ValueInfo's shape: ints for fixed axes, strings for
    named ones, None for unnamed ones."""
    t = vi.type
    if not t.HasField("tensor_type") or not t.tensor_type.HasField("shape"):
        raise ExportError(f"{what} {vi.name!r} is not a tensor of known rank; re-export the model")
    return [d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in t.tensor_type.shape.dim]


def _merge_dims(a: list, b: list) -> list:
    return [x if x == y else None for x, y in zip(a, b)]


def empty_shape(dims: list) -> list[int]:
    """empty_shape is the shape of the empty tensor that stands for an input
    a part does not take or an output it does not give: the declared shape
    with every open axis 0."""
    return [d if isinstance(d, int) else 0 for d in dims]


def _value_info(name: str, elem: int, dims: list):
    from onnx import helper

    return helper.make_tensor_value_info(name, elem, dims)


def _raw(t):
    """_raw returns (raw bytes, initializer with raw_data) for t."""
    from onnx import TensorProto, numpy_helper

    if t.data_type in (TensorProto.STRING, TensorProto.UNDEFINED):
        raise ExportError(f"initializer {t.name!r} holds strings; pack handles numeric weights only")
    if t.HasField("raw_data"):
        return t.raw_data, t
    arr = numpy_helper.to_array(t)
    t2 = numpy_helper.from_array(arr, t.name)
    return t2.raw_data, t2


def _rename_graph(g, mapping: dict[str, str]) -> None:
    """_rename_graph renames, in place, every value name of g and of its
    subgraphs found in mapping."""
    for vi in list(g.input) + list(g.output) + list(g.value_info):
        vi.name = mapping.get(vi.name, vi.name)
    for t in g.initializer:
        t.name = mapping.get(t.name, t.name)
    _rename_nodes(g.node, mapping)


def _rename_nodes(nodes, mapping: dict[str, str]) -> None:
    for n in nodes:
        for i, x in enumerate(n.input):
            if x in mapping:
                n.input[i] = mapping[x]
        for i, x in enumerate(n.output):
            if x in mapping:
                n.output[i] = mapping[x]
        for sub in _subgraphs(n):
            _rename_graph(sub, mapping)


def _internal_names(part: Part) -> set[str]:
    """_internal_names returns the names a part defines for itself: node
    outputs and the inputs and initializers of its subgraphs."""
    names: set[str] = set()

    def graph(g) -> None:
        names.update(i.name for i in g.input)
        names.update(t.name for t in g.initializer)
        nodes(g.node)

    def nodes(ns) -> None:
        for n in ns:
            names.update(o for o in n.output if o)
            for sub in _subgraphs(n):
                graph(sub)

    nodes(part.nodes)
    return names


@dataclass
class Packed:
    """Packed is the packed model and what was packed: the ONNX ModelProto
    and, per part, the top-level inputs it takes and outputs it gives."""

    model: Any
    parts: list[Part]
    inputs: list[tuple[str, int, list]]  # name, elem type, dims
    outputs: list[tuple[str, int, list]]
    initializers: int  # initializers in the parts
    unique: int  # after deduplication


def build(parts: list[Part]) -> Packed:
    """build makes the packed ModelProto of parts (without metadata)."""
    import onnx
    from onnx import helper, numpy_helper
    import numpy as np

    # Opsets: every part must use the same version of each domain.
    opsets: dict[str, int] = {}
    for p in parts:
        for d, v in p.opsets.items():
            if opsets.setdefault(d, v) != v:
                raise ExportError(f"the graphs use opset {opsets[d]} and {v} of domain {d or 'ai.onnx'!r}; re-export them with one opset")
    ir = max(p.ir_version for p in parts)

    # Top-level inputs and outputs: the union of the parts', one per name.
    ins: dict[str, tuple[int, list]] = {}
    outs: dict[str, tuple[int, list]] = {}
    for p in parts:
        for vi in p.inputs:
            _union(ins, vi.name, vi.type.tensor_type.elem_type, _dims(vi, f"{p.source}: input"), "input")
    for p in parts:
        # An output named like an input (a recurrent encoder's "memory" is
        # its step graph's input) is renamed "<part>.<name>" in the packed
        # graph, whose names must be unique.
        p.own = {(f"{p.name}.{top}" if top in ins else top): top for top, _, _ in p.outputs}
        p.outputs = [(f"{p.name}.{top}" if top in ins else top, v, vi) for top, v, vi in p.outputs]
        for top, _, vi in p.outputs:
            _union(outs, top, vi.type.tensor_type.elem_type, _dims(vi, f"{p.source}: output"), "output")
    if PART_INPUT in ins or PART_INPUT in outs:
        raise ExportError(f"a graph already has a value named {PART_INPUT!r}; it cannot be packed")
    for kind, table in (("input", ins), ("output", outs)):
        for name, (_, dims) in table.items():
            if all(isinstance(d, int) for d in dims) and 0 not in dims:
                # A part that does not use it would have to feed (or get)
                # a full tensor instead of an empty one.
                raise ExportError(f"{kind} {name!r} has the fixed shape {dims}; pack needs an open (batch) axis on every input and output")

    # The parts are branches of different Ifs, none inside another, so
    # they may use the same names (as Optimum's merged decoder does); a
    # name a part defines that names an outer value (an input or output of
    # the packed graph, a weight, one of ours) is prefixed "<value>/".
    reserved = set(ins) | set(outs) | {PART_INPUT}
    internal = [_internal_names(p) for p in parts]
    everything = set(reserved).union(*internal)
    for p, names in zip(parts, internal):
        for n in sorted(names):
            if n in reserved or n.startswith("s2s_"):
                new = _unique(f"{p.value}/{n}", everything)
                everything.add(new)
                p.renames[n] = new

    # Initializers, deduplicated by content.
    taken = set(everything)
    by_key: dict[tuple, str] = {}
    raw_of: dict[str, bytes] = {}
    top_inits = []
    users: dict[str, set[str]] = {}
    count = 0
    for p in parts:
        for t in p.initializers:
            count += 1
            raw, t2 = _raw(t)
            key = (t2.data_type, tuple(t2.dims), hashlib.sha256(raw).digest())
            name = by_key.get(key)
            if name is None or raw_of[name] != raw:
                name = _unique(t.name, taken)
                taken.add(name)
                by_key[key] = name
                raw_of[name] = raw
                t3 = onnx.TensorProto()
                t3.CopyFrom(t2)
                t3.name = name
                t3.ClearField("doc_string")
                top_inits.append(t3)
            p.renames[t.name] = name
            users.setdefault(name, set()).add(p.name)
    unique = len(top_inits)
    # A weight only one part reads stays in that part's branch: an outer
    # value costs each run of the If that passes it in (measured on
    # g2p-en's step, 80 us: 8 us of the If's 20).
    local: dict[str, list] = {p.name: [] for p in parts}
    shared = []
    for t in top_inits:
        if len(users[t.name]) == 1:
            local[next(iter(users[t.name]))].append(t)
        else:
            shared.append(t)

    def branch(p: Part):
        g = helper.make_graph(list(p.nodes), f"s2s_{p.name}", [], [])
        g.value_info.extend(p.value_info)
        _rename_graph(g, p.renames)
        g.initializer.extend(local[p.name])  # named already
        produced = {o for n in g.node for o in n.output}
        given = {top: p.renames.get(v, v) for top, v, _ in p.outputs}
        declared = {top: vi for top, _, vi in p.outputs}
        used: set[str] = set()
        for name, (elem, dims) in outs.items():
            if name in given:
                v = given[name]
                if v not in produced or v in used:
                    # A pass-through (an input or a weight) or a value
                    # given twice: an If branch must produce each output.
                    w = f"{p.name}/s2s_out.{name}"
                    g.node.append(helper.make_node("Identity", [v], [w], name=w))
                    v = w
                used.add(v)
                g.output.append(_value_info(v, elem, None))
            else:
                shape = empty_shape(dims)
                w = f"{p.name}/s2s_empty.{name}"
                arr = np.zeros(shape, dtype=helper.tensor_dtype_to_np_dtype(elem))
                g.node.append(helper.make_node("Constant", [], [w], name=w, value=numpy_helper.from_array(arr, w)))
                g.output.append(_value_info(w, elem, None))
        return g

    # Nested Ifs, the highest part value outermost.
    order = sorted(parts, key=lambda p: -p.value)
    part_values = []

    def gate(ps: list[Part], depth: int, out_names: list[str]):
        """gate returns the nodes that run one of ps into out_names."""
        p = ps[0]
        if len(ps) == 1:
            raise AssertionError("gate needs two parts")
        const = f"s2s_part.{p.value}"
        cond = f"s2s_is.{p.value}"
        part_values.append(numpy_helper.from_array(np.array([p.value], dtype=np.int64), const))
        if len(ps) == 2:
            other = branch(ps[1])
        else:
            inner = [f"s2s_{depth + 1}.{n}" for n in outs]
            other = helper.make_graph(gate(ps[1:], depth + 1, inner), f"s2s_not_{p.name}", [],
                                      [_value_info(n, e, None) for n, (e, _) in zip(inner, outs.values())])
        return [
            helper.make_node("Equal", [PART_INPUT, const], [cond], name=cond),
            helper.make_node("If", [cond], out_names, name=f"s2s_if.{p.value}", then_branch=branch(p), else_branch=other),
        ]

    nodes = gate(order, 0, list(outs))
    graph = helper.make_graph(
        nodes, "s2s",
        [_value_info(PART_INPUT, onnx.TensorProto.INT64, [1])] + [_value_info(n, e, d) for n, (e, d) in ins.items()],
        [_value_info(n, e, d) for n, (e, d) in outs.items()],
        initializer=part_values + shared,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid(d, v) for d, v in sorted(opsets.items())],
                              producer_name=PRODUCER, producer_version=FORMAT_VERSION)
    model.ir_version = ir
    model.doc_string = "s2s packed model: one graph, gated by s2s_part; see s2s.parts and docs/model-format.md"
    return Packed(model, parts, [(n, e, d) for n, (e, d) in ins.items()], [(n, e, d) for n, (e, d) in outs.items()],
                  count, unique)


def _union(table: dict, name: str, elem: int, dims: list, kind: str) -> None:
    if name not in table:
        table[name] = (elem, dims)
        return
    e, d = table[name]
    if e != elem or len(d) != len(dims):
        raise ExportError(f"the graphs disagree on {kind} {name!r} (element type {e} rank {len(d)} against {elem} rank {len(dims)}); re-export the model")
    table[name] = (e, _merge_dims(d, dims))


def _unique(name: str, taken: set[str]) -> str:
    if name not in taken:
        return name
    i = 2
    while f"{name}.{i}" in taken:
        i += 1
    return f"{name}.{i}"


# ---- metadata ----


def _files_to_embed(src: Path, manifest: dict[str, Any]) -> list[str]:
    names = [CONFIG, GENERATION_CONFIG, manifest["tokenizer"]["source"], manifest["tokenizer"]["target"]]
    names += sorted(f.name for f in src.iterdir() if f.is_file() and f.name.upper().startswith("LICENSE"))
    out: list[str] = []
    for n in names:
        if n not in out and n != MANIFEST:
            out.append(n)
    return out


def packed_manifest(manifest: dict[str, Any], parts: list[Part]) -> dict[str, Any]:
    """packed_manifest is the directory's manifest with "files" naming the parts."""
    m = dict(manifest)
    m["files"] = {p.name: p.name for p in parts}
    return m


def _compact(v: Any) -> str:
    """_compact writes v as JSON without whitespace, keys in their order."""
    return json.dumps(v, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def _own(p: Part, top: str) -> str:
    """_own returns the part's own name of the packed graph's output top."""
    return p.own.get(top, top)


def metadata(src: Path, manifest: dict[str, Any], packed: Packed) -> dict[str, str]:
    """metadata returns the model's metadata_props: the format version, the
    parts, the manifest and the embedded files."""
    parts = {
        "input": PART_INPUT,
        "parts": [{"name": p.name, "value": p.value, "source": p.source,
                   "inputs": [i.name for i in p.inputs], "outputs": [_own(p, top) for top, _, _ in p.outputs],
                   **({"renamed": r} if (r := {_own(p, top): top for top, _, _ in p.outputs if _own(p, top) != top}) else {})}
                  for p in packed.parts],
    }
    meta = {KEY_VERSION: FORMAT_VERSION, KEY_PARTS: _compact(parts), MANIFEST: _compact(packed_manifest(manifest, packed.parts))}
    for name in _files_to_embed(src, manifest):
        path = src / name
        if not path.is_file():
            if name == GENERATION_CONFIG or name == CONFIG:
                continue  # the host reads none as an empty one
            raise ExportError(f"{path} is missing; the manifest names it")
        try:
            text = path.read_bytes().decode("utf-8")
        except UnicodeDecodeError as e:
            raise ExportError(f"{path} is not UTF-8 text ({e}); metadata holds text only") from e
        if name.endswith(".json"):
            # The same JSON value, without the indentation.
            try:
                text = _compact(json.loads(text))
            except ValueError as e:
                raise ExportError(f"{path}: {e}; fix or re-export the model") from e
        meta[name] = text
    return meta


# ---- running a packed part (the protocol, in Python) ----


def feeds(packed_inputs: list[tuple[str, int, list]], part: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
    """feeds returns the inputs of one run of a packed model: the part's
    value in s2s_part, given[name] for each input the part takes, and an
    empty tensor (declared shape, open axes 0) for each other input."""
    import numpy as np
    from onnx import helper

    out = {PART_INPUT: np.array([part["value"]], dtype=np.int64)}
    takes = set(part["inputs"])
    for name, elem, dims in packed_inputs:
        if name in takes:
            out[name] = given[name]
        else:
            out[name] = np.zeros(empty_shape(dims), dtype=helper.tensor_dtype_to_np_dtype(elem))
    return out


# ---- the check ----


def _session(model_or_path):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    arg = model_or_path if isinstance(model_or_path, (bytes, str)) else str(model_or_path)
    try:
        return ort.InferenceSession(arg, so, providers=["CPUExecutionProvider"])
    except Exception as e:
        raise CheckError(f"onnxruntime cannot load {'the packed model' if isinstance(arg, bytes) else arg} ({e})") from e


class _Packed:
    """_Packed runs the parts of a packed model in onnxruntime."""

    def __init__(self, data: bytes, info: dict[str, Any], inputs: list[tuple[str, int, list]]):
        self.sess = _session(data)
        self.parts = {p["name"]: p for p in info["parts"]}
        self.inputs = inputs
        self.names = [o.name for o in self.sess.get_outputs()]

    def run(self, part: str, given: dict[str, Any]) -> dict[str, Any]:
        p = self.parts[part]
        got = dict(zip(self.names, self.sess.run(None, feeds(self.inputs, p, given))))
        renamed = p.get("renamed", {})
        return {k: got[renamed.get(k, k)] for k in p["outputs"]}


def _run_graph(sess, given: dict[str, Any]) -> dict[str, Any]:
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(None, {i.name: given[i.name] for i in sess.get_inputs()})))


def _sample_ids(manifest: dict[str, Any]):
    import numpy as np

    eos = manifest["eos_token_id"][0]
    pad = max(manifest.get("pad_token_id", 0), 0)
    # Inside the smallest source vocabulary (g2p-en's 30 characters), past the special ids.
    hi = min(manifest["vocab_size"], 28)
    rows = [[3 + (i * 7) % (hi - 4) for i in range(n)] + [eos] for n in (6, 3)]
    width = max(len(r) for r in rows)
    ids = np.array([r + [pad] * (width - len(r)) for r in rows], dtype=np.int64)
    mask = np.array([[1] * len(r) + [0] * (width - len(r)) for r in rows], dtype=np.int64)
    return ids, mask


class _Diff:
    def __init__(self, atol: float):
        self.atol, self.worst = atol, 0.0

    def __call__(self, what: str, got: dict[str, Any], want: dict[str, Any]) -> None:
        import numpy as np

        for name, w in want.items():
            g = got[name]
            if g.shape != w.shape:
                raise CheckError(f"{what}: {name} has shape {g.shape} packed, {w.shape} in the directory")
            d = float(np.abs(g.astype(np.float64) - w.astype(np.float64)).max()) if g.size else 0.0
            self.worst = max(self.worst, d)
            if not d <= self.atol:
                raise CheckError(f"{what}: {name} differs from the directory's graph by {d:.3g} (tolerance {self.atol:g})")


def check(src: Path, manifest: dict[str, Any], data: bytes, info: dict[str, Any], inputs, *, atol: float = DEFAULT_ATOL,
          steps: int = 3) -> float:
    """check runs each part of the packed model (data) and the directory's
    own graphs on the same sample inputs (two sources, one padded; the
    encoder, then steps greedy decoder steps) and raises CheckError when an
    output differs by more than atol. It returns the largest difference."""
    import numpy as np

    packed = _Packed(data, info, inputs)
    diff = _Diff(atol)
    files = manifest["files"]
    ids, mask = _sample_ids(manifest)
    enc = _session(src / files["encoder"])
    want = _run_graph(enc, {"input_ids": ids, "attention_mask": mask})
    got = packed.run("encoder", {"input_ids": ids, "attention_mask": mask})
    diff("encoder", got, {k: want[k] for k in got})
    start = np.full((ids.shape[0], 1), manifest["decoder_start_token_id"], dtype=np.int64)
    if manifest["architecture"] == "rnn":
        step = _session(src / files["decoder"])
        states = {s["input"]: want[s["init"]] for s in manifest["states"]}
        tok = start
        for t in range(steps):
            w = _run_graph(step, {"input_ids": tok, **states})
            g = packed.run("decoder", {"input_ids": tok, **states})
            diff(f"decoder step {t}", g, {k: w[k] for k in g})
            for s in manifest["states"]:
                if s["carried"]:
                    states[s["input"]] = w[s["output"]]
            tok = w["logits"][:, -1].argmax(-1).reshape(-1, 1).astype(np.int64)
        return diff.worst
    hidden = want["last_hidden_state"]
    if files.get("decoder") and files.get("decoder_with_past") and (src / files["decoder_with_past"]).is_file():
        first, later = _session(src / files["decoder"]), _session(src / files["decoder_with_past"])
        merged = None
    else:
        merged = _session(src / files["decoder_merged"])
        first = later = None
    given = {"input_ids": start, "encoder_attention_mask": mask, "encoder_hidden_states": hidden}
    if merged is None:
        w = _run_graph(first, given)
    else:
        w = _merged_step(merged, given, manifest, first=True)
    g = packed.run("decoder", given)
    diff("decoder step 0", g, {k: w[k] for k in g})
    past = {k.replace("present.", "past_key_values.", 1): v for k, v in w.items() if k.startswith("present.")}
    tok = w["logits"][:, -1].argmax(-1).reshape(-1, 1).astype(np.int64)
    for t in range(1, steps):
        given = {"input_ids": tok, "encoder_attention_mask": mask, **past}
        w = _run_graph(later, given) if merged is None else _merged_step(merged, given, manifest, first=False)
        g = packed.run("decoder_with_past", given)
        diff(f"decoder step {t}", g, {k: w[k] for k in g})
        past.update({k.replace("present.", "past_key_values.", 1): v for k, v in g.items() if k.startswith("present.")})
        tok = w["logits"][:, -1].argmax(-1).reshape(-1, 1).astype(np.int64)
    return diff.worst


def _merged_step(sess, given: dict[str, Any], manifest: dict[str, Any], *, first: bool) -> dict[str, Any]:
    """_merged_step runs Optimum's merged decoder as docs/model-format.md says."""
    import numpy as np

    rows = given["input_ids"].shape[0]
    feed = {"use_cache_branch": np.array([not first])}
    for i in sess.get_inputs():
        if i.name in given:
            feed[i.name] = given[i.name]
        elif i.name == "encoder_hidden_states":
            feed[i.name] = np.zeros((rows, 0, manifest["hidden_size"]), dtype=np.float32)
        elif i.name.startswith("past_key_values."):
            feed[i.name] = np.zeros((rows, manifest["num_heads"], 0, manifest["head_dim"]), dtype=np.float32)
    names = [o.name for o in sess.get_outputs()]
    out = dict(zip(names, sess.run(None, feed)))
    if not first:
        out = {k: v for k, v in out.items() if not (k.startswith("present.") and ".encoder." in k)}
    return out


# ---- the command ----


def check_out_file(out: Path, force: bool) -> None:
    """check_out_file refuses an OUT.onnx that is a directory, or that
    exists unless force."""
    if out.is_dir():
        raise ExportError(f"{out} is a directory; pass the path of the .onnx file to write")
    if out.exists() and not force:
        raise ExportError(f"{out} exists; pass --force to replace it")


def pack(src: Path, *, atol: float = DEFAULT_ATOL) -> tuple[bytes, list[str]]:
    """pack returns the packed file of the model directory src, checked,
    and one report line per fact (sizes, initializers, the check)."""
    src = Path(src)
    manifest = read_manifest(src)
    parts = read_parts(src, manifest)
    packed = build(parts)
    meta = metadata(src, manifest, packed)
    for k in sorted(meta):
        e = packed.model.metadata_props.add()
        e.key, e.value = k, meta[k]
    import onnx

    try:
        onnx.checker.check_model(packed.model)
    except Exception as e:
        raise ExportError(f"the packed model fails onnx's checker ({e}); report it with the directory") from e
    size = packed.model.ByteSize()
    if size > MAX_BYTES:
        raise ExportError(f"the packed model would be {size / 2**30:.2f} GiB; one ONNX file holds under 2 GiB; keep the directory form")
    data = packed.model.SerializeToString()
    worst = check(src, manifest, data, json.loads(meta[KEY_PARTS]), packed.inputs, atol=atol)
    dir_files = {p.source for p in parts} | (set(meta) & {f.name for f in src.iterdir()})
    dir_size = sum((src / n).stat().st_size for n in dir_files)
    lines = [
        f"parts: {', '.join(f'{p.name} ({p.source}, {PART_INPUT}={p.value})' for p in parts)}",
        f"initializers: {packed.initializers} in the parts, {packed.unique} after deduplication by content",
        f"check: every part's outputs within {worst:.2g} of the directory's graphs (tolerance {atol:g})",
        f"size: {len(data) / 1e6:.2f} MB (the directory's graphs and files: {dir_size / 1e6:.2f} MB)",
    ]
    return data, lines


def pack_dir(src: Path, out: Path, *, force: bool = False, atol: float = DEFAULT_ATOL) -> list[str]:
    """pack_dir writes the packed file of src to out (through a temporary
    file beside it, renamed into place) and returns pack's report."""
    src, out = Path(src), Path(out)
    read_manifest(src)
    check_out_file(out, force)
    if out.resolve().parent == src.resolve():
        raise ExportError(f"{out} is inside the model directory {src}; write it elsewhere (a directory holds one model)")
    data, lines = pack(src, atol=atol)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    lines.append(f"wrote {out}")
    return lines
