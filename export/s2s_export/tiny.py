"""tiny makes the small test tokenizers and tiny random-weight checkpoints.

The tokenizers are trained on the texts of Debian's ``fortunes`` and
``fortunes-min`` packages (``/usr/share/games/fortunes``), so that they split
English the way real ones do while staying a few hundred kilobytes. The
checkpoints are T5, BART and Marian models built from configs with random
weights (no download), scaled so that greedy search gives outputs of varied
length rather than an immediate end of sequence.

    python -m s2s_export tiny-tokenizers OUT_DIR
    python -m s2s_export tiny FAMILY OUT_DIR --seed N [--d-model 32 ...]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import tempfile
from pathlib import Path

FORTUNES_DIR = Path("/usr/share/games/fortunes")

# FORTUNE_FILES are the fortune files the corpus reads, in this order. The
# ASCII-art files are left out: their lines are drawings, not text.
FORTUNE_FILES = (
    "computers", "cookie", "debian", "definitions", "disclaimer", "drugs",
    "education", "ethnic", "food", "fortunes", "goedel", "humorists", "kids",
    "knghtbrd", "law", "linux", "linuxcookie", "literature", "love", "magic",
    "medicine", "men-women", "miscellaneous", "news", "paradoxum", "people",
    "perl", "pets", "platitudes", "politics", "pratchett", "riddles",
    "science", "songs-poems", "sports", "startrek", "tao", "translate-me",
    "wisdom", "work", "zippy",
)

FAMILIES = ("t5", "bart", "marian")

# Vocabulary sizes of the test tokenizers.
T5_SPM_VOCAB = 800
T5_EXTRA_IDS = 24
BART_BPE_VOCAB = 800
MARIAN_SOURCE_VOCAB = 600
MARIAN_TARGET_VOCAB = 700

_OVERSTRIKE = re.compile(r".\x08")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_SPACES = re.compile(r"\s+")


def fortunes(files=FORTUNE_FILES, root: Path = FORTUNES_DIR) -> list[str]:
    """fortunes returns the fortunes of the named files, one string each.

    The ``%`` separator lines are dropped, overstrikes (``x<BS>y``) keep
    their last character, other control characters (C0 and C1) go, and each fortune's
    whitespace (line breaks included) is collapsed to single spaces.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(
            f"{root} does not exist; install the texts with "
            "`apt-get install fortunes fortunes-min`"
        )
    out = []
    for name in files:
        path = root / name
        if not path.is_file():
            raise FileNotFoundError(
                f"fortune file {path} is missing; install the texts with "
                "`apt-get install fortunes fortunes-min`"
            )
        text = path.read_text(encoding="utf-8", errors="replace")
        for chunk in re.split(r"^%\s*$", text, flags=re.M):
            chunk = _OVERSTRIKE.sub("", chunk)
            chunk = _CONTROL.sub("", chunk)
            chunk = _SPACES.sub(" ", chunk).strip()
            if chunk:
                out.append(chunk)
    return out


def normalization_rules() -> dict[str, str]:
    """normalization_rules returns the SentencePiece normalization rules of
    the test tokenizers: a subset of NFKC small enough to keep the
    precompiled charsmap a few kilobytes (the full nmt_nfkc one is 240 KB).

    It covers Latin-1 and Latin Extended, general punctuation, letterlike
    symbols and number forms, the ideographic space, Latin ligatures and
    fullwidth ASCII, composes common Latin letters with a following
    combining accent, maps tab and line breaks to spaces and deletes the
    other C0 and the C1 control characters, as nmt_nfkc does.
    """
    import unicodedata

    rules = {}
    ranges = [(0x80, 0x250), (0x2000, 0x2070), (0x2100, 0x2190), (0x3000, 0x3001),
              (0xFB00, 0xFB07), (0xFF01, 0xFF5F)]
    for lo, hi in ranges:
        for cp in range(lo, hi):
            c = chr(cp)
            n = unicodedata.normalize("NFKC", c)
            if n != c:
                rules[c] = n
    for base in "AEIOUYCNaeiouycn":
        for mark in (0x300, 0x301, 0x302, 0x303, 0x308, 0x327):
            seq = base + chr(mark)
            n = unicodedata.normalize("NFC", seq)
            if len(n) == 1:
                rules[seq] = n
    for c in "\t\n\r":
        rules[c] = " "
    for cp in [*range(0x01, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), *range(0x7F, 0xA0)]:
        rules[chr(cp)] = ""
    return rules


def _write_lines(path: Path, lines: list[str]) -> None:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def _train_spm(lines: list[str], prefix: Path, vocab_size: int, **ids) -> None:
    import sentencepiece as spm

    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus.txt"
        _write_lines(corpus, lines)
        rules = Path(tmp) / "rules.tsv"
        hexes = lambda s: " ".join(f"{ord(c):04X}" for c in s)  # noqa: E731
        rules.write_text("".join(f"{hexes(k)}\t{hexes(v)}\n" for k, v in normalization_rules().items()),
                         encoding="utf-8")
        spm.SentencePieceTrainer.train(
            input=str(corpus),
            model_prefix=str(prefix),
            model_type="unigram",
            normalization_rule_tsv=str(rules),
            vocab_size=vocab_size,
            character_coverage=1.0,
            num_threads=1,
            input_sentence_size=0,
            shuffle_input_sentence=False,
            max_sentence_length=8192,
            minloglevel=2,
            **ids,
        )
    Path(str(prefix) + ".vocab").unlink()
    # The trainer records its temporary paths in the model; name them
    # plainly so the file depends on the corpus alone.
    from sentencepiece import sentencepiece_model_pb2 as pb

    model = Path(str(prefix) + ".model")
    proto = pb.ModelProto()
    proto.ParseFromString(model.read_bytes())
    del proto.trainer_spec.input[:]
    proto.trainer_spec.input.append("fortunes.txt")
    proto.trainer_spec.model_prefix = prefix.name
    proto.normalizer_spec.name = "nfkc_subset"
    proto.normalizer_spec.normalization_rule_tsv = "rules.tsv"
    proto.denormalizer_spec.name = ""
    model.write_bytes(proto.SerializeToString())


