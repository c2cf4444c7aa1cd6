"""inplace builds the decoder graphs of the "inplace" layout from a PyTorch
T5/mT5, BART/mBART or Marian model's weights, with onnx.helper (Optimum's
decoder graphs are not used):

    decoder_cross.onnx   encoder states -> every layer's cross-attention keys
                         and values, once per input
    decoder_step.onnx    one decoder step for every row: self-attention through
                         com.microsoft.DecoderMaskedMultiHeadAttention over a
                         [rows, heads, max_len, head_dim] buffer that is both
                         its past and its present (the runtime binds the two to
                         the same memory), beams read through a cache
                         indirection table; cross-attention through
                         com.microsoft.MultiHeadAttention over the keys and
                         values of the cross graph, shared by the rows of an
                         input

docs/model-format.md ("The inplace layout") documents the inputs and outputs
and the protocol; inplace_run.py runs it the way the Go host does.

Why these ops (ONNX Runtime 1.30, CPU provider, checked by running them):

- DecoderMaskedMultiHeadAttention takes the past of every row at its slots
  0..cache_length-1 and writes the new key and value at slot cache_length,
  in place when past and present share memory. Its past_sequence_length is
  one number for the batch, so rows that joined later start at a later slot
  (row_start) and the slots before it are masked; a row's position is
  cache_length - row_start. With beam_width = rows and a cache indirection
  table [1, rows, max_len] every row may read each slot from any row, which
  covers beams (no gather of the cache on a reorder) and rows of inputs at
  different steps alike. Its attention_bias works with the indirection when
  it is the same for every row ([1, heads, 1, total]); T5's relative position
  bias is: in slot space the distance between the new token and slot j is
  cache_length - j for every row. Packed QKV is refused on the CPU (the bias
  broadcast fails), so q, k and v come from one MatMul and a Split.
- Its cross-attention mode takes keys and values per row (batch = rows), so
  it would hold a copy per beam; MultiHeadAttention takes the rows of an input
  as its query sequence ([inputs, rows per input, hidden]) against keys and
  values in [inputs, heads, source, head_dim], so the beams of an input share
  one copy. The runtime falls back to a copy per row when the inputs of a
  batch have different numbers of rows (a group per row).
- The residual adds and norms are SkipLayerNormalization /
  SkipSimplifiedLayerNormalization (T5's RMS norm), the activations BiasGelu
  (erf GELU), FastGelu (tanh GELU), QuickGelu with alpha 1 (SiLU) or Relu.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ExportError

LAYOUT = "inplace"
CROSS = "decoder_cross.onnx"
STEP = "decoder_step.onnx"
OPSET = 17
IR_VERSION = 9
MASK_FILTER = -1e30  # added to masked scores: far below any real one, and finite

# Names of the step graph's inputs and outputs.
IN_IDS = "input_ids"
IN_ROW_START = "row_start"
IN_CACHE_LEN = "cache_length"
IN_BEAM_WIDTH = "beam_width"
IN_INDIRECTION = "cache_indirection"
IN_ENC_MASK = "encoder_attention_mask"
IN_HIDDEN = "encoder_hidden_states"
OUT_LOGITS = "logits"


def cross_name(layer: int, kv: str) -> str:
    """cross_name is the cross graph's output and the step graph's input of layer's cross-attention key or value."""
    return f"cross.{layer}.{kv}"


def past_name(layer: int, kv: str) -> str:
    """past_name is the step graph's self-attention cache input of layer."""
    return f"past.{layer}.{kv}"


def present_name(layer: int, kv: str) -> str:
    """present_name is the step graph's self-attention cache output of layer (the same memory as its past)."""
    return f"present.{layer}.{kv}"


