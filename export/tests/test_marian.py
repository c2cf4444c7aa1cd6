"""test_marian checks s2s_export.marian.convert against transformers' slow
MarianTokenizer on the committed test tokenizer (testdata/tokenizers/marian)."""

from __future__ import annotations

import json
import random
import shutil
import warnings
from pathlib import Path

import pytest

from s2s_export import marian

REPO = Path(__file__).resolve().parents[2]
MARIAN_DIR = REPO / "testdata" / "tokenizers" / "marian"

# HARD holds strings that stress normalization, whitespace, unknown
# characters and special tokens. Each is expected to encode the same way.
HARD = [
    "",
    " ",
    "   ",
    "a",
    ".",
    "Hello, world!",
    "A fool and his money are soon parted.",
    "café crème brûlée",
    "cafe\u0301 and e\u0301",  # combining acute composes to é
    "naïve Zoë, Ünïcödé ÀÉÎÕÜ",
    "日本語のテキスト",
    "mixed 日本 text",
    "emoji 😀👍🏽 done",
    "tabs\tand\nnewlines\r\nhere",
    "  leading and trailing  ",
    "multiple     spaces   inside",
    "!!!???...,,,;;;",
    "«quotes» “curly” ‘single’ — dash … ellipsis",
    "Ｆｕｌｌｗｉｄｔｈ ＡＳＣＩＩ",
    "ﬁne ﬂour",
    "x" * 300,
    "supercalifragilisticexpialidocious" * 5,
    "a </s> b",
    "<unk> and <pad>",
    "zero\u200bwidth",
    "\u00a0nbsp\u00a0",
    "1/2 ½ ² ³ ™",
    "\x01ctrl\x7f and \x85",
    "\u3000ideographic\u3000space",
    "Ωμέγα Привет",
    "x é y",
    "$#@%^&*()_+-=[]{}|\\:\";'<>?,./`~",
]


def _slow(d: Path):
    from transformers import MarianTokenizer

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Recommended: pip install sacremoses."
        return MarianTokenizer.from_pretrained(str(d))


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """converted returns (slow tokenizer, source Tokenizer, target Tokenizer)
    for a fresh conversion of the committed Marian tokenizer."""
    from tokenizers import Tokenizer

    out = tmp_path_factory.mktemp("marian")
    names = marian.convert(MARIAN_DIR, out)
    assert names == ("tokenizer.json", "tokenizer_target.json")
    return _slow(MARIAN_DIR), Tokenizer.from_file(str(out / names[0])), Tokenizer.from_file(str(out / names[1]))


def test_sacremoses_absent():
    # With sacremoses installed MarianTokenizer normalizes punctuation first,
    # which tokenizer.json cannot; the parity below assumes it is absent.
    with pytest.raises(ImportError):
        import sacremoses  # noqa: F401


@pytest.mark.parametrize("text", HARD, ids=[repr(t)[:40] for t in HARD])
def test_encode_matches_slow(converted, text):
    slow, source, _ = converted
    want = slow(text)["input_ids"]
    got = source.encode(text).ids
    assert got == want, (slow.convert_ids_to_tokens(want), source.encode(text).tokens)
    assert got[-1] == slow.eos_token_id


def test_encode_splits_words(converted):
    # Guards against a vacuous pass: real text becomes several real pieces.
    slow, source, _ = converted
    ids = source.encode("The quick brown fox jumps over the lazy dog.").ids
    assert len(ids) > 8
    assert slow.unk_token_id not in ids


def test_decode_matches_slow(converted):
    slow, _, target = converted
    rng = random.Random(7)
    n = len(slow)
    specials = [slow.eos_token_id, slow.unk_token_id, slow.pad_token_id]
    space = slow.convert_tokens_to_ids("\u2581")
    cases = [[], specials, [space] * 3, [space, 40, space], [n + 5, 40]]  # n+5: an id past the vocabulary
    for _ in range(600):
        ids = [rng.randrange(n) for _ in range(rng.randrange(1, 25))]
        if rng.random() < 0.4:
            ids = [rng.choice(specials + [space]) for _ in range(rng.randrange(1, 5))] + ids
        if rng.random() < 0.4:
            ids += [rng.choice(specials + [space]) for _ in range(rng.randrange(1, 5))]
        cases.append(ids)
    nonempty = 0
    for ids in cases:
        want = slow.decode(ids, skip_special_tokens=True)
        got = target.decode(ids, skip_special_tokens=True)
        assert got == want, ids
        nonempty += bool(want)
    assert nonempty > len(cases) // 2


