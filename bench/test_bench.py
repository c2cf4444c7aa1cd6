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
    a = harness.parse_args(["--models", "t5-tiny", "--reps", "1", "--engines", "go,optimum", "--work", str(tmp_path), "--tokens", "6", "--inputs", "2", "--batch", "2"])
    # t5-tiny's ONNX files are committed; the checkpoint is not needed by these engines.
    tiny = models.Model(name="t5-tiny", onnx=models.ROOT / "testdata" / "t5-tiny", checkpoint=None, eos=1, vocab=824)
    orig = models.prepare
    models.prepare = lambda name, work, log=print: tiny
    try:
        rows, ok = harness.run(a, log=lambda s: None)
    finally:
        models.prepare = orig
    assert ok, rows
    cases = {r["case"] for r in rows}
    assert cases == {"greedy/b1/6", "greedy/b2/6", "beam4/b1/6", "beam4/b2/6"}
    for r in rows:
        assert "skip" not in r, r
        assert r["tokens"] == 2 * 6 and r["lengths_ok"]
        if r["engine"] == "optimum":
            assert r["agree"] == (1.0, 1.0), r
        else:
            assert 0 < r["limit_ms"] and 0 < r["e2e_ms"]
    text = harness.table(rows)
    assert text.count("\n") == len(rows) + 1 and "overhead" in text


def test_agreement_counts_prefixes():
    assert harness.agreement([[1, 2, 3], [4, 5, 6]], [[1, 2, 3], [4, 9, 6]]) == (0.5, pytest.approx((1 + 1 / 3) / 2))


def test_bad_arguments_are_refused():
    with pytest.raises(SystemExit):
        harness.parse_args(["--engines", "go,nonsense"])
    with pytest.raises(SystemExit):
        harness.parse_args(["--tokens", "0"])
