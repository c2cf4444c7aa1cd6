"""test_quantize quantizes copies of the tiny testdata models and the shipped
G2P model with `s2s_export quantize` and checks that the graphs load and run
in onnxruntime, that their weights are quantized (and the embeddings not),
that every other file is copied, that the files shrink, and the refusals.
It also checks the Gemm rewrite is exact, the agreement measure, and
`hf --quantize`.
"""

from __future__ import annotations

import json
import subprocess
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from s2s_export import agreement, cli, quantize  # noqa: E402
from s2s_export.errors import ExportError  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
TESTDATA = REPO / "testdata"
G2P = REPO / "models" / "g2p-en"
FAMILIES = ("t5", "bart", "marian")


def _session(path: Path):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.log_severity_level = 3
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def _float_const_matmuls(path: Path) -> int:
    """_float_const_matmuls counts MatMul nodes (If branches included) whose B is a float initializer."""
    import onnx

    model = onnx.load(str(path))
    count = 0

    def walk(g, outer: set[str]) -> None:
        nonlocal count
        inits = outer | {t.name for t in g.initializer}
        for n in g.node:
            if n.op_type == "MatMul" and n.input[1] in inits:
                count += 1
            for a in n.attribute:
                if a.type == onnx.AttributeProto.GRAPH:
                    walk(a.g, inits)

    walk(model.graph, set())
    return count


@pytest.fixture(scope="module")
def quantized(tmp_path_factory):
    """quantized returns a function family -> (float32 copy, int8 dir), quantizing each once per module."""
    done: dict[str, tuple[Path, Path]] = {}

    def get(family: str) -> tuple[Path, Path]:
        if family not in done:
            root = tmp_path_factory.mktemp(family)
            src = root / "fp32"
            shutil.copytree(G2P if family == "g2p" else TESTDATA / f"{family}-tiny", src)
            out = root / "int8"
            lines = quantize.quantize_dir(src, out)
            assert lines[-1].startswith(f"wrote {out}")
            done[family] = (src, out)
        return done[family]

    return get


@pytest.mark.parametrize("family", FAMILIES + ("g2p",))
def test_files_are_copied_and_graphs_shrink(quantized, family):
    src, out = quantized(family)
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in src.iterdir())
    before = after = 0
    for f in src.iterdir():
        if f.suffix == ".onnx":
            before, after = before + f.stat().st_size, after + (out / f.name).stat().st_size
            assert (out / f.name).stat().st_size < f.stat().st_size, f.name
        elif f.name != "s2s.json":
            assert (out / f.name).read_bytes() == f.read_bytes(), f.name
    # The tiny merged decoder is mostly nodes, not weights; all together they shrink.
    assert after < 0.9 * before, (after, before)
    m, q = json.loads((src / "s2s.json").read_text()), json.loads((out / "s2s.json").read_text())
    info = q.pop("quantization")
    assert q == m
    assert info["weight_type"] == "int8" and info["per_channel"] is False and "MatMul" in info["op_types"]


@pytest.mark.parametrize("family", FAMILIES)
def test_transformer_graphs_are_quantized_and_run(quantized, family):
    src, out = quantized(family)
    for g in sorted(out.glob("*.onnx")):
        ops = quantize.op_counts(g)
        assert ops.get("MatMulInteger", 0) > 0 and ops.get("DynamicQuantizeLinear", 0) > 0, (g.name, ops)
        assert _float_const_matmuls(g) == 0, f"{g.name} still has float MatMuls with constant weights"
        # The embeddings stay float32: no quantized Gather by default.
        assert "DequantizeLinear" not in ops, (g.name, ops)
        _session(g)
    # The encoder's states move, but only by quantization noise.
    m = json.loads((src / "s2s.json").read_text())
    ids = np.array([[5, 9, 13, 21, m["eos_token_id"][0]]], dtype=np.int64)
    feeds = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
    want = _session(src / "encoder_model.onnx").run(None, feeds)[0]
    got = _session(out / "encoder_model.onnx").run(None, feeds)[0]
    assert got.shape == want.shape and np.isfinite(got).all()
    rel = np.linalg.norm(got - want) / np.linalg.norm(want)
    assert 0 < rel < 0.2, rel


