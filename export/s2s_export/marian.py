"""marian converts a Marian tokenizer (two SentencePiece models and a
vocab.json) into Hugging Face ``tokenizers`` files the Go host reads.

Marian checkpoints ship ``source.spm``, ``target.spm`` and ``vocab.json``
(plus ``target_vocab.json`` when ``separate_vocabs`` is set) and no
``tokenizer.json``; transformers has only the slow, Python
``MarianTokenizer`` for them. convert writes ``tokenizer.json`` (source side,
to encode inputs) and ``tokenizer_target.json`` (target side, to decode
outputs), whose ids are Marian's (vocab.json ids, not the SentencePiece
models' own ids).

    python -m s2s_export marian-tokenizer SRC_DIR OUT_DIR
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from .errors import ExportError

SOURCE_NAME = "tokenizer.json"
TARGET_NAME = "tokenizer_target.json"

EOS = "</s>"
UNK = "<unk>"
PAD = "<pad>"

# SentencePiece piece types (sentencepiece_model.proto).
_NORMAL, _UNKNOWN, _CONTROL, _USER_DEFINED, _UNUSED, _BYTE = 1, 2, 3, 4, 5, 6


class MarianTokenizerError(ExportError, ValueError):
    """MarianTokenizerError says why a Marian tokenizer cannot be converted."""


def _load_json(path: Path):
    """_load_json reads a JSON file, raising MarianTokenizerError if it is missing or broken."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise MarianTokenizerError(
            f"{path} is missing; pass the directory of a Marian checkpoint (source.spm, target.spm, vocab.json)"
        ) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise MarianTokenizerError(f"{path} is not valid JSON ({e}); restore it from the checkpoint") from None


def _load_vocab(path: Path) -> list[str]:
    """_load_vocab returns the tokens of a Marian vocab.json indexed by id."""
    vocab = _load_json(path)
    if not isinstance(vocab, dict) or not all(isinstance(v, int) for v in vocab.values()):
        raise MarianTokenizerError(f"{path} must map tokens to integer ids; restore it from the checkpoint")
    tokens: list[str | None] = [None] * len(vocab)
    for tok, i in vocab.items():
        if not 0 <= i < len(vocab) or tokens[i] is not None:
            raise MarianTokenizerError(
                f"{path}: ids must be 0..{len(vocab) - 1}, each once; id {i} ({tok!r}) breaks that"
            )
        tokens[i] = tok
    for special in (EOS, UNK, PAD):
        if special not in vocab:
            raise MarianTokenizerError(f"{path} has no {special} token; Marian vocabularies need {EOS}, {UNK} and {PAD}")
    return tokens


def _load_spm(path: Path):
    """_load_spm reads a SentencePiece model proto and refuses what convert cannot handle."""
    from sentencepiece import sentencepiece_model_pb2 as pb

    if not path.is_file():
        raise MarianTokenizerError(
            f"{path} is missing; pass the directory of a Marian checkpoint (source.spm, target.spm, vocab.json)"
        )
    proto = pb.ModelProto()
    try:
        proto.ParseFromString(path.read_bytes())
    except Exception as e:  # protobuf raises its own DecodeError
        raise MarianTokenizerError(f"{path} is not a SentencePiece model ({e}); restore it from the checkpoint") from None
    if proto.trainer_spec.model_type != 1:  # UNIGRAM
        raise MarianTokenizerError(
            f"{path} is not a Unigram SentencePiece model (type {proto.trainer_spec.model_type}); "
            "only Unigram models, which all Marian checkpoints use, can be converted"
        )
    if proto.trainer_spec.byte_fallback:
        raise MarianTokenizerError(f"{path} uses byte fallback, which MarianTokenizer does not support")
    if any(p.type == _USER_DEFINED for p in proto.pieces):
        raise MarianTokenizerError(
            f"{path} has user-defined pieces, which this converter does not support; convert it by hand"
        )
    if not proto.normalizer_spec.escape_whitespaces:
        raise MarianTokenizerError(f"{path} does not escape whitespace; this converter needs the default (escaped)")
    return proto