def train_t5(out_dir: Path, lines: list[str]) -> None:
    """train_t5 writes a T5 tokenizer (spiece.model, tokenizer.json and
    the transformers config files) to out_dir.

    T5's conventions hold: pad 0, eos 1 ``</s>``, unk 2, no bos, and
    ``<extra_id_N>`` sentinels after the SentencePiece pieces.
    """
    from transformers import T5TokenizerFast

    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        prefix = Path(tmp) / "spiece"
        _train_spm(lines, prefix, T5_SPM_VOCAB, pad_id=0, eos_id=1, unk_id=2, bos_id=-1,
                   pad_piece="<pad>", eos_piece="</s>", unk_piece="<unk>")
        tok = T5TokenizerFast(vocab_file=str(prefix) + ".model", extra_ids=T5_EXTRA_IDS,
                              model_max_length=512, legacy=True, add_prefix_space=True)
        tok.save_pretrained(str(out_dir))
    if not (out_dir / "spiece.model").is_file():
        raise RuntimeError(f"T5TokenizerFast did not save spiece.model in {out_dir}")


def train_bart(out_dir: Path, lines: list[str]) -> None:
    """train_bart writes a byte-level BPE tokenizer for BART (vocab.json,
    merges.txt, tokenizer.json and the transformers config files) to out_dir.

    BART's conventions hold: ``<s>`` 0, ``<pad>`` 1, ``</s>`` 2,
    ``<unk>`` 3, and ``<mask>`` the last id.
    """
    from tokenizers import ByteLevelBPETokenizer
    from transformers import BartTokenizerFast

    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        bpe = ByteLevelBPETokenizer(add_prefix_space=False)
        bpe.train_from_iterator(
            lines,
            vocab_size=BART_BPE_VOCAB - 1,  # <mask> is appended below
            min_frequency=2,
            special_tokens=["<s>", "<pad>", "</s>", "<unk>"],
            show_progress=False,
        )
        bpe.save_model(tmp)
        vocab_path = Path(tmp) / "vocab.json"
        vocab = json.loads(vocab_path.read_text(encoding="utf-8"))
        vocab["<mask>"] = len(vocab)
        vocab_path.write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
        tok = BartTokenizerFast(vocab_file=str(vocab_path), merges_file=str(Path(tmp) / "merges.txt"),
                                model_max_length=1024)
        tok.save_pretrained(str(out_dir))
    want = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3, "<mask>": len(tok) - 1}
    got = {t: tok.convert_tokens_to_ids(t) for t in want}
    if got != want:
        raise RuntimeError(f"BART special ids are {got}, want {want}")


def train_marian(out_dir: Path, source_lines: list[str], target_lines: list[str]) -> None:
    """train_marian writes a Marian tokenizer to out_dir: source.spm,
    target.spm (SentencePiece Unigram models trained on different texts),
    their shared vocab.json, the transformers config files, and the
    tokenizer.json / tokenizer_target.json that s2s_export.marian.convert
    makes from them.

    Marian's conventions hold: ``</s>`` 0, ``<unk>`` 1, then the union of
    both models' pieces (source first), ``<pad>`` the last id.
    """
    import sentencepiece as spm
    from transformers import MarianTokenizer

    from . import marian

    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        _train_spm(source_lines, tmp / "source", MARIAN_SOURCE_VOCAB)
        _train_spm(target_lines, tmp / "target", MARIAN_TARGET_VOCAB)
        vocab = {"</s>": 0, "<unk>": 1}
        for side in ("source", "target"):
            sp = spm.SentencePieceProcessor(model_file=str(tmp / f"{side}.model"))
            for i in range(sp.get_piece_size()):
                if sp.is_control(i) or sp.is_unknown(i):
                    continue
                vocab.setdefault(sp.id_to_piece(i), len(vocab))
        vocab["<pad>"] = len(vocab)
        shutil.copyfile(tmp / "source.model", tmp / "source.spm")
        shutil.copyfile(tmp / "target.model", tmp / "target.spm")
        (tmp / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False, indent=1), encoding="utf-8")
        tok = MarianTokenizer(source_spm=str(tmp / "source.spm"), target_spm=str(tmp / "target.spm"),
                              vocab=str(tmp / "vocab.json"), model_max_length=512)
        tok.save_pretrained(str(out_dir))
    marian.convert(out_dir, out_dir)


def train_tokenizers(out_dir, families=FAMILIES, root: Path = FORTUNES_DIR) -> None:
    """train_tokenizers trains the test tokenizers of the named families
    into out_dir/<family>/, from the fortunes under root.

    Marian's source model is trained on the even-numbered fortune files and
    its target model on the odd-numbered ones, so the two vocabularies
    differ as two languages' would.
    """
    out_dir = Path(out_dir)
    unknown = set(families) - set(FAMILIES)
    if unknown:
        raise ValueError(f"unknown tokenizer family {sorted(unknown)}; use one of {', '.join(FAMILIES)}")
    lines = fortunes(root=root)
    if "t5" in families:
        train_t5(out_dir / "t5", lines)
    if "bart" in families:
        train_bart(out_dir / "bart", lines)
    if "marian" in families:
        train_marian(out_dir / "marian",
                     fortunes(FORTUNE_FILES[0::2], root=root),
                     fortunes(FORTUNE_FILES[1::2], root=root))