def test_g2p_lstm_and_gemm_are_quantized_and_decode_alike(quantized):
    src, out = quantized("g2p")
    enc, dec = quantize.op_counts(out / "encoder.onnx"), quantize.op_counts(out / "decoder.onnx")
    assert enc.get("DynamicQuantizeLSTM") == 2 and "LSTM" not in enc, enc
    assert "Gemm" not in dec and dec.get("MatMulInteger", 0) >= 3, dec
    # Greedy decode of a few words through onnxruntime: the int8 model gives
    # the float32 model's phonemes (the trained model has clear margins).
    m = json.loads((src / "s2s.json").read_text())
    from tokenizers import Tokenizer

    words = ["hello", "world", "pronunciation", "quantize"]
    enc = [Tokenizer.from_file(str(src / "tokenizer.json")).encode(w).ids for w in words]
    ids = np.full((len(words), max(map(len, enc))), m["pad_token_id"], dtype=np.int64)
    mask = np.zeros_like(ids)
    for r, e in enumerate(enc):
        ids[r, : len(e)], mask[r, : len(e)] = e, 1

    def decode(d: Path) -> list[list[int]]:
        e, s = _session(d / "encoder.onnx"), _session(d / "decoder.onnx")
        enc_out = dict(zip([o.name for o in e.get_outputs()], e.run(None, {"input_ids": ids, "attention_mask": mask})))
        state = {st["input"]: enc_out[st["init"]] for st in m["states"]}
        cur = np.full((len(words), 1), m["decoder_start_token_id"], dtype=np.int64)
        names = [o.name for o in s.get_outputs()]
        toks = []
        for _ in range(12):
            res = dict(zip(names, s.run(None, {"input_ids": cur, **state})))
            cur = res["logits"][:, -1].argmax(-1)[:, None].astype(np.int64)
            toks.append(cur[:, 0])
            for st in m["states"]:
                if st.get("output"):
                    state[st["input"]] = res[st["output"]]
        eos = m["eos_token_id"][0]
        rows = np.stack(toks, 1).tolist()
        return [r[: r.index(eos) + 1] if eos in r else r for r in rows]

    want = decode(src)
    assert all(len(r) > 2 for r in want)
    assert decode(out) == want


def test_gemm_rewrite_is_exact():
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    b, c = rng.standard_normal((5, 3)).astype(np.float32), rng.standard_normal(5).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("Gemm", ["x", "B", "C"], ["y"], name="g", transB=1, alpha=0.5, beta=2.0)], "t",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 5])],
        [numpy_helper.from_array(b, "B"), numpy_helper.from_array(c, "C")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    assert quantize.gemm_to_matmul(model) == 1
    assert [n.op_type for n in model.graph.node] == ["MatMul", "Add"]
    onnx.checker.check_model(model)
    import onnxruntime as ort

    x = rng.standard_normal((2, 3)).astype(np.float32)
    got = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    np.testing.assert_allclose(got, 0.5 * x @ b.T + 2.0 * c, rtol=1e-6, atol=1e-6)


def test_weight_type_and_per_channel_are_applied(tmp_path):
    import onnx

    src = tmp_path / "fp32"
    shutil.copytree(TESTDATA / "t5-tiny", src)
    quantize.quantize_dir(src, tmp_path / "u8", weight_type="uint8", per_channel=True, op_types=("MatMul",))
    model = onnx.load(str(tmp_path / "u8" / "decoder_with_past_model.onnx"))
    zps = [t for t in model.graph.initializer if t.name.endswith("_zero_point")]
    assert zps and all(t.data_type == onnx.TensorProto.UINT8 for t in zps)
    assert any(len(t.dims) == 1 and t.dims[0] > 1 for t in zps), "per-channel: one zero point per column"
    info = json.loads((tmp_path / "u8" / "s2s.json").read_text())["quantization"]
    assert info["weight_type"] == "uint8" and info["per_channel"] is True and info["op_types"] == ["MatMul"]


def test_optimum_dir_without_manifest(tmp_path):
    src = tmp_path / "optimum"
    shutil.copytree(TESTDATA / "bart-tiny", src)
    (src / "s2s.json").unlink()
    quantize.quantize_dir(src, tmp_path / "int8")
    assert not (tmp_path / "int8" / "s2s.json").exists()
    assert (tmp_path / "int8" / "config.json").read_bytes() == (src / "config.json").read_bytes()


def test_refusals(quantized, tmp_path, capsys):
    src, out = quantized("t5")
    with pytest.raises(ExportError, match="not a directory"):
        quantize.quantize_dir(tmp_path / "missing", tmp_path / "o")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ExportError, match="no .onnx graphs"):
        quantize.quantize_dir(tmp_path / "empty", tmp_path / "o")
    with pytest.raises(ExportError, match="pass --force"):
        quantize.quantize_dir(src, out)
    with pytest.raises(ExportError, match="refusing to write"):
        quantize.quantize_dir(src, src, force=True)
    with pytest.raises(ExportError, match="already quantized"):
        quantize.quantize_dir(out, tmp_path / "twice")
    assert not (tmp_path / "o").exists() and not (tmp_path / "twice").exists()
    # --force replaces.
    before = (out / "encoder_model.onnx").stat().st_mtime_ns
    quantize.quantize_dir(src, out, force=True)
    assert (out / "encoder_model.onnx").stat().st_mtime_ns != before
    # Through the command line: one line on stderr, status 1 (argparse: 2).
    assert cli.main(["quantize", str(src), str(tmp_path / "o"), "--op-types", "MatMul,Softmax"]) == 1
    assert "unknown operator Softmax" in capsys.readouterr().err
    assert cli.main(["quantize", str(src), str(tmp_path / "o"), "--op-types", ","]) == 1
    assert "--op-types is empty" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        cli.main(["quantize", str(src), str(tmp_path / "o"), "--weight-type", "int4"])
    assert e.value.code == 2
    assert "invalid choice: 'int4'" in capsys.readouterr().err