def build(spm_path, vocab_tokens: list[str]):
    """build returns a ``tokenizers.Tokenizer`` equal to MarianTokenizer on
    one side: the SentencePiece model at spm_path, with ids from
    vocab_tokens (the vocab.json tokens indexed by id).

    The model is a Unigram over all of vocab.json. Pieces of this side's
    SentencePiece model keep their scores. The other pieces (the other
    side's, and the specials) score below any of this side's pieces times
    their length, so they are used only where this side's model finds no
    piece: there MarianTokenizer takes SentencePiece's surface text of the
    unknown run and looks it up in vocab.json, which the low scores mimic.
    """
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, normalizers, pre_tokenizers, processors
    from tokenizers.models import Unigram

    proto = _load_spm(Path(spm_path))
    scores = {p.piece: p.score for p in proto.pieces if p.type == _NORMAL}
    if not scores:
        raise MarianTokenizerError(f"{spm_path} has no pieces; restore it from the checkpoint")
    per_char = min(scores.values()) - 10.0
    vocab = []
    for tok in vocab_tokens:
        if tok in scores:
            vocab.append((tok, scores[tok]))
        else:
            vocab.append((tok, per_char * max(len(tok), 1) - 1.0))
    unk_id = vocab_tokens.index(UNK)
    tok = Tokenizer(Unigram(vocab, unk_id=unk_id, byte_fallback=False))

    spec = proto.normalizer_spec
    norm = []
    if spec.precompiled_charsmap:
        norm.append(normalizers.Precompiled(spec.precompiled_charsmap))
    if spec.remove_extra_whitespaces:
        norm += [normalizers.Replace(Regex(" {2,}"), " "), normalizers.Strip(left=True, right=True)]
    if norm:
        tok.normalizer = normalizers.Sequence(norm)
    scheme = "always" if spec.add_dummy_prefix else "never"
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme=scheme, split=True)
    # MarianTokenizer.decode strips the text's surrounding spaces; the
    # regex does it after the pieces are fused into one string.
    tok.decoder = decoders.Sequence([
        decoders.Metaspace(replacement="\u2581", prepend_scheme=scheme, split=True),
        decoders.Fuse(),
        decoders.Replace(Regex("^ +| +$"), ""),
    ])
    eos_id = vocab_tokens.index(EOS)
    tok.post_processor = processors.TemplateProcessing(
        single=f"$A:0 {EOS}:0", pair=f"$A:0 $B:1 {EOS}:1", special_tokens=[(EOS, eos_id)]
    )
    tok.add_special_tokens([AddedToken(t, normalized=False, special=True) for t in (EOS, UNK, PAD)])
    codes = [t for t in vocab_tokens if t.startswith(">>") and t.endswith("<<")]
    if codes:
        tok.add_tokens([AddedToken(t, normalized=False, special=False) for t in codes])
    if tok.get_vocab_size(with_added_tokens=True) != len(vocab_tokens):
        raise MarianTokenizerError(f"converted vocabulary has {tok.get_vocab_size(with_added_tokens=True)} "
                                   f"tokens, vocab.json {len(vocab_tokens)}; report this with the checkpoint")
    return tok


def convert(src_dir, out_dir) -> tuple[str, str]:
    """convert writes tokenizer.json (source side) and
    tokenizer_target.json (target side) for the Marian checkpoint in
    src_dir into out_dir and returns their file names.

    The files give the same ids as transformers' slow MarianTokenizer
    (``tok(text)["input_ids"]``, ``</s>`` appended) and decode to the same
    text (``tok.decode(ids, skip_special_tokens=True)``), with these
    exceptions, all rare in practice:

    - Unknown runs. Where the side's SentencePiece model has no piece for a
      run of characters, it emits the run as one unknown piece and
      MarianTokenizer looks its text up in vocab.json: the token if there,
      else ``<unk>``. tokenizer.json matches this when the run is itself a
      vocab.json token or contains none; when only part of the run is a
      vocab.json token (a piece of the other side's model), MarianTokenizer
      gives one ``<unk>`` and tokenizer.json that part's id.
    - Stacked combining marks. The tokenizers library's Precompiled
      normalizer looks up a whole grapheme shorter than 6 bytes, and when
      only its start has a rule it replaces the whole grapheme: "e" with
      two combining acutes becomes "\u00e9" where SentencePiece gives
      "\u00e9" plus one acute. A grapheme of 6 bytes or more it looks up
      character by character, so "e" with three acutes is not composed at
      all. T5's tokenizer.json (made by transformers) does the same.
    - Moses punctuation. With ``sacremoses`` installed MarianTokenizer
      first applies MosesPunctNormalizer; these files do not (s2s's
      requirements do not install sacremoses).
    - Language codes (``>>xx<<`` tokens). MarianTokenizer recognizes one
      only at the start of the text; tokenizer.json anywhere.
    - Control pieces (such as ``<s>``) in vocab.json decode to nothing in
      MarianTokenizer and to their text here.
    """
    src_dir, out_dir = Path(src_dir), Path(out_dir)
    if not src_dir.is_dir():
        raise MarianTokenizerError(f"{src_dir} is not a directory; pass the Marian checkpoint's directory")
    config = {}
    if (src_dir / "tokenizer_config.json").is_file():
        config = _load_json(src_dir / "tokenizer_config.json")
    source_vocab = _load_vocab(src_dir / "vocab.json")
    target_vocab = source_vocab
    if config.get("separate_vocabs"):
        target_vocab = _load_vocab(src_dir / "target_vocab.json")
    source = build(src_dir / "source.spm", source_vocab)
    target = build(src_dir / "target.spm", target_vocab)
    out_dir.mkdir(parents=True, exist_ok=True)
    source.save(str(out_dir / SOURCE_NAME))
    target.save(str(out_dir / TARGET_NAME))
    return SOURCE_NAME, TARGET_NAME


def add_arguments(p: argparse.ArgumentParser) -> None:
    """add_arguments declares the arguments of ``marian-tokenizer``."""
    p.add_argument("src", metavar="SRC", help="Marian checkpoint directory (source.spm, target.spm, vocab.json)")
    p.add_argument("out", metavar="OUT", help="directory to write tokenizer.json and tokenizer_target.json into")


def run(args: argparse.Namespace) -> int:
    """run converts a Marian checkpoint's SentencePiece models into tokenizer.json and tokenizer_target.json."""
    names = convert(args.src, args.out)
    print(" ".join(str(Path(args.out) / n) for n in names))
    return 0