@dataclass
class Spec:
    """Spec is what differs between the families' decoders, read from the PyTorch model."""

    family: str  # "t5" or "bart" (BART, mBART, Marian)
    layers: int
    heads: int
    head_dim: int
    hidden: int  # d_model
    vocab: int
    eps: float
    pre_norm: bool
    act: str  # relu, gelu, gelu_tanh, silu
    gated: bool = False  # T5 v1.1's gated FFN
    embed_ln: bool = False  # BART/mBART's layernorm_embedding
    final_ln: bool = False  # mBART's decoder layer_norm, T5's final_layer_norm
    max_positions: int = 0  # learned/sinusoidal positions (0: none, T5)
    scale_logits: float = 1.0  # T5 with tied embeddings: d_model ** -0.5
    attn_scale: float = 0.0  # 0: 1/sqrt(head_dim); T5: 1.0
    weights: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    @property
    def inner(self) -> int:
        """inner is heads * head_dim, the width of the attention projections."""
        return self.heads * self.head_dim


_ACTS = {"relu": "relu", "gelu": "gelu", "gelu_new": "gelu_tanh", "gelu_pytorch_tanh": "gelu_tanh",
         "gelu_fast": "gelu_tanh", "swish": "silu", "silu": "silu"}


def _f32(t) -> np.ndarray:
    return np.ascontiguousarray(t.detach().to("cpu").float().numpy())


def _act(name: str, what: str) -> str:
    act = _ACTS.get(name)
    if act is None:
        raise ExportError(f"the {what} activation {name!r} has no fused op in the inplace layout "
                          f"(supported: {', '.join(sorted(_ACTS))}); export with --layout optimum")
    return act


def t5_bias_table(attn, max_distance: int) -> np.ndarray:
    """t5_bias_table returns T5's decoder self-attention bias by distance: row d
    (0 <= d <= max_distance) is the bias per head between a query and a key d
    positions before it; farther keys share the last row (T5's buckets saturate
    at relative_attention_max_distance)."""
    import torch

    d = torch.arange(max_distance + 1)
    buckets = attn._relative_position_bucket(-d, bidirectional=False, num_buckets=attn.relative_attention_num_buckets,
                                             max_distance=attn.relative_attention_max_distance)
    far = attn._relative_position_bucket(-torch.tensor([max_distance, 4 * max_distance + 7]), bidirectional=False,
                                         num_buckets=attn.relative_attention_num_buckets,
                                         max_distance=attn.relative_attention_max_distance)
    if int(far[0]) != int(far[1]) or int(far[0]) != int(buckets[-1]):
        raise ExportError("T5's relative position buckets do not saturate at relative_attention_max_distance; "
                          "export with --layout optimum")
    return _f32(attn.relative_attention_bias.weight[buckets])  # [max_distance + 1, heads]