def test_decode_roundtrip(converted):
    slow, source, target = converted
    text = "Never put off till tomorrow what you can do today."
    ids = source.encode(text).ids
    assert target.decode(ids, skip_special_tokens=True) == slow.decode(ids, skip_special_tokens=True)


def _foreign_char(slow) -> str:
    """_foreign_char returns a character that the source SentencePiece model
    cannot cover but that vocab.json holds (a target-only piece)."""
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(MARIAN_DIR / "source.spm"))
    for tok in slow.encoder:
        if len(tok) == 1 and tok != "\u2581" and sp.piece_to_id(tok) == sp.unk_id():
            return tok
    pytest.fail("the test vocabulary has no target-only single character; regenerate testdata/tokenizers")


def test_unknown_run_exception(converted):
    # Documented in convert: a lone unknown character that vocab.json holds
    # maps to its id in both; a longer unknown run holding it gives one
    # <unk> in MarianTokenizer and the part's id in tokenizer.json.
    slow, source, _ = converted
    c = _foreign_char(slow)
    assert source.encode(f"x {c} y").ids == slow(f"x {c} y")["input_ids"]
    assert slow.convert_tokens_to_ids(c) in source.encode(f"x {c} y").ids
    run = c + "\u4e00"  # CJK ideograph: not in the fortunes vocabulary
    want = slow(run)["input_ids"]
    got = source.encode(run).ids
    assert slow.unk_token_id in want and slow.convert_tokens_to_ids(c) not in want
    assert slow.convert_tokens_to_ids(c) in got


def test_stacked_marks_exception(converted):
    # Documented in convert: the Precompiled normalizer drops the second
    # combining mark of a short grapheme whose start has a rule.
    import sentencepiece as spm

    _, source, _ = converted
    sp = spm.SentencePieceProcessor(model_file=str(MARIAN_DIR / "source.spm"))
    text = "e\u0301\u0301"
    assert sp.normalize(text) == "\u2581\u00e9\u0301"
    assert source.normalizer.normalize_str(text) == "\u00e9"
    # A longer grapheme (6 bytes or more) is looked up character by
    # character, so the composition rule never applies.
    longer = "e\u0301\u0301\u0301"
    assert sp.normalize(longer) == "\u2581\u00e9\u0301\u0301"
    assert source.normalizer.normalize_str(longer) == longer


def test_committed_files_match_conversion(tmp_path):
    marian.convert(MARIAN_DIR, tmp_path)
    for name in ("tokenizer.json", "tokenizer_target.json"):
        assert json.loads((tmp_path / name).read_text()) == json.loads((MARIAN_DIR / name).read_text()), name


def test_tokenizer_json_shape():
    tj = json.loads((MARIAN_DIR / "tokenizer.json").read_text())
    vocab = json.loads((MARIAN_DIR / "vocab.json").read_text())
    assert tj["model"]["type"] == "Unigram"
    assert tj["model"]["unk_id"] == vocab["<unk>"]
    assert [p for p, _ in tj["model"]["vocab"]] == sorted(vocab, key=vocab.get)
    assert tj["normalizer"]["normalizers"][0]["type"] == "Precompiled"
    assert tj["pre_tokenizer"]["type"] == "Metaspace"
    assert tj["post_processor"]["type"] == "TemplateProcessing"
    special = {t["content"]: t["id"] for t in tj["added_tokens"] if t["special"]}
    assert special == {"</s>": vocab["</s>"], "<unk>": vocab["<unk>"], "<pad>": vocab["<pad>"]}
    assert vocab["</s>"] == 0 and vocab["<unk>"] == 1 and vocab["<pad>"] == len(vocab) - 1


