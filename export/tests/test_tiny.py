"""test_tiny checks the test tokenizers, make_tiny, and the committed tiny
models and goldens under testdata/ (made by testdata/make_testdata.sh)."""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from s2s_export import goldens, tiny  # noqa: E402
from s2s_export.errors import ExportError  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
TESTDATA = REPO / "testdata"
FAMILIES = ("t5", "bart", "marian")


# --- corpus and tokenizer training -------------------------------------------------


def test_fortunes_parsing(tmp_path):
    (tmp_path / "one").write_text("First\nfortune  here.\n%\n_\bB_\bo_\bl_\bd\ttext\x01!\n%\n%\n  \n%\nLast one\n")
    assert tiny.fortunes(["one"], root=tmp_path) == ["First fortune here.", "Bold text!", "Last one"]


def test_fortunes_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match="apt-get install fortunes"):
        tiny.fortunes(["one"], root=tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="apt-get install fortunes"):
        tiny.fortunes(["nothere"], root=tmp_path)


def test_normalization_rules():
    rules = tiny.normalization_rules()
    assert rules["\uff21"] == "A"  # fullwidth
    assert rules["\ufb01"] == "fi"  # ligature
    assert rules["e\u0301"] == "\u00e9"  # composition
    assert rules["\u00a0"] == " " and rules["\t"] == " " and rules["\u3000"] == " "
    assert rules["\x01"] == "" and rules["\x85"] == ""
    assert "a" not in rules and "\u00e9" not in rules  # only what NFKC changes


def _small_corpus() -> list[str]:
    words = " ".join(tiny.CALIBRATION).split()
    return [" ".join(words[i:i + 9]) for i in range(len(words))] * 3


def test_train_t5_conventions_and_determinism(tmp_path, monkeypatch):
    from transformers import T5TokenizerFast

    monkeypatch.setattr(tiny, "T5_SPM_VOCAB", 120)
    monkeypatch.setattr(tiny, "T5_EXTRA_IDS", 3)
    tiny.train_t5(tmp_path / "a", _small_corpus())
    tiny.train_t5(tmp_path / "b", _small_corpus())
    for name in ("spiece.model", "tokenizer.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    tok = T5TokenizerFast.from_pretrained(str(tmp_path / "a"))
    assert (tok.pad_token_id, tok.eos_token_id, tok.unk_token_id) == (0, 1, 2)
    assert len(tok) == 123 and tok.convert_tokens_to_ids("<extra_id_0>") == 122


def test_train_bart_conventions(tmp_path, monkeypatch):
    from transformers import BartTokenizer

    monkeypatch.setattr(tiny, "BART_BPE_VOCAB", 300)
    tiny.train_bart(tmp_path, _small_corpus())
    tok = BartTokenizer.from_pretrained(str(tmp_path))
    assert [tok.convert_tokens_to_ids(t) for t in ("<s>", "<pad>", "</s>", "<unk>")] == [0, 1, 2, 3]
    assert tok.mask_token_id == len(tok) - 1 == 299


def test_train_marian_conventions(tmp_path, monkeypatch):
    import sentencepiece as spm

    monkeypatch.setattr(tiny, "MARIAN_SOURCE_VOCAB", 100)
    monkeypatch.setattr(tiny, "MARIAN_TARGET_VOCAB", 110)
    corpus = _small_corpus()
    tiny.train_marian(tmp_path, corpus[::2], corpus[1::2])
    vocab = json.loads((tmp_path / "vocab.json").read_text())
    assert vocab["</s>"] == 0 and vocab["<unk>"] == 1 and vocab["<pad>"] == len(vocab) - 1
    for side in ("source", "target"):
        sp = spm.SentencePieceProcessor(model_file=str(tmp_path / f"{side}.spm"))
        pieces = {sp.id_to_piece(i) for i in range(sp.get_piece_size()) if not (sp.is_control(i) or sp.is_unknown(i))}
        assert pieces <= set(vocab), side
    assert (tmp_path / "tokenizer.json").is_file() and (tmp_path / "tokenizer_target.json").is_file()


def test_train_tokenizers_refuses_unknown_family(tmp_path):
    with pytest.raises(ValueError, match="unknown tokenizer family"):
        tiny.train_tokenizers(tmp_path, families=["gpt2"])


# --- committed tokenizers ---------------------------------------------------------------


@pytest.mark.parametrize("family", FAMILIES)
def test_committed_tokenizer_sizes(family):
    d = TESTDATA / "tokenizers" / family
    for f in d.iterdir():
        assert f.stat().st_size < 300_000, f
    assert (d / "tokenizer.json").is_file()


def test_committed_t5_fast_matches_slow():
    from transformers import T5Tokenizer, T5TokenizerFast

    d = str(TESTDATA / "tokenizers" / "t5")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        slow, fast = T5Tokenizer.from_pretrained(d, legacy=True), T5TokenizerFast.from_pretrained(d)
    assert (slow.pad_token_id, slow.eos_token_id, slow.unk_token_id) == (0, 1, 2)
    for text in goldens.HARD_INPUTS + tiny.CALIBRATION:
        assert fast(text).input_ids == slow(text).input_ids, text


def test_committed_bart_specials():
    from transformers import BartTokenizerFast

    tok = BartTokenizerFast.from_pretrained(str(TESTDATA / "tokenizers" / "bart"))
    assert (tok.bos_token_id, tok.pad_token_id, tok.eos_token_id, tok.unk_token_id) == (0, 1, 2, 3)
    assert tok.mask_token_id == len(tok) - 1
    assert 600 <= len(tok) <= 1000


# --- make_tiny --------------------------------------------------------------------------


@pytest.fixture
def quick_calibration(monkeypatch):
    """quick_calibration shortens make_tiny's calibration to 4 inputs."""
    monkeypatch.setattr(tiny, "CALIBRATION", tiny.CALIBRATION[:4])


@pytest.mark.parametrize("family", FAMILIES)
def test_make_tiny(tmp_path, family, quick_calibration):
    from transformers import AutoConfig, GenerationConfig

    s = tiny.make_tiny(family, tmp_path, seed=1, d_model=16, layers=1, heads=2, ffn=32, positions=64)
    assert s["family"] == family and len(s["greedy_lengths"]) == 4
    config = AutoConfig.from_pretrained(str(tmp_path))
    gen = GenerationConfig.from_pretrained(str(tmp_path))
    assert config.d_model == 16 and config.tie_word_embeddings is False
    if family == "bart":
        assert gen.forced_eos_token_id == 2 and gen.decoder_start_token_id == 2
    if family == "marian":
        assert gen.bad_words_ids == [[config.pad_token_id]] and config.decoder_start_token_id == config.pad_token_id
    if family == "t5":
        assert config.feed_forward_proj == "gated-gelu" and config.decoder_start_token_id == 0
    assert (tmp_path / "model.safetensors").is_file()


def test_make_tiny_is_reproducible(tmp_path, quick_calibration):
    a = tiny.make_tiny("t5", tmp_path / "a", seed=3, d_model=16, layers=1, heads=2, ffn=32)
    b = tiny.make_tiny("t5", tmp_path / "b", seed=3, d_model=16, layers=1, heads=2, ffn=32)
    c = tiny.make_tiny("t5", tmp_path / "c", seed=4, d_model=16, layers=1, heads=2, ffn=32)
    assert a == b
    assert (tmp_path / "a" / "model.safetensors").read_bytes() == (tmp_path / "b" / "model.safetensors").read_bytes()
    assert (tmp_path / "a" / "model.safetensors").read_bytes() != (tmp_path / "c" / "model.safetensors").read_bytes()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"family": "gpt2"}, "unknown family"),
        ({"heads": 3}, "not a multiple of heads"),
        ({"layers": 0}, "layers is 0"),
        ({"tokenizer_dir": "/nonexistent"}, "pass --tokenizer-dir"),
    ],
)
def test_make_tiny_bad_input(tmp_path, kwargs, message):
    args = {"family": "t5", "out_dir": tmp_path, "seed": 0, **kwargs}
    with pytest.raises((ValueError, FileNotFoundError), match=message):
        tiny.make_tiny(**args)