def spec_of(model: Any) -> Spec:
    """spec_of reads the decoder of a transformers T5/mT5, BART/mBART or Marian
    model into a Spec with its weights (MatMul weights as [in, out])."""
    cfg = model.config
    mt = cfg.model_type
    w: dict[str, np.ndarray] = {}
    if mt in ("t5", "mt5"):
        dec = model.decoder
        act = _act(cfg.dense_act_fn, "feed-forward")
        s = Spec(family="t5", layers=len(dec.block), heads=cfg.num_heads, head_dim=cfg.d_kv, hidden=cfg.d_model,
                 vocab=model.lm_head.out_features, eps=cfg.layer_norm_epsilon, pre_norm=True, act=act,
                 gated=bool(cfg.is_gated_act), final_ln=True, attn_scale=1.0,
                 scale_logits=cfg.d_model ** -0.5 if cfg.tie_word_embeddings else 1.0)
        w["embed"] = _f32(dec.embed_tokens.weight)
        w["lm_head"] = _f32(model.lm_head.weight).T.copy()
        attn0 = dec.block[0].layer[0].SelfAttention
        w["t5_bias"] = t5_bias_table(attn0, attn0.relative_attention_max_distance)
        for i, block in enumerate(dec.block):
            sa, ca, ff = block.layer[0], block.layer[1], block.layer[2]
            w[f"{i}.self_norm"] = _f32(sa.layer_norm.weight)
            w[f"{i}.qkv"] = np.concatenate([_f32(sa.SelfAttention.q.weight).T, _f32(sa.SelfAttention.k.weight).T,
                                            _f32(sa.SelfAttention.v.weight).T], axis=1)
            w[f"{i}.self_out"] = _f32(sa.SelfAttention.o.weight).T.copy()
            w[f"{i}.cross_norm"] = _f32(ca.layer_norm.weight)
            w[f"{i}.cross_q"] = _f32(ca.EncDecAttention.q.weight).T.copy()
            w[f"{i}.cross_k"] = _f32(ca.EncDecAttention.k.weight).T.copy()
            w[f"{i}.cross_v"] = _f32(ca.EncDecAttention.v.weight).T.copy()
            w[f"{i}.cross_out"] = _f32(ca.EncDecAttention.o.weight).T.copy()
            w[f"{i}.ffn_norm"] = _f32(ff.layer_norm.weight)
            d = ff.DenseReluDense
            if s.gated:
                w[f"{i}.fc1"] = np.concatenate([_f32(d.wi_0.weight).T, _f32(d.wi_1.weight).T], axis=1)
            else:
                w[f"{i}.fc1"] = _f32(d.wi.weight).T.copy()
            w[f"{i}.fc2"] = _f32(d.wo.weight).T.copy()
        w["final_norm"] = _f32(dec.final_layer_norm.weight)
        s.weights = w
        return s
    if mt not in ("bart", "mbart", "marian"):
        raise ExportError(f"the inplace layout has no decoder builder for model_type {mt!r}; export with --layout optimum")
    dec = model.get_decoder()
    heads = cfg.decoder_attention_heads
    act = _act(cfg.activation_function, "feed-forward")
    pre = mt == "mbart"
    s = Spec(family="bart", layers=len(dec.layers), heads=heads, head_dim=cfg.d_model // heads, hidden=cfg.d_model,
             vocab=model.lm_head.out_features, eps=dec.layers[0].self_attn_layer_norm.eps, pre_norm=pre, act=act,
             embed_ln=getattr(dec, "layernorm_embedding", None) is not None,
             final_ln=getattr(dec, "layer_norm", None) is not None)
    scale = getattr(dec.embed_tokens, "embed_scale", None)
    if scale is None:
        scale = getattr(dec, "embed_scale", 1.0)
    # The product the model computes at run time, rounded the same way.
    import torch

    with torch.no_grad():
        w["embed"] = _f32(dec.embed_tokens.weight * torch.tensor(float(scale), dtype=torch.float32))
    pos = _f32(dec.embed_positions.weight)
    offset = getattr(dec.embed_positions, "offset", 0)
    w["positions"] = pos[offset:].copy()
    s.max_positions = w["positions"].shape[0]
    w["lm_head"] = _f32(model.lm_head.weight).T.copy()
    flb = getattr(model, "final_logits_bias", None)
    w["logits_bias"] = _f32(flb).reshape(-1) if flb is not None else np.zeros(s.vocab, np.float32)
    if s.embed_ln:
        w["embed_ln.w"], w["embed_ln.b"] = _f32(dec.layernorm_embedding.weight), _f32(dec.layernorm_embedding.bias)
    if s.final_ln:
        w["final_norm"], w["final_norm.b"] = _f32(dec.layer_norm.weight), _f32(dec.layer_norm.bias)
    for i, layer in enumerate(dec.layers):
        sa, ca = layer.self_attn, layer.encoder_attn
        w[f"{i}.qkv"] = np.concatenate([_f32(sa.q_proj.weight).T, _f32(sa.k_proj.weight).T, _f32(sa.v_proj.weight).T], axis=1)
        w[f"{i}.qkv.b"] = np.concatenate([_f32(sa.q_proj.bias), _f32(sa.k_proj.bias), _f32(sa.v_proj.bias)])
        w[f"{i}.self_out"], w[f"{i}.self_out.b"] = _f32(sa.out_proj.weight).T.copy(), _f32(sa.out_proj.bias)
        w[f"{i}.self_norm"], w[f"{i}.self_norm.b"] = _f32(layer.self_attn_layer_norm.weight), _f32(layer.self_attn_layer_norm.bias)
        w[f"{i}.cross_q"], w[f"{i}.cross_q.b"] = _f32(ca.q_proj.weight).T.copy(), _f32(ca.q_proj.bias)
        w[f"{i}.cross_k"], w[f"{i}.cross_k.b"] = _f32(ca.k_proj.weight).T.copy(), _f32(ca.k_proj.bias)
        w[f"{i}.cross_v"], w[f"{i}.cross_v.b"] = _f32(ca.v_proj.weight).T.copy(), _f32(ca.v_proj.bias)
        w[f"{i}.cross_out"], w[f"{i}.cross_out.b"] = _f32(ca.out_proj.weight).T.copy(), _f32(ca.out_proj.bias)
        w[f"{i}.cross_norm"], w[f"{i}.cross_norm.b"] = (_f32(layer.encoder_attn_layer_norm.weight),
                                                        _f32(layer.encoder_attn_layer_norm.bias))
        w[f"{i}.fc1"], w[f"{i}.fc1.b"] = _f32(layer.fc1.weight).T.copy(), _f32(layer.fc1.bias)
        w[f"{i}.fc2"], w[f"{i}.fc2.b"] = _f32(layer.fc2.weight).T.copy(), _f32(layer.fc2.bias)
        w[f"{i}.ffn_norm"], w[f"{i}.ffn_norm.b"] = _f32(layer.final_layer_norm.weight), _f32(layer.final_layer_norm.bias)
    s.weights = w
    return s


