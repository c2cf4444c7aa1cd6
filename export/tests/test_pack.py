"""test_pack packs model directories into one ONNX file with `s2s_export pack`
and checks the file: its metadata schema, the weights stored once, the parts
gated by s2s_part giving the directory's outputs in onnxruntime, the Go host
(`gen -json`) giving the same outputs on the file as on the directory (the
three tiny families, the G2P model, int8 copies, an optimum-cli directory
without s2s.json, a merged decoder alone), the committed packed files being
what pack makes of their directories, `hf --single-file`, and the refusals.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from s2s_export import cli, hf, pack, quantize  # noqa: E402
from s2s_export.errors import CheckError, ExportError  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
TESTDATA = REPO / "testdata"
G2P = REPO / "models" / "g2p-en"
FAMILIES = ("t5", "bart", "marian")


@pytest.fixture(scope="module")
def gen(tmp_path_factory):
    """gen builds the Go host's command (the tests compare its outputs)."""
    out = tmp_path_factory.mktemp("bin") / "gen"
    subprocess.run(["go", "build", "-o", str(out), "./cmd/gen"], check=True, cwd=REPO)
    return out


def _gen(gen: Path, model: Path, texts: list[str], *args: str) -> list[dict]:
    proc = subprocess.run([str(gen), "-model", str(model), "-json", "-decoder-graphs", "split", *args],
                          input="".join(t + "\n" for t in texts), capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    return [json.loads(line) for line in proc.stdout.splitlines()]


def _same(got: list[dict], want: list[dict]) -> None:
    """_same compares gen -json lines: tokens and text equal, scores within 1e-5."""
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert (g["output"], g["tokens"], g["finish_reason"]) == (w["output"], w["tokens"], w["finish_reason"])
        assert abs(g["score"] - w["score"]) <= 1e-5


TEXTS = ["hello", "A fool and his money are soon parted.", "pronunciation", "xylophones and o'brien"]


def _meta(path: Path) -> dict[str, str]:
    import onnx

    return {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}


# ---- the format ----


@pytest.mark.parametrize("family", FAMILIES)
def test_committed_files_are_what_pack_makes(family, tmp_path):
    """testdata/<family>-tiny.onnx is exactly pack's output for its directory
    (pack is deterministic; remake with testdata/make_testdata.sh pack)."""
    out = tmp_path / "m.onnx"
    pack.pack_dir(TESTDATA / f"{family}-tiny", out)
    assert out.read_bytes() == (TESTDATA / f"{family}-tiny.onnx").read_bytes(), \
        f"testdata/{family}-tiny.onnx is stale; run testdata/make_testdata.sh pack"


def test_shipped_g2p_file_is_what_pack_makes(tmp_path):
    out = tmp_path / "g2p.onnx"
    pack.pack_dir(G2P, out)
    assert out.read_bytes() == (REPO / "models" / "g2p-en.onnx").read_bytes(), \
        "models/g2p-en.onnx is stale; run python -m s2s_export pack models/g2p-en models/g2p-en.onnx --force"


@pytest.mark.parametrize("family", FAMILIES)
def test_metadata_schema(family):
    path = TESTDATA / f"{family}-tiny.onnx"
    meta = _meta(path)
    src = TESTDATA / f"{family}-tiny"
    assert meta[pack.KEY_VERSION] == pack.FORMAT_VERSION == "1.0"
    parts = json.loads(meta[pack.KEY_PARTS])
    assert parts["input"] == pack.PART_INPUT
    assert [(p["name"], p["value"]) for p in parts["parts"]] == [("encoder", 0), ("decoder", 1), ("decoder_with_past", 2)]
    manifest = json.loads(meta["s2s.json"])
    want = json.loads((src / "s2s.json").read_text())
    assert manifest["files"] == {"encoder": "encoder", "decoder": "decoder", "decoder_with_past": "decoder_with_past"}
    assert {k: v for k, v in manifest.items() if k != "files"} == {k: v for k, v in want.items() if k != "files"}
    for name in ("config.json", "generation_config.json", manifest["tokenizer"]["source"], manifest["tokenizer"]["target"]):
        # The directory's JSON files, the same values without indentation.
        assert json.loads(meta[name]) == json.loads((src / name).read_text())
    # No time or path in the file: it is a function of the directory.
    assert str(REPO) not in path.read_bytes().decode("latin-1")


@pytest.mark.parametrize("family", FAMILIES)
def test_weights_are_stored_once(family):
    import onnx

    src = TESTDATA / f"{family}-tiny"
    model = onnx.load(str(TESTDATA / f"{family}-tiny.onnx"))
    blobs = []

    def walk(g):
        for t in g.initializer:
            blobs.append((t.data_type, tuple(t.dims), bytes(t.raw_data) or t.SerializeToString()))
        for n in g.node:
            for a in n.attribute:
                if a.type == onnx.AttributeProto.GRAPH:
                    walk(a.g)

    walk(model.graph)
    big = [b for b in blobs if len(b[2]) > 1024]
    assert len(big) == len(set(big)), "a weight is stored twice"
    graphs = sum((src / f).stat().st_size for f in ("encoder_model.onnx", "decoder_model.onnx", "decoder_with_past_model.onnx"))
    whole = sum(f.stat().st_size for f in src.iterdir())
    size = (TESTDATA / f"{family}-tiny.onnx").stat().st_size
    assert size < 0.6 * graphs < whole, (size, graphs, whole)


def test_parts_are_gated(tmp_path):
    """Each part runs alone: an encoder run feeds the decoders' inputs only
    as empty tensors and gets empty placeholders for their outputs."""
    import onnx
    import onnxruntime as ort

    path = TESTDATA / "bart-tiny.onnx"
    meta = _meta(path)
    info = json.loads(meta[pack.KEY_PARTS])
    model = onnx.load(str(path))
    inputs = [(i.name, i.type.tensor_type.elem_type, pack._dims(i, "input")) for i in model.graph.input if i.name != pack.PART_INPUT]
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    enc = next(p for p in info["parts"] if p["name"] == "encoder")
    ids = np.array([[5, 6, 7, 2]], dtype=np.int64)
    feeds = pack.feeds(inputs, enc, {"input_ids": ids, "attention_mask": np.ones_like(ids)})
    assert feeds["past_key_values.0.decoder.key"].size == 0 and feeds["encoder_hidden_states"].shape == (0, 0, 32)
    out = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feeds)))
    assert out["last_hidden_state"].shape == (1, 4, 32)
    assert out["logits"].size == 0 and all(v.size == 0 for k, v in out.items() if k.startswith("present."))


