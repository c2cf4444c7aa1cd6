"""Tests of crosscheck: gen against transformers generate() on a fresh random model."""

import random
import subprocess
from pathlib import Path

import pytest

from s2s_export import crosscheck
from s2s_export.errors import ExportError

ROOT = Path(__file__).resolve().parents[2]


def test_flags_spell_options_as_gen_reads_them():
    assert crosscheck._flag("max_new_tokens", 5) == ["-max-new-tokens", "5"]
    assert crosscheck._flag("early_stopping", True) == ["-early-stopping=true"]
    assert crosscheck._flag("early_stopping", "never") == ["-early-stopping", "never"]
    assert crosscheck._flag("eos_token_id", [1, 7]) == ["-eos-token-id", "1,7"]


def test_drawn_options_are_valid_combinations():
    rng = random.Random(0)
    for _ in range(200):
        o = crosscheck.draw_options(rng, [1], 9)
        assert 1 <= o.get("num_return_sequences", 1) <= o["num_beams"]
        assert o.get("min_new_tokens", 0) <= o["max_new_tokens"]


def test_compare_catches_token_and_score_differences():
    rec = {"input": "x", "options": {}, "sequences": [{"output_ids": [5, 1], "score": -1.0}]}
    assert crosscheck.compare([rec], [{"tokens": [5, 1], "score": -1.00001}], 1e-4)[:2] == (1, 1)
    assert crosscheck.compare([rec], [{"tokens": [5, 2], "score": -1.0}], 1e-4)[1] == 0
    assert crosscheck.compare([rec], [{"tokens": [5, 1], "score": -1.1}], 1e-4)[1] == 0
    greedy = {"input": "x", "options": {}, "output_ids": [3, 1]}
    assert crosscheck.compare([greedy], [{"tokens": [3]}], 1e-4)[1] == 0


@pytest.fixture(scope="module")
def gen():
    subprocess.run([str(ROOT / "scripts" / "setup.sh"), "go"], check=True, cwd=ROOT)
    return ROOT / "bin" / "gen"


@pytest.mark.parametrize("layout", ["inplace", "optimum"])
def test_gen_equals_transformers_on_a_fresh_model(gen, tmp_path, layout):
    """A T5 with a seed and size the committed test models do not use, in both decoder layouts."""
    s = crosscheck.crosscheck_model("t5", 13, "24x1x2", gen, tmp_path, requests=6, atol=1e-4, log=lambda *a: None,
                                    layout=layout)
    assert s["requests"] == 6 and s["sequences"] >= 6
    assert s["mismatches"] == [], s["mismatches"]


def test_missing_gen_is_a_clear_error(tmp_path):
    from s2s_export.cli import build_parser
    args = build_parser().parse_args(["crosscheck", "--gen", str(tmp_path / "nope")])
    with pytest.raises(ExportError, match="not found"):
        crosscheck.run(args)