class _Builder:
    """_Builder collects nodes and initializers with unique names."""

    def __init__(self, spec: Spec):
        self.spec = spec
        self.nodes = []
        self.inits = {}
        self.n = 0

    def init(self, name: str, value: np.ndarray) -> str:
        from onnx import numpy_helper

        if name not in self.inits:
            self.inits[name] = numpy_helper.from_array(np.ascontiguousarray(value), name)
        return name

    def w(self, key: str) -> str:
        return self.init("w." + key, self.spec.weights[key])

    def const(self, name: str, value) -> str:
        return self.init("c." + name, np.asarray(value))

    def op(self, op: str, inputs: list[str], n_out: int = 1, domain: str = "", name: str | None = None,
           outputs: list[str] | None = None, **attrs) -> list[str]:
        from onnx import helper

        self.n += 1
        tag = name or f"{op}_{self.n}"
        outs = outputs or [f"{tag}.out{k}" if n_out > 1 else f"{tag}.out" for k in range(n_out)]
        self.nodes.append(helper.make_node(op, inputs, outs, name=tag, domain=domain, **attrs))
        return outs

    def one(self, op: str, inputs: list[str], **kw) -> str:
        return self.op(op, inputs, **kw)[0]


def _model(b: _Builder, inputs, outputs, name: str):
    from onnx import TensorProto, helper

    # ONNX's shape inference does not know ONNX Runtime's contrib ops: give
    # their outputs (all float) a type, so that tools that run it on the
    # graph (the int8 quantizer) can follow the graph past them.
    known = {v.name for v in outputs}
    typed = [helper.make_tensor_value_info(o, TensorProto.FLOAT, None)
             for n in b.nodes if n.domain == "com.microsoft" or n.op_type == "SimplifiedLayerNormalization"
             for o in n.output if o and o not in known]
    graph = helper.make_graph(b.nodes, name, inputs, outputs, initializer=list(b.inits.values()), value_info=typed)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET), helper.make_opsetid("com.microsoft", 1)],
                             ir_version=IR_VERSION, producer_name="s2s_export.inplace")


def build_cross(spec: Spec):
    """build_cross returns the cross graph: encoder_hidden_states [inputs, S,
    hidden] -> cross.<i>.key / cross.<i>.value [inputs, heads, S, head_dim]."""
    from onnx import TensorProto as TP, helper

    b = _Builder(spec)
    N, H = spec.heads, spec.head_dim
    shape = b.const("bsnh", np.array([0, 0, N, H], np.int64))
    outs = []
    for i in range(spec.layers):
        for kv in ("key", "value"):
            key = f"{i}.cross_{kv[0]}"
            x = b.one("MatMul", [IN_HIDDEN, b.w(key)])
            if key + ".b" in spec.weights:
                x = b.one("Add", [x, b.w(key + ".b")])
            x = b.one("Reshape", [x, shape])
            b.op("Transpose", [x], perm=[0, 2, 1, 3], outputs=[cross_name(i, kv)])
            outs.append(helper.make_tensor_value_info(cross_name(i, kv), TP.FLOAT, ["inputs", N, "encoder_sequence_length", H]))
    ins = [helper.make_tensor_value_info(IN_HIDDEN, TP.FLOAT, ["inputs", "encoder_sequence_length", spec.hidden])]
    return _model(b, ins, outs, "s2s_decoder_cross")