def test_check_catches_a_changed_graph(tmp_path):
    """pack's check compares the parts with the directory's graphs: a file
    packed from one directory fails against a directory whose weights differ."""
    import onnx
    from onnx import numpy_helper

    src = tmp_path / "bart"
    shutil.copytree(TESTDATA / "bart-tiny", src)
    data, _ = pack.pack(src)
    g = onnx.load(str(src / "decoder_with_past_model.onnx"))
    big = max(g.graph.initializer, key=lambda t: t.ByteSize())
    arr = numpy_helper.to_array(big).copy()
    arr *= 1.5
    big.CopyFrom(numpy_helper.from_array(arr, big.name))
    onnx.save(g, str(src / "decoder_with_past_model.onnx"))
    manifest = pack.read_manifest(src)
    meta = json.loads(dict((p.key, p.value) for p in onnx.load_from_string(data).metadata_props)[pack.KEY_PARTS])
    model = onnx.load_from_string(data)
    inputs = [(i.name, i.type.tensor_type.elem_type, pack._dims(i, "input")) for i in model.graph.input if i.name != pack.PART_INPUT]
    with pytest.raises(CheckError, match="decoder step"):
        pack.check(src, manifest, data, meta, inputs)


# ---- through the Go host ----


@pytest.mark.parametrize("family", FAMILIES)
def test_gen_gives_the_directory_outputs(gen, family):
    src, path = TESTDATA / f"{family}-tiny", TESTDATA / f"{family}-tiny.onnx"
    for args in ((), ("-num-beams", "4", "-num-return-sequences", "2")):
        _same(_gen(gen, path, TEXTS, "-max-new-tokens", "12", *args), _gen(gen, src, TEXTS, "-max-new-tokens", "12", *args))


def test_gen_g2p_file(gen):
    words = [line.split("\t")[0] for line in (G2P / "test.tsv").read_text().splitlines()[:60]]
    for args in ((), ("-num-beams", "5")):
        _same(_gen(gen, REPO / "models" / "g2p-en.onnx", words, *args), _gen(gen, G2P, words, *args))
    assert _gen(gen, REPO / "models" / "g2p-en.onnx", ["hello"])[0]["output"] == "HH EH L OW"


@pytest.mark.parametrize("name", ["t5-tiny", "g2p-en"])
def test_int8_directory_packs(gen, name, tmp_path):
    """An int8 directory (quantize) packs; the file gives its outputs."""
    src = G2P if name == "g2p-en" else TESTDATA / name
    q = tmp_path / f"{name}-int8"
    quantize.quantize_dir(src, q)
    out = tmp_path / f"{name}-int8.onnx"
    lines = pack.pack_dir(q, out)
    assert any("within 0 " in line or "within" in line for line in lines)
    assert json.loads(_meta(out)["s2s.json"])["quantization"]["weight_type"] == "int8"
    texts = TEXTS if name == "t5-tiny" else ["hello", "pronunciation", "xylophones", "cat"]
    for args in ((), ("-num-beams", "3")):
        _same(_gen(gen, out, texts, "-max-new-tokens", "12", *args), _gen(gen, q, texts, "-max-new-tokens", "12", *args))