def test_tiny_cli_refuses_existing(tmp_path, capsys):
    from s2s_export import cli

    (tmp_path / "x").write_text("keep me")
    assert cli.main(["tiny", "t5", str(tmp_path), "--seed", "0"]) == 1
    assert "pass --force" in capsys.readouterr().err
    assert (tmp_path / "x").read_text() == "keep me"


# --- committed models and goldens ---------------------------------------------------------


def _records(kind: str, family: str) -> list[dict]:
    path = TESTDATA / "goldens" / f"{kind}-{family}.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.mark.parametrize("family", FAMILIES)
def test_model_dir_size(family):
    d = TESTDATA / f"{family}-tiny"
    total = sum(f.stat().st_size for f in d.iterdir())
    assert total < 2_000_000, total
    m = json.loads((d / "s2s.json").read_text())
    assert m["model_type"] == family
    for f in list(m["files"].values()) + list(m["tokenizer"].values()):
        assert (d / f).is_file(), f


def _tokenizers(family: str):
    from tokenizers import Tokenizer

    d = TESTDATA / f"{family}-tiny"
    m = json.loads((d / "s2s.json").read_text())
    return Tokenizer.from_file(str(d / m["tokenizer"]["source"])), Tokenizer.from_file(
        str(d / m["tokenizer"].get("target", m["tokenizer"]["source"]))
    )