def _norm(b: _Builder, x: str, key: str, skip: str | None = None, bias: str | None = None) -> tuple[str, str]:
    """_norm normalizes x (plus skip and bias, when given) with the norm key;
    it returns (normalized, sum) where sum is x + skip + bias (x without skip)."""
    s = b.spec
    ms = "com.microsoft"
    if s.family == "t5":
        if skip is None:
            return b.one("SimplifiedLayerNormalization", [x, b.w(key)], epsilon=s.eps, axis=-1), x
        ins = [x, skip, b.w(key)] + ([bias] if bias else [])
        out = b.op("SkipSimplifiedLayerNormalization", ins, n_out=4, domain=ms, epsilon=s.eps)
        return out[0], out[3]
    if skip is None:
        return b.one("LayerNormalization", [x, b.w(key), b.w(key + ".b")], epsilon=s.eps, axis=-1), x
    ins = [x, skip, b.w(key), b.w(key + ".b")] + ([bias] if bias else [])
    out = b.op("SkipLayerNormalization", ins, n_out=4, domain=ms, epsilon=s.eps)
    return out[0], out[3]


def _bias(b: _Builder, key: str) -> str | None:
    return b.w(key) if key in b.spec.weights else None


def build_step(spec: Spec):
    """build_step returns the step graph (module docstring; docs/model-format.md)."""
    from onnx import TensorProto as TP, helper

    s = spec
    b = _Builder(s)
    ms = "com.microsoft"
    N, H, E, I = s.heads, s.head_dim, s.hidden, s.inner

    # Per step, shared by the layers: the slots, the self-attention mask,
    # each row's position, the rows-per-input shape of the cross-attention.
    total = b.one("Add", [IN_CACHE_LEN, b.const("one_i32", np.array([1], np.int32))])
    slots = b.one("Range", [b.const("zero_s", np.array(0, np.int32)), b.one("Squeeze", [total, b.const("ax0", np.array([0], np.int64))]),
                            b.const("one_s", np.array(1, np.int32))])
    start = b.one("Unsqueeze", [IN_ROW_START, b.const("ax1", np.array([1], np.int64))])  # [rows, 1]
    live = b.one("GreaterOrEqual", [b.one("Unsqueeze", [slots, b.const("ax0", np.array([0], np.int64))]), start])
    self_mask = b.one("Cast", [live], to=TP.INT32)  # [rows, total]
    groups = b.one("Slice", [b.one("Shape", [IN_ENC_MASK]), b.const("s0", np.array([0], np.int64)), b.const("s1", np.array([1], np.int64))])
    grouped = b.one("Concat", [groups, b.const("g_rest", np.array([-1, I], np.int64))], axis=0)  # [inputs, -1, inner]
    rowwise = b.const("r_shape", np.array([-1, 1, I], np.int64))

    ids = IN_IDS
    x = b.one("Gather", [b.w("embed"), ids])  # [rows, 1, E]
    attn_bias = None
    if s.family == "t5":
        far = s.weights["t5_bias"].shape[0] - 1
        dist = b.one("Min", [b.one("Sub", [IN_CACHE_LEN, slots]), b.const("far", np.array([far], np.int32))])  # [total]
        bias = b.one("Gather", [b.w("t5_bias"), dist])  # [total, heads]
        attn_bias = b.one("Reshape", [b.one("Transpose", [bias], perm=[1, 0]), b.const("bias_shape", np.array([1, N, 1, -1], np.int64))])
        h, x = _norm(b, x, "0.self_norm")
    else:
        pos = b.one("Unsqueeze", [b.one("Sub", [IN_CACHE_LEN, IN_ROW_START]), b.const("ax1", np.array([1], np.int64))])  # [rows, 1]
        p = b.one("Gather", [b.w("positions"), pos])
        if s.embed_ln:
            x, _ = _norm_ln(b, x, p, "embed_ln")
        else:
            x = b.one("Add", [x, p])
        h = b.one("LayerNormalization", [x, b.w("0.self_norm"), b.w("0.self_norm.b")], epsilon=s.eps, axis=-1) if s.pre_norm else x

    attrs = dict(num_heads=N, mask_filter_value=MASK_FILTER)
    if s.attn_scale:
        attrs["scale"] = float(s.attn_scale)
    for i in range(s.layers):
        # Self-attention, the cache written in place.
        qkv = b.one("MatMul", [h, b.w(f"{i}.qkv")])
        q, k, v = b.op("Split", [qkv, b.const("qkv_split", np.array([I, I, I], np.int64))], n_out=3, axis=-1)
        dm_in = [q, k, v, self_mask, attn_bias or "", past_name(i, "key"), past_name(i, "value"), IN_CACHE_LEN,
                 IN_BEAM_WIDTH, IN_INDIRECTION]
        if f"{i}.qkv.b" in s.weights:
            dm_in.append(b.w(f"{i}.qkv.b"))
        a = b.op("DecoderMaskedMultiHeadAttention", dm_in, domain=ms, name=f"self_attn_{i}",
                 outputs=[f"self_attn_{i}.out", present_name(i, "key"), present_name(i, "value")],
                 past_present_share_buffer=1, **attrs)[0]
        a = b.one("MatMul", [a, b.w(f"{i}.self_out")])
        h, x = _residual(b, a, x, f"{i}.self_out.b", f"{i}.self_norm", f"{i}.cross_norm")

        # Cross-attention over the cross graph's keys and values.
        q = b.one("Reshape", [b.one("MatMul", [h, b.w(f"{i}.cross_q")]), grouped])
        mha_in = [q, cross_name(i, "key"), cross_name(i, "value")]
        if f"{i}.cross_q.b" in s.weights:
            mha_in.append(b.init(f"w.{i}.cross_q.b3", np.concatenate([s.weights[f"{i}.cross_q.b"], np.zeros(2 * I, np.float32)])))
        else:
            mha_in.append("")
        mha_in.append(IN_ENC_MASK)
        c = b.one("MultiHeadAttention", mha_in, domain=ms, name=f"cross_attn_{i}", **attrs)
        c = b.one("MatMul", [b.one("Reshape", [c, rowwise]), b.w(f"{i}.cross_out")])
        h, x = _residual(b, c, x, f"{i}.cross_out.b", f"{i}.cross_norm", f"{i}.ffn_norm")

        # Feed-forward.
        f = b.one("MatMul", [h, b.w(f"{i}.fc1")])
        fb = _bias(b, f"{i}.fc1.b")
        if s.gated:
            half = s.weights[f"{i}.fc1"].shape[1] // 2
            g, lin = b.op("Split", [f, b.const("ffn_split", np.array([half, half], np.int64))], n_out=2, axis=-1)
            f = b.one("Mul", [_activate(b, g, None), lin])
        else:
            f = _activate(b, f, fb)
        f = b.one("MatMul", [f, b.w(f"{i}.fc2")])
        nxt = f"{i + 1}.self_norm" if i + 1 < s.layers else ("final_norm" if s.final_ln else None)
        h, x = _residual(b, f, x, f"{i}.fc2.b", f"{i}.ffn_norm", nxt)

    if s.scale_logits != 1.0:
        h = b.one("Mul", [h, b.const("logit_scale", np.array(s.scale_logits, np.float32))])
    logits = b.one("MatMul", [h, b.w("lm_head")])
    if "logits_bias" in s.weights:
        b.op("Add", [logits, b.w("logits_bias")], outputs=[OUT_LOGITS])
    else:
        b.op("Identity", [logits], outputs=[OUT_LOGITS])

    f32, i32, i64 = TP.FLOAT, TP.INT32, TP.INT64
    cache = ["rows", N, "max_length", H]
    ins = [
        helper.make_tensor_value_info(IN_IDS, i64, ["rows", 1]),
        helper.make_tensor_value_info(IN_ROW_START, i32, ["rows"]),
        helper.make_tensor_value_info(IN_CACHE_LEN, i32, [1]),
        helper.make_tensor_value_info(IN_BEAM_WIDTH, i32, [1]),
        helper.make_tensor_value_info(IN_INDIRECTION, i32, [1, "rows", "max_length"]),
        helper.make_tensor_value_info(IN_ENC_MASK, i32, ["inputs", "encoder_sequence_length"]),
    ]
    for i in range(s.layers):
        for kv in ("key", "value"):
            ins.append(helper.make_tensor_value_info(cross_name(i, kv), f32, ["inputs", N, "encoder_sequence_length", H]))
    for i in range(s.layers):
        for kv in ("key", "value"):
            ins.append(helper.make_tensor_value_info(past_name(i, kv), f32, cache))
    outs = [helper.make_tensor_value_info(OUT_LOGITS, f32, ["rows", 1, s.vocab])]
    for i in range(s.layers):
        for kv in ("key", "value"):
            outs.append(helper.make_tensor_value_info(present_name(i, kv), f32, cache))
    return _model(b, ins, outs, "s2s_decoder_step")


