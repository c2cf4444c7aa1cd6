"""test_g2p_peers checks the parts of bench/g2p_peers.py that need neither
Phonetisaurus nor g2p_en: the training lexicon, the parsers of the peers'
outputs, the scoring and the table."""

from __future__ import annotations

import pytest

from bench import g2p_peers
from s2s_export.rnn import data

SAMPLE = "tomato T AH0 M EY1 T OW2\ntomato(2) T AH0 M AA1 T OW2\ncat K AE1 T\n"


def test_lexicon_has_every_pronunciation():
    entries = data.parse(SAMPLE, set(data.phoneme_set()))
    assert g2p_peers.lexicon_lines(entries) == ["cat\tK AE T", "tomato\tT AH M EY T OW", "tomato\tT AH M AA T OW"]


def test_parse_g2pfst_and_score():
    out = "cat\t3.21\tK AE T\ntomato\t9.8\tT AH M AA T OW\ntomato\t11.0\tT AH M EY T OW\nbroken line\n"
    hyps = g2p_peers.parse_g2pfst(out)
    assert hyps == {"cat": ["K", "AE", "T"], "tomato": ["T", "AH", "M", "AA", "T", "OW"]}, "the first (best) line counts"
    entries = data.parse(SAMPLE + "dog D AO1 G\n", set(data.phoneme_set()))
    wer, per = g2p_peers.rates(entries, hyps)  # dog has no output: 3 phonemes missed
    assert wer == 1 / 3 and per == 3 / (3 + 3 + 6)


def test_parse_g2p_eval_output():
    text = ("models/g2p-en/test.tsv: 6355 words, models/g2p-en through the Go host\n"
            "search                WER      PER  seconds  words/s\n"
            "greedy             25.01%    6.02%      4.1     1550\n"
            "beam 5             23.50%    5.80%     12.0      530\n"
            "5-best oracle       9.00%    2.00%     13.0      489\n")
    got = g2p_peers.parse_g2p_eval(text)
    assert set(got) == {"greedy", "beam 5"}
    assert got["greedy"] == pytest.approx((0.2501, 0.0602, 1550.0)) and got["beam 5"] == pytest.approx((0.235, 0.058, 530.0))


def test_strip_stress_and_table():
    assert g2p_peers.strip_stress(["HH", "EH1", "L", "OW0"]) == ["HH", "EH", "L", "OW"]
    t = g2p_peers.table([{"system": "x", "wer": 0.25, "per": 0.0635, "wps": 1234.4, "bytes": 3_300_000, "note": "n"}])
    assert t.splitlines()[-1] == "| x (n) | 25.00% | 6.35% | 1234 | 3.3 MB |"