@pytest.mark.parametrize("family", FAMILIES)
def test_greedy_goldens_consistent(family):
    source, target = _tokenizers(family)
    eos = json.loads((TESTDATA / f"{family}-tiny" / "s2s.json").read_text())["eos_token_id"]
    recs = _records("greedy", family)
    plain = [r for r in recs if r["options"] == {"max_new_tokens": 24, "do_sample": False, "num_beams": 1}
             and len(r["batch"]) == 1]
    assert len(plain) >= 24
    assert any(len(r["input_ids"]) <= 2 for r in plain) and max(len(r["input_ids"]) for r in plain) > 150
    for r in recs:
        assert r["input_ids"] == source.encode(r["input"]).ids, r["input"]
        assert r["batch"][r["batch_index"]] == r["input"]
        assert r["output_text"] == target.decode(r["output_ids"], skip_special_tokens=True)
        o, opts = r["output_ids"], r["options"]
        stops = opts.get("eos_token_id", eos)
        stops = [stops] if isinstance(stops, int) else stops
        assert len(o) <= opts["max_new_tokens"]
        assert len(o) == opts["max_new_tokens"] or o[-1] in stops, r
        assert not any(t in stops for t in o[:-1]), r
        if opts.get("min_new_tokens"):
            assert len(o) >= min(opts["min_new_tokens"] + 1, opts["max_new_tokens"]), r
    # The goldens must test something: varied lengths, few immediate ends.
    lengths = [len(r["output_ids"]) for r in plain]
    assert len(set(lengths)) >= 6, lengths
    assert sum(n <= 1 for n in lengths) <= len(lengths) // 5, lengths
    assert sum(n >= 5 for n in lengths) >= len(lengths) // 2, lengths
    assert len({tuple(r["output_ids"]) for r in plain}) >= len(plain) - 2
    assert any(isinstance(r["options"].get("eos_token_id"), list) for r in recs)
    assert any(r["options"].get("min_new_tokens") for r in recs)


@pytest.mark.parametrize("family", FAMILIES)
def test_beam_goldens_cover_options(family):
    recs = _records("beam", family)
    seen = {k: {json.dumps(r["options"].get(k)) for r in recs} for k in
            ("num_beams", "length_penalty", "early_stopping", "no_repeat_ngram_size", "repetition_penalty",
             "num_return_sequences")}
    assert {"2", "4", "5"} <= seen["num_beams"]
    assert {"0.6", "1.0", "2.0"} <= seen["length_penalty"]
    assert {"true", "false", '"never"'} <= seen["early_stopping"]
    assert {"2", "3"} <= seen["no_repeat_ngram_size"] and "1.3" in seen["repetition_penalty"]
    assert "3" in seen["num_return_sequences"]
    assert any(len(r["batch"]) > 1 and len({len(r2["input_ids"]) for r2 in recs if r2["batch"] == r["batch"]}) > 1
               for r in recs)
    _, target = _tokenizers(family)
    for r in recs:
        seqs = r["sequences"]
        assert len(seqs) == r["options"].get("num_return_sequences", 1)
        scores = [s["score"] for s in seqs]
        assert scores == sorted(scores, reverse=True)
        for s in seqs:
            assert s["output_text"] == target.decode(s["output_ids"], skip_special_tokens=True)


def _ort_greedy(family: str, input_ids: list[int], max_new_tokens: int) -> list[int]:
    """_ort_greedy runs greedy search on the committed ONNX graphs
    (encoder_model.onnx, then decoder_model.onnx on the whole prefix each
    step) with the model's generation_config: forced EOS at the last step,
    bad_words_ids of single tokens."""
    import onnxruntime as ort

    d = TESTDATA / f"{family}-tiny"
    gen = json.loads((d / "generation_config.json").read_text())
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    enc = ort.InferenceSession(str(d / "encoder_model.onnx"), opts)
    dec = ort.InferenceSession(str(d / "decoder_model.onnx"), opts)
    ids = np.array([input_ids], dtype=np.int64)
    mask = np.ones_like(ids)
    hidden = enc.run(None, {"input_ids": ids, "attention_mask": mask})[0]
    eos = gen["eos_token_id"]
    eos = [eos] if isinstance(eos, int) else eos
    banned = [w[0] for w in gen.get("bad_words_ids") or [] if len(w) == 1]
    out = [gen["decoder_start_token_id"]]
    for step in range(max_new_tokens):
        feeds = {"input_ids": np.array([out], dtype=np.int64), "encoder_hidden_states": hidden,
                 "encoder_attention_mask": mask}
        logits = dec.run(["logits"], feeds)[0][0, -1].astype(np.float64)
        logits[banned] = -np.inf
        if gen.get("forced_eos_token_id") is not None and step == max_new_tokens - 1:
            nxt = gen["forced_eos_token_id"]
        else:
            nxt = int(np.argmax(logits))
        out.append(nxt)
        if nxt in eos:
            break
    return out[1:]


@pytest.mark.parametrize("family", FAMILIES)
def test_greedy_goldens_match_onnx(family):
    # The committed graphs and goldens come from the same checkpoint: greedy
    # search on the graphs reproduces every plain greedy golden.
    recs = [r for r in _records("greedy", family)
            if r["options"] == {"max_new_tokens": 24, "do_sample": False, "num_beams": 1} and len(r["batch"]) == 1]
    for r in recs:
        assert _ort_greedy(family, r["input_ids"], 24) == r["output_ids"], r["input"]


def test_goldens_refuse_missing_model(tmp_path):
    with pytest.raises(ExportError, match="no config.json"):
        goldens.write_goldens(tmp_path, tmp_path, tmp_path / "out")
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ExportError, match="export the checkpoint"):
        goldens.write_goldens(tmp_path, tmp_path, tmp_path / "out")