def _norm_ln(b: _Builder, x: str, skip: str, key: str) -> tuple[str, str]:
    out = b.op("SkipLayerNormalization", [x, skip, b.w(key + ".w"), b.w(key + ".b")], n_out=4, domain="com.microsoft",
               epsilon=b.spec.eps)
    return out[0], out[3]


def _residual(b: _Builder, y: str, x: str, bias_key: str, this_norm: str, next_norm: str | None) -> tuple[str, str]:
    """_residual adds the sublayer output y (plus its bias) to the residual x.
    Post-norm (BART, Marian): the sum normalized by this_norm is both the next
    input and the next residual. Pre-norm (T5, mBART): the sum is the next
    residual, normalized by next_norm (the next sublayer's norm, or the final
    one) for the next input; with no next norm the sum itself."""
    bias = _bias(b, bias_key)
    if not b.spec.pre_norm:
        out, _ = _norm(b, y, this_norm, skip=x, bias=bias)
        return out, out
    if next_norm is None:
        t = b.one("Add", [y, x])
        return (b.one("Add", [t, bias]) if bias else t), None
    return _norm(b, y, next_norm, skip=x, bias=bias)


def _activate(b: _Builder, x: str, bias: str | None) -> str:
    """_activate applies the FFN activation to x + bias."""
    ms = "com.microsoft"
    act = b.spec.act
    if act == "gelu":
        return b.one("BiasGelu", [x, bias], domain=ms) if bias else b.one("Gelu", [x], domain=ms)
    if act == "gelu_tanh":
        return b.one("FastGelu", [x] + ([bias] if bias else []), domain=ms)
    if bias:
        x = b.one("Add", [x, bias])
    if act == "silu":
        return b.one("QuickGelu", [x], domain=ms, alpha=1.0)
    return b.one("Relu", [x])


def save(model, path: Path) -> None:
    """save writes an ONNX model, its weights beside it (path + "_data") when over 2 GB."""
    import onnx

    size = sum(t.ByteSize() for t in model.graph.initializer)
    if size > 1_800_000_000:
        onnx.save_model(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                        location=path.name + "_data", size_threshold=1024)
    else:
        onnx.save_model(model, str(path))


def export_graphs(model: Any, out: Path) -> Spec:
    """export_graphs writes decoder_cross.onnx and decoder_step.onnx of model into out and returns the Spec."""
    spec = spec_of(model)
    # No onnx.checker: it does not know ONNX Runtime's SimplifiedLayerNormalization
    # (registered in the default domain); the self-check loads and runs both graphs.
    for name, build in ((CROSS, build_cross), (STEP, build_step)):
        save(build(spec), out / name)
    return spec


def manifest_fields(spec: Spec) -> dict[str, Any]:
    """manifest_fields returns what s2s.json adds for the inplace layout."""
    return {"layout": LAYOUT, "max_position_embeddings": spec.max_positions}