def test_agreement_measure():
    assert agreement.agreement([[1, 2, 3], [4, 5, 6]], [[1, 2, 3], [4, 9, 6]]) == (0.5, pytest.approx((1 + 1 / 3) / 2))
    assert agreement.agreement([[1, 2]], [[1, 2, 3, 4]]) == (0.0, 0.5)
    with pytest.raises(ExportError, match="same, non-zero count"):
        agreement.agreement([[1]], [])


def test_agreement_reads_inputs(tmp_path):
    (tmp_path / "a.jsonl").write_text('{"input": "x y"}\n{"input": "two\\nlines"}\n{"input": "x y"}\n')
    (tmp_path / "b.tsv").write_text("word\tW ER D\nother\tAH\n")
    (tmp_path / "c.txt").write_text("plain line\n\n")
    got, skipped = agreement.read_inputs([tmp_path / "a.jsonl", tmp_path / "b.tsv", tmp_path / "c.txt"])
    assert got == ["x y", "word", "other", "plain line", ""] and skipped == 1
    (tmp_path / "bad.jsonl").write_text("[1]\n")
    with pytest.raises(ExportError, match="bad.jsonl:1"):
        agreement.read_inputs([tmp_path / "bad.jsonl"])


def test_agreement_through_gen(quantized, capsys, tmp_path):
    # gen built here, as a user would (never skipped: the Go toolchain is a
    # requirement of the repository).
    gen = tmp_path / "gen"
    subprocess.run(["go", "build", "-o", str(gen), "./cmd/gen"], check=True, cwd=agreement.ROOT)
    src, out = quantized("g2p")
    args = ["--inputs", str(src / "test.tsv"), "--limit", "40", "--gen", str(gen)]
    assert cli.main(["agreement", str(src), str(src), *args]) == 0
    assert "equal sequences 100.0%, mean equal prefix 100.0%" in capsys.readouterr().out
    assert cli.main(["agreement", str(src), str(out), *args]) == 0
    text = capsys.readouterr().out
    assert "inputs 40" in text and "equal sequences" in text


def test_hf_quantize_exports_int8(tmp_path, capsys):
    from test_hf import make_checkpoint

    ckpt = make_checkpoint("t5", tmp_path / "ckpt")
    out = tmp_path / "model"
    assert cli.main(["hf", str(ckpt), str(out), "--quantize", "int8"]) == 0
    text = capsys.readouterr().out
    assert "self-check" in text and "int8 self-check" in text and "int8 weights" in text
    assert json.loads((out / "s2s.json").read_text())["quantization"]["weight_type"] == "int8"
    for g in out.glob("*.onnx"):
        assert quantize.op_counts(g).get("MatMulInteger", 0) > 0, g.name
    assert not any(p.name.startswith(".model.") for p in tmp_path.iterdir()), "staging directory left behind"
