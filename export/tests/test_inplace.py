"""test_inplace exports tiny random-weight T5, mT5, BART, mBART and Marian
checkpoints in the inplace layout (`s2s_export hf --layout inplace`: our own
decoder graphs, inplace.py) and checks the directory, the manifest, the
graphs' ops, the self-check (inplace_run's protocol against PyTorch: padding,
beams, rows joining and leaving at different steps, the cache moved when
full) and that the self-check catches a corrupted graph.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from s2s_export import check, graphs, hf, inplace, inplace_run  # noqa: E402
from s2s_export.errors import CheckError, ExportError  # noqa: E402

import test_hf  # noqa: E402  (the tiny checkpoints)

FILES = {"encoder_model.onnx", "decoder_cross.onnx", "decoder_step.onnx", "tokenizer.json", "config.json",
         "generation_config.json", "s2s.json"}
FAMILIES = ["t5", "mt5", "bart", "mbart"]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """exported returns a function family -> (checkpoint, model dir), exporting each family once per module."""
    done: dict[str, tuple[Path, Path]] = {}

    def get(family: str) -> tuple[Path, Path]:
        if family not in done:
            root = tmp_path_factory.mktemp(family)
            src = test_hf.make_checkpoint(family, root / "ckpt")
            out = root / "model"
            hf.export(src, out, layout=inplace.LAYOUT, log=lambda s: None)
            done[family] = (src, out)
        return done[family]

    return get


def _ops(path: Path) -> list[str]:
    import onnx

    return [n.op_type for n in onnx.load(str(path), load_external_data=False).graph.node]


@pytest.mark.parametrize("family", FAMILIES)
def test_export_writes_the_inplace_directory(exported, family):
    src, out = exported(family)
    assert {p.name for p in out.iterdir()} == FILES
    m = json.loads((out / "s2s.json").read_text())
    assert m["layout"] == "inplace"
    assert m["files"] == {"encoder": "encoder_model.onnx", "decoder_cross": "decoder_cross.onnx",
                          "decoder_step": "decoder_step.onnx"}
    L = test_hf.DEC_LAYERS
    assert m["num_layers"] == L
    t5 = family in ("t5", "mt5")
    assert m["head_dim"] == (test_hf.T5_D_KV if t5 else test_hf.D_MODEL // test_hf.HEADS)
    assert m["max_position_embeddings"] == (0 if t5 else 64)
    cache = [f"{p}.{i}.{kv}" for p in ("cross", "past") for i in range(L) for kv in ("key", "value")]
    assert m["decoder_inputs"] == ["input_ids", "row_start", "cache_length", "beam_width", "cache_indirection",
                                   "encoder_attention_mask", *cache]
    assert m["decoder_outputs"] == ["logits", *[f"present.{i}.{kv}" for i in range(L) for kv in ("key", "value")]]


@pytest.mark.parametrize("family", ["t5", "bart"])
def test_graph_signatures_are_as_documented(exported, family):
    _, out = exported(family)
    m = json.loads((out / "s2s.json").read_text())
    H, D, E, V = m["num_heads"], m["head_dim"], m["hidden_size"], m["vocab_size"]
    step = {v.name: (v.dtype, v.shape) for v in graphs.signature(out / inplace.STEP).inputs}
    assert step["input_ids"] == ("INT64", ("rows", 1))
    assert step["row_start"] == ("INT32", ("rows",))
    assert step["cache_length"] == step["beam_width"] == ("INT32", (1,))
    assert step["cache_indirection"] == ("INT32", (1, "rows", "max_length"))
    assert step["encoder_attention_mask"] == ("INT32", ("inputs", "encoder_sequence_length"))
    assert step["cross.0.key"] == ("FLOAT", ("inputs", H, "encoder_sequence_length", D))
    assert step["past.1.value"] == ("FLOAT", ("rows", H, "max_length", D))
    outs = {v.name: (v.dtype, v.shape) for v in graphs.signature(out / inplace.STEP).outputs}
    assert outs["logits"] == ("FLOAT", ("rows", 1, V))
    assert outs["present.1.value"] == step["past.1.value"]
    cross = graphs.signature(out / inplace.CROSS)
    assert {v.name: v.shape for v in cross.inputs} == {"encoder_hidden_states": ("inputs", "encoder_sequence_length", E)}
    assert cross.output_names() == [f"cross.{i}.{kv}" for i in range(m["num_layers"]) for kv in ("key", "value")]


@pytest.mark.parametrize("family", FAMILIES)
def test_step_graph_is_one_fused_attention_per_layer(exported, family):
    """No If, no cache Concat: one DecoderMaskedMultiHeadAttention and one
    MultiHeadAttention per layer, and a few small nodes around them."""
    _, out = exported(family)
    ops = _ops(out / inplace.STEP)
    L = test_hf.DEC_LAYERS
    assert ops.count("DecoderMaskedMultiHeadAttention") == L
    assert ops.count("MultiHeadAttention") == L
    assert "If" not in ops and "Concat" in ops and ops.count("Concat") == 1  # the grouped query shape only
    assert len(ops) <= 17 * L + 20, ops  # T5 v1.1 (mT5): two more for the gated FFN


@pytest.mark.parametrize("family", FAMILIES)
def test_self_check_covers_every_row_and_step(exported, family):
    src, out = exported(family)
    report = check.check(src, out)
    steps = {d.step for d in report.diffs if d.graph == inplace.STEP}
    assert steps == set(range(7))
    names = " ".join(d.output for d in report.diffs)
    for what in ("input A", "input B", "input C", "input D"):
        assert what in names
    assert all(d.ok() for d in report.diffs), report.summary()
    assert "rows at different steps" in report.summary()


def test_marian_inplace(tmp_path):
    src = tmp_path / "ckpt"
    shutil.copytree(_marian_ckpt(tmp_path), src)
    out = tmp_path / "model"
    hf.export(src, out, layout=inplace.LAYOUT, log=lambda s: None)
    assert {p.name for p in out.iterdir()} == FILES | {"tokenizer_target.json"}
    assert "QuickGelu" in _ops(out / inplace.STEP)  # Marian's swish
    report = check.check(src, out)
    assert all(d.ok() for d in report.diffs)


def _marian_ckpt(tmp_path: Path) -> Path:
    import torch
    from transformers import MarianConfig, MarianMTModel

    tok = test_hf._marian_tokenizer()
    torch.manual_seed(0)
    pad = tok.pad_token_id
    config = MarianConfig(
        vocab_size=len(tok), d_model=test_hf.D_MODEL, encoder_layers=1, decoder_layers=test_hf.DEC_LAYERS,
        encoder_attention_heads=test_hf.HEADS, decoder_attention_heads=test_hf.HEADS, encoder_ffn_dim=test_hf.FFN,
        decoder_ffn_dim=test_hf.FFN, max_position_embeddings=64, pad_token_id=pad, eos_token_id=0,
        decoder_start_token_id=pad, activation_function="swish",  # as opus-mt
    )
    path = tmp_path / "marian-src"
    MarianMTModel(config).eval().save_pretrained(str(path))
    tok.save_pretrained(str(path))
    return path


def test_self_check_fails_on_a_corrupted_step_graph(exported, tmp_path):
    src, out = exported("bart")
    bad = tmp_path / "bad"
    shutil.copytree(out, bad)
    test_hf._perturb(bad / inplace.STEP)
    with pytest.raises(CheckError) as e:
        check.check(src, bad)
    assert "decoder_step.onnx step 0" in str(e.value) and "max abs diff" in str(e.value)


def test_self_check_fails_on_a_corrupted_cross_graph(exported, tmp_path):
    src, out = exported("t5")
    bad = tmp_path / "bad"
    shutil.copytree(out, bad)
    test_hf._perturb(bad / inplace.CROSS)
    with pytest.raises(CheckError, match="decoder_step.onnx step 0"):
        check.check(src, bad)


def test_reorder_moves_only_rows_that_must_move(exported):
    """A beam reorder rewrites the indirection table and copies nothing; rows
    leaving copy only the rows that sit past the new row count."""
    _, out = exported("bart")
    r = inplace_run.Runner(out, max_len=8)
    ids = np.array([[5, 6, 7, 2], [8, 9, 2, 1], [10, 2, 1, 1]], np.int64)
    r.add(ids, (ids != 1).astype(np.int64), 2)  # 6 rows, 2 per input
    for t in range(3):
        r.step(np.full(r.rows, 2 if t == 0 else 5 + t, np.int64))
    assert r.reorder([1, 1, 2, 2, 5, 4]) == 0
    assert r.ci[0, :3].tolist() == [1, 1, 1] and r.ci[4, :3].tolist() == [5, 5, 5]
    # Input 0 (rows 0, 1) leaves: rows 2..5 become 0..3; at each of the 3
    # slots buffer rows 2 and 3 stay, 4 and 5 move into the free 0 and 1.
    assert r.reorder([2, 3, 4, 5]) == 6
    assert r.ci[:, :3].tolist() == [[2, 2, 2], [2, 2, 2], [1, 1, 1], [0, 0, 0]]
    r.step(np.full(r.rows, 9, np.int64))


def test_unsupported_activation_is_refused():
    with pytest.raises(ExportError, match="has no fused op in the inplace layout.*--layout optimum"):
        inplace._act("mish", "feed-forward")
