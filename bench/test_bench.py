"""The harness's plumbing on the committed testdata/t5-tiny: the Go driver
and Optimum on the same ONNX files, with the limit. Fast, and needs neither
CTranslate2 nor a PyTorch checkpoint.

    .venv/bin/python -m pytest bench
"""

import sys
from pathlib import Path

import pytest

from bench import __main__ as harness
from bench import models


def test_go_and_optimum_agree_on_t5_tiny(tmp_path):
    """go (the inplace layout), go-optimum and Optimum on the same checkpoint,
    at two thread settings: the same outputs, the limit measured, a best-of table."""
    a = harness.parse_args(["--models", "t5-tiny", "--reps", "1", "--engines", "go,go-optimum,optimum", "--work", str(tmp_path),
                            "--tokens", "6", "--inputs", "2", "--batch", "2", "--threads", "1,1+2,1"])
    # t5-tiny's ONNX files are committed; the checkpoint is not needed by these engines.
    tiny = models.Model(name="t5-tiny", onnx=models.ROOT / "testdata" / "t5-tiny", checkpoint=None, eos=1, vocab=824,
                        inplace=models.ROOT / "testdata" / "t5-tiny-inplace")
    orig = models.prepare
    models.prepare = lambda name, work, log=print: tiny
    try:
        rows, ok = harness.run(a, log=lambda s: None)
    finally:
        models.prepare = orig
    assert ok, rows
    cases = {r["case"] for r in rows}
    assert cases == {"greedy/b1/6", "greedy/b2/6", "beam4/b1/6", "beam4/b2/6"}
    assert len(rows) == 2 * 3 * 4 and {r["threads"] for r in rows} == {"1,1", "2,1"}
    for r in rows:
        assert "skip" not in r, r
        assert r["tokens"] == 2 * 6 and r["lengths_ok"]
        if r["engine"] != "go":
            assert r["agree"] == (1.0, 1.0), r
        if r["engine"] != "optimum":
            assert 0 < r["limit_ms"] and 0 < r["e2e_ms"]
    text = harness.table(rows)
    assert text.count("\n") == len(rows) + 1 and "overhead" in text and "| threads |" in text
    best = harness.best_table(rows)
    assert best.count("\n") == 1 + 3 * 4 and "go's best / this" in best


def test_agreement_counts_prefixes():
    assert harness.agreement([[1, 2, 3], [4, 5, 6]], [[1, 2, 3], [4, 9, 6]]) == (0.5, pytest.approx((1 + 1 / 3) / 2))


def test_bad_arguments_are_refused():
    with pytest.raises(SystemExit):
        harness.parse_args(["--engines", "go,nonsense"])
    with pytest.raises(SystemExit):
        harness.parse_args(["--tokens", "0"])


def _tiny(monkeypatch):
    tiny = models.Model(name="t5-tiny", onnx=models.ROOT / "testdata" / "t5-tiny", checkpoint=None, eos=1, vocab=824,
                        inplace=models.ROOT / "testdata" / "t5-tiny-inplace")
    monkeypatch.setattr(models, "prepare", lambda name, work, log=print: tiny)
    return tiny


def test_g2p_go_and_pytorch_agree(tmp_path):
    """g2p: the Go host (with L) and our PyTorch module through generate()
    agree token for token at fp32; Optimum and CTranslate2 get one n/a row each."""
    a = harness.parse_args(["--models", "g2p", "--reps", "1", "--engines", "go,pytorch,optimum,ct2-int8", "--work", str(tmp_path),
                            "--tokens", "5", "--inputs", "2", "--batch", "2"])
    rows, ok = harness.run(a, log=lambda s: None)
    assert ok, rows
    na = [r for r in rows if r["case"] == "all"]
    assert {r["engine"] for r in na} == {"optimum", "ct2-int8"} and all(r["skip"].startswith("n/a: ") for r in na)
    runs = [r for r in rows if r["case"] != "all"]
    assert len(runs) == 8
    for r in runs:
        assert "skip" not in r, r
        assert r["tokens"] == 2 * 5 and r["lengths_ok"]
        if r["engine"] == "pytorch":
            assert r["agree"] == (1.0, 1.0), r
        else:
            assert r["limit_ms"] > 0
    assert "n/a: Optimum" in harness.table(rows)