def test_separate_vocabs(tmp_path):
    # With separate_vocabs the target side decodes with target_vocab.json ids.
    from tokenizers import Tokenizer

    for name in ("source.spm", "target.spm", "vocab.json", "special_tokens_map.json"):
        shutil.copy(MARIAN_DIR / name, tmp_path / name)
    vocab = json.loads((MARIAN_DIR / "vocab.json").read_text())
    middle = [t for t in vocab if t not in ("</s>", "<unk>", "<pad>")]
    random.Random(3).shuffle(middle)
    target_vocab = {t: i for i, t in enumerate(["</s>", "<unk>", *middle, "<pad>"])}
    (tmp_path / "target_vocab.json").write_text(json.dumps(target_vocab))
    config = json.loads((MARIAN_DIR / "tokenizer_config.json").read_text())
    config["separate_vocabs"] = True
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(config))
    slow = _slow(tmp_path)
    assert slow.separate_vocabs
    marian.convert(tmp_path, tmp_path)
    target = Tokenizer.from_file(str(tmp_path / "tokenizer_target.json"))
    rng = random.Random(5)
    for _ in range(100):
        ids = [rng.randrange(len(target_vocab)) for _ in range(rng.randrange(1, 20))]
        assert target.decode(ids, skip_special_tokens=True) == slow.decode(ids, skip_special_tokens=True)
    assert all(target.token_to_id(t) == i for t, i in target_vocab.items())
    assert sum(target_vocab[t] != vocab[t] for t in middle) > len(middle) // 2


def _copy(tmp_path: Path) -> Path:
    d = tmp_path / "src"
    d.mkdir()
    for name in ("source.spm", "target.spm", "vocab.json"):
        shutil.copy(MARIAN_DIR / name, d / name)
    return d


def _edit_vocab(d: Path, fn) -> None:
    vocab = json.loads((d / "vocab.json").read_text())
    (d / "vocab.json").write_text(json.dumps(fn(vocab)))


def _drop_pad(v):
    del v["<pad>"]
    return v


def _duplicate_id(v):
    v["<pad>"] = 5
    return v


@pytest.mark.parametrize(
    "break_it, message",
    [
        (lambda d: shutil.rmtree(d), "not a directory"),
        (lambda d: (d / "vocab.json").unlink(), "vocab.json is missing"),
        (lambda d: (d / "source.spm").unlink(), "source.spm is missing"),
        (lambda d: (d / "target.spm").write_bytes(b"not a model"), "not a sentencepiece model"),
        (lambda d: (d / "vocab.json").write_text("{"), "not valid json"),
        (lambda d: _edit_vocab(d, _drop_pad), "has no <pad> token"),
        (lambda d: _edit_vocab(d, _duplicate_id), "each once"),
    ],
    ids=["no-dir", "no-vocab", "no-source-spm", "bad-spm", "bad-json", "no-pad", "duplicate-id"],
)
def test_bad_input(tmp_path, break_it, message):
    d = _copy(tmp_path)
    break_it(d)
    with pytest.raises(marian.MarianTokenizerError) as e:
        marian.convert(d, tmp_path / "out")
    text = str(e.value)
    assert message in text.lower()
    assert not text[0].isupper()


def test_bpe_model_refused(tmp_path):
    from sentencepiece import sentencepiece_model_pb2 as pb

    d = _copy(tmp_path)
    proto = pb.ModelProto()
    proto.ParseFromString((d / "source.spm").read_bytes())
    proto.trainer_spec.model_type = pb.TrainerSpec.BPE
    (d / "source.spm").write_bytes(proto.SerializeToString())
    with pytest.raises(marian.MarianTokenizerError, match="(?i)not a unigram"):
        marian.convert(d, tmp_path / "out")


def test_cli(tmp_path, capsys):
    from s2s_export import cli

    if "marian-tokenizer" not in cli.COMMANDS:
        pytest.fail("marian-tokenizer is not registered in s2s_export.cli.COMMANDS")
    assert cli.main(["marian-tokenizer", str(MARIAN_DIR), str(tmp_path)]) == 0
    assert (tmp_path / "tokenizer.json").is_file() and (tmp_path / "tokenizer_target.json").is_file()
    assert cli.main(["marian-tokenizer", str(tmp_path / "nothing"), str(tmp_path)]) == 1
    assert "not a directory" in capsys.readouterr().err