def test_optimum_layouts_pack(gen, tmp_path):
    """A directory without s2s.json (the manifest derived from config.json,
    as the Go host derives it) and a merged decoder alone pack too."""
    opt = tmp_path / "optimum"
    shutil.copytree(TESTDATA / "bart-tiny", opt)
    (opt / "s2s.json").unlink()
    merged = tmp_path / "merged"
    shutil.copytree(TESTDATA / "t5-tiny", merged)
    for f in ("s2s.json", "decoder_model.onnx", "decoder_with_past_model.onnx"):
        (merged / f).unlink()
    for d, family in ((opt, "bart"), (merged, "t5")):
        out = d.with_suffix(".onnx")
        pack.pack_dir(d, out)
        m = json.loads(_meta(out)["s2s.json"])
        assert m["files"]["decoder_with_past"] == "decoder_with_past" and m["model_type"] == family
        _same(_gen(gen, out, TEXTS, "-max-new-tokens", "10"), _gen(gen, TESTDATA / f"{family}-tiny", TEXTS, "-max-new-tokens", "10"))


def test_hf_single_file(gen, tmp_path):
    """`hf ... --single-file` writes one checked file; gen on it gives
    transformers' greedy tokens."""
    import torch
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    from s2s_export import tiny

    ckpt, out = tmp_path / "ckpt", tmp_path / "bart.onnx"
    tiny.make_tiny("bart", ckpt, 23, d_model=32, layers=2, heads=4, ffn=64)
    # --no-check: the comparison with transformers below is the check.
    assert cli.main(["hf", str(ckpt), str(out), "--single-file", "--no-check"]) == 0
    assert out.is_file() and not (tmp_path / "bart").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == [], "a staging directory was left behind"
    tok = AutoTokenizer.from_pretrained(str(ckpt))
    model = AutoModelForSeq2SeqLM.from_pretrained(str(ckpt)).eval()
    for text, line in zip(TEXTS, _gen(gen, out, TEXTS, "-max-new-tokens", "12"), strict=True):
        with torch.no_grad():
            want = model.generate(**tok(text, return_tensors="pt"), do_sample=False, max_new_tokens=12)[0].tolist()[1:]
        assert line["tokens"] == want, text
    # Without --force an existing file is kept.
    assert cli.main(["hf", str(ckpt), str(out), "--single-file"]) == 1


# ---- refusals ----


def test_refusals(tmp_path, capsys):
    out = tmp_path / "m.onnx"
    out.write_bytes(b"keep")
    assert cli.main(["pack", str(TESTDATA / "t5-tiny"), str(out)]) == 1
    assert out.read_bytes() == b"keep" and "--force" in capsys.readouterr().err
    with pytest.raises(ExportError, match="is a directory"):
        pack.pack_dir(TESTDATA / "t5-tiny", tmp_path)
    with pytest.raises(ExportError, match="not a directory"):
        pack.pack_dir(TESTDATA / "t5-tiny.onnx", tmp_path / "x.onnx")
    with pytest.raises(ExportError, match="inside the model directory"):
        pack.pack_dir(TESTDATA / "t5-tiny", TESTDATA / "t5-tiny" / "packed.onnx")
    bad = tmp_path / "bad"
    shutil.copytree(TESTDATA / "t5-tiny", bad)
    m = json.loads((bad / "s2s.json").read_text())
    m["architecture"] = "lstm"
    (bad / "s2s.json").write_text(json.dumps(m))
    with pytest.raises(ExportError, match="architecture"):
        pack.pack_dir(bad, tmp_path / "bad.onnx")
    # The inplace layout's decoder binds its cache as input and output at
    # once, which a branch cannot keep; it stays a directory.
    with pytest.raises(ExportError, match="re-export with --layout optimum"):
        pack.pack_dir(TESTDATA / "t5-tiny-inplace", tmp_path / "inplace.onnx")
    with pytest.raises(ExportError, match="optimum layout only"):
        hf.export(TESTDATA / "t5-tiny", tmp_path / "x.onnx", single_file=True, layout="inplace")
    # A graph with external weights (a model over 2 GB) is not packed.
    import onnx

    ext = tmp_path / "ext"
    shutil.copytree(TESTDATA / "t5-tiny", ext)
    g = onnx.load(str(ext / "encoder_model.onnx"))
    onnx.save(g, str(ext / "encoder_model.onnx"), save_as_external_data=True, location="encoder_model.onnx_data", size_threshold=0)
    with pytest.raises(ExportError, match="external data"):
        pack.pack_dir(ext, tmp_path / "ext.onnx")
    assert not (tmp_path / "ext.onnx").exists() and not (tmp_path / "bad.onnx").exists()