def test_g2p_inputs_are_words():
    m = models.prepare("g2p", Path("/nonexistent"))
    ins = harness.make_inputs(m, 3)
    assert len(ins) == 3 and all(x[-1] == m.eos and all(3 <= t < 30 for t in x[:-1]) for x in ins)
    assert ins == harness.make_inputs(m, 3)


def test_go_int8_against_go(tmp_path, monkeypatch):
    """go-int8 runs the Go host on `s2s_export quantize`'s copy, compared with go;
    without that command the row says so instead of failing the run."""
    _tiny(monkeypatch)
    a = harness.parse_args(["--models", "t5-tiny", "--reps", "1", "--engines", "go,go-int8", "--work", str(tmp_path),
                            "--tokens", "4", "--inputs", "2", "--batch", "2", "--cases", "greedy/b1,beam4/b2"])
    rows, ok = harness.run(a, log=lambda s: None)
    int8 = [r for r in rows if r["engine"] == "go-int8"]
    assert len(int8) == 2
    try:
        m = models.prepare("t5-tiny", tmp_path)
        models.int8_dir(m, tmp_path, src=m.inplace)
    except models.QuantizeUnavailable:
        assert all("quantize" in r["skip"] for r in int8), int8
        return
    assert ok, rows
    assert (tmp_path / "t5-tiny" / "onnx-inplace-int8" / "s2s.json").is_file()
    for r in int8:
        assert "skip" not in r, r
        assert r["lengths_ok"] and 0 <= r["agree"][1] <= 1 and r["limit_ms"] > 0


def test_ort_profile_end_to_end(tmp_path):
    from bench import ort_profile

    out = tmp_path / "prof.json"
    assert ort_profile.main(["--model", "t5-tiny", "--past", "4,16", "--batch", "1,2", "--beams", "1,2", "--steps", "2",
                             "--json", str(out)]) == 0
    res = __import__("json").loads(out.read_text())
    text = ort_profile.table(res)
    rows = [line for line in text.splitlines() if line.startswith("| Concat (cache) |")]
    assert len(rows) == 1
    shares = [float(cell.split("%")[0]) for cell in rows[0].strip("| ").split(" | ")[1:]]
    assert len(shares) == 8 and all(0 < s < 100 for s in shares), rows
    assert len(res["graph"]["cache_concats"]) == 4  # t5-tiny: 2 decoder layers x key, value
    assert "step (model_run) mean / p50" in text


def test_ort_profile_inplace(tmp_path):
    """The inplace layout's step graph: no cache Concat, one
    DecoderMaskedMultiHeadAttention and one MultiHeadAttention per layer."""
    from bench import ort_profile

    out = tmp_path / "prof.json"
    assert ort_profile.main(["--model", "t5-tiny-inplace", "--past", "4", "--batch", "2", "--beams", "1,2", "--steps", "2",
                             "--json", str(out)]) == 0
    res = __import__("json").loads(out.read_text())
    g = res["graph"]
    assert g["cache_concats"] == [] and g["ops"]["DecoderMaskedMultiHeadAttention"] == 2 and g["ops"]["MultiHeadAttention"] == 2
    assert all(sum(d.values()) > 0 for d in res["op_us"])
    assert "bound as past and present" in ort_profile.table(res)


def test_serve_mode_on_t5_tiny(tmp_path, monkeypatch):
    _tiny(monkeypatch)
    a = harness.parse_args(["--models", "t5-tiny", "--serve", "1,3", "--serve-requests", "6", "--tokens", "8",
                            "--window-ms", "2", "--work", str(tmp_path), "--threads", "1,1"])
    rows = harness.run_serve(a, log=lambda s: None)
    assert [(r["batcher"], r["clients"]) for r in rows] == [("continuous", 1), ("continuous", 3), ("window", 1), ("window", 3)]
    assert all(r["requests"] == 6 and r["req_s"] > 0 and 0 < r["mean_len"] <= 8 for r in rows)
    assert harness.serve_table(rows).count("\n") == 1 + len(rows)
