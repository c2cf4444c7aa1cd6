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
    """_write_lines writes lines to path, one a line, UTF-8."""
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def _train_spm(lines: list[str], prefix: Path, vocab_size: int, **ids) -> None:
    """_train_spm trains a SentencePiece Unigram model on lines into
    prefix.model, single-threaded and with normalization_rules, so the
    same lines give the same bytes; ids are the trainer's special-id options."""
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


# CALIBRATION holds the inputs make_tiny measures greedy output lengths on.
CALIBRATION = (
    "A watched pot never boils.",
    "The early bird catches the worm, but the second mouse gets the cheese.",
    "Never trust a computer you cannot throw out of a window.",
    "Time flies like an arrow; fruit flies like a banana.",
    "If at first you don't succeed, destroy all evidence that you tried.",
    "Everything should be made as simple as possible, but not simpler.",
    "Do not meddle in the affairs of wizards.",
    "There is no place like home.",
    "A day without sunshine is like night.",
    "Beware of bugs in the above code; I have only proved it correct, not tried it.",
    "You will be successful in your work.",
    "The best way to predict the future is to invent it.",
    "Hello.",
    "It is a truth universally acknowledged that a single man in possession of a good fortune must be in want of a wife.",
    "Why?",
    "Measure twice, cut once.",
)

# CALIBRATION_MAX is the max_new_tokens of make_tiny's greedy runs.
CALIBRATION_MAX = 24


def repo_root() -> Path:
    """repo_root returns the s2s checkout this package is installed from."""
    return Path(__file__).resolve().parents[2]


def _config(family: str, vocab: int, d_model: int, layers: int, heads: int, ffn: int, positions: int, tok):
    """_config returns the transformers config of a tiny model of family."""
    if d_model % heads:
        raise ValueError(f"d_model {d_model} is not a multiple of heads {heads}; pick sizes that divide")
    if family == "t5":
        from transformers import T5Config

        # T5 v1.1's layout (gated GELU, untied head), as flan-t5 uses.
        return T5Config(
            vocab_size=vocab, d_model=d_model, d_kv=d_model // heads, d_ff=ffn, num_layers=layers,
            num_decoder_layers=layers, num_heads=heads, relative_attention_num_buckets=16,
            relative_attention_max_distance=64, dropout_rate=0.0, feed_forward_proj="gated-gelu",
            tie_word_embeddings=False, pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id,
            decoder_start_token_id=tok.pad_token_id, initializer_factor=1.0,
        )
    common = dict(
        vocab_size=vocab, d_model=d_model, encoder_layers=layers, decoder_layers=layers,
        encoder_attention_heads=heads, decoder_attention_heads=heads, encoder_ffn_dim=ffn, decoder_ffn_dim=ffn,
        max_position_embeddings=positions, dropout=0.0, attention_dropout=0.0, activation_dropout=0.0,
        init_std=0.1, tie_word_embeddings=False,
    )
    if family == "bart":
        from transformers import BartConfig

        # BartConfig's own defaults stand: bos 0, pad 1, eos 2, decoder
        # start 2 and forced_eos_token_id 2.
        return BartConfig(**common)
    from transformers import MarianConfig

    pad = tok.pad_token_id
    return MarianConfig(**common, pad_token_id=pad, eos_token_id=tok.eos_token_id, decoder_start_token_id=pad,
                        forced_eos_token_id=tok.eos_token_id, activation_function="swish",
                        share_encoder_decoder_embeddings=True)


def _load_tokenizer(family: str, tokenizer_dir: Path):
    """_load_tokenizer returns the transformers tokenizer of family from tokenizer_dir."""
    import warnings

    from transformers import BartTokenizerFast, MarianTokenizer, T5TokenizerFast

    if not tokenizer_dir.is_dir():
        raise FileNotFoundError(
            f"{tokenizer_dir} is missing; pass --tokenizer-dir or regenerate it with `python -m s2s_export tiny-tokenizers`"
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cls = {"t5": T5TokenizerFast, "bart": BartTokenizerFast, "marian": MarianTokenizer}[family]
        return cls.from_pretrained(str(tokenizer_dir))


def _shape_weights(family: str, model) -> None:
    """_shape_weights rescales a fresh random model so that greedy search
    depends on the input and on the previous tokens instead of repeating
    one token whatever the input.

    BART and Marian (post-norm) otherwise let the decoder ignore the
    encoder: their cross-attention queries and keys are scaled x6 (sharper
    attention on source positions) and the cross-attention output
    projections x5 (BART) or x2 (Marian); Marian's shared embeddings x10,
    or the sinusoidal positions drown the tokens. T5 (pre-norm, gated GELU)
    needs less: cross-attention queries, keys and output x3, so long inputs
    do not all begin with the same token.
    """
    import torch

    with torch.no_grad():
        if family == "t5":
            for block in model.decoder.block:
                cross = block.layer[1].EncDecAttention
                for w in (cross.q.weight, cross.k.weight, cross.o.weight):
                    w.mul_(3.0)
            return
        if family == "bart":
            # With tie_word_embeddings false, transformers 4.57 saves BART's
            # shared embedding once but does not tie the encoder's and
            # decoder's embed_tokens to it on load, which leaves them random.
            # Separate copies are saved and loaded as they are.
            for stack in (model.model.encoder, model.model.decoder):
                stack.embed_tokens.weight = torch.nn.Parameter(model.model.shared.weight.detach().clone())
        out_scale = 5.0 if family == "bart" else 2.0
        if family == "marian":
            model.get_input_embeddings().weight.mul_(10.0)
        for layer in model.model.decoder.layers:
            layer.encoder_attn.q_proj.weight.mul_(6.0)
            layer.encoder_attn.k_proj.weight.mul_(6.0)
            layer.encoder_attn.out_proj.weight.mul_(out_scale)


def greedy_lengths(model, tok, texts=None, max_new_tokens: int = CALIBRATION_MAX) -> list[int]:
    """greedy_lengths returns the number of tokens greedy search generates
    for each text (default CALIBRATION; EOS included), the decoder start
    token not counted."""
    import torch

    if texts is None:
        texts = CALIBRATION
    out = []
    with torch.no_grad():
        for text in texts:
            enc = tok(text, return_tensors="pt")
            ids = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False, num_beams=1)[0, 1:]
            pad = model.generation_config.pad_token_id
            out.append(int((ids != pad).sum()) if pad is not None else len(ids))
    return out


def _length_score(lengths: list[int]) -> float:
    """_length_score rates greedy lengths: each output that ends with EOS
    after 4 or more tokens counts 1, each distinct such length 1 more, each
    output cut at CALIBRATION_MAX 0.25, and each output of 3 tokens or fewer
    -1.5 (they test little)."""
    ended = [n for n in lengths if 4 <= n < CALIBRATION_MAX]
    short = sum(1 for n in lengths if n <= 3)
    cut = sum(1 for n in lengths if n >= CALIBRATION_MAX)
    return len(ended) + len(set(ended)) + 0.25 * cut - 1.5 * short


def _calibrate_eos(model, tok, eos: int) -> float:
    """_calibrate_eos scales the EOS row of the untied output projection
    (the larger the row, the likelier EOS wins) to the factor among 1..64
    whose greedy lengths on CALIBRATION rate best by _length_score, and
    returns the factor."""
    import torch

    head = model.get_output_embeddings().weight
    row = head[eos].detach().clone()

    def set_scale(scale: float) -> None:
        with torch.no_grad():
            head[eos] = row * scale

    best, best_score = 1.0, float("-inf")
    for k in range(49):  # 1 .. 64, geometric steps of 2**0.125
        scale = 2.0 ** (k / 8)
        set_scale(scale)
        score = _length_score(greedy_lengths(model, tok))
        if score > best_score:
            best, best_score = scale, score
    set_scale(best)
    return best


def make_tiny(family: str, out_dir, seed: int, *, d_model: int = 32, layers: int = 2, heads: int = 4,
              ffn: int = 64, positions: int = 256, tokenizer_dir=None) -> dict:
    """make_tiny writes a tiny random-weight checkpoint of family (t5, bart
    or marian) to out_dir with save_pretrained: model, generation config and
    the test tokenizer of testdata/tokenizers/<family> (or tokenizer_dir).

    The weights come from torch.manual_seed(seed), are reshaped by
    _shape_weights, and the EOS output row is scaled by _calibrate_eos so
    greedy outputs on CALIBRATION mostly end with EOS after 5 to 23 tokens
    (max_new_tokens CALIBRATION_MAX). The generation config is transformers'
    default for the config (BART keeps forced_eos_token_id); Marian's also
    forbids generating its pad token (bad_words_ids), as opus-mt's do.
    It returns a summary: family, seed, sizes, eos_scale and the greedy
    lengths on CALIBRATION.
    """
    import torch
    from transformers import GenerationConfig

    if family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}; use one of {', '.join(FAMILIES)}")
    for name, v in (("d_model", d_model), ("layers", layers), ("heads", heads), ("ffn", ffn), ("positions", positions)):
        if not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} is {v!r}; give a positive integer")
    out_dir = Path(out_dir)
    tok = _load_tokenizer(family, Path(tokenizer_dir) if tokenizer_dir else repo_root() / "testdata" / "tokenizers" / family)
    config = _config(family, len(tok), d_model, layers, heads, ffn, positions, tok)

    from transformers import BartForConditionalGeneration, MarianMTModel, T5ForConditionalGeneration

    cls = {"t5": T5ForConditionalGeneration, "bart": BartForConditionalGeneration, "marian": MarianMTModel}[family]
    # One thread: the same reduction order on every machine, and no
    # oversubscription on the shared 2-core hosts.
    torch.set_num_threads(1)
    torch.manual_seed(seed)
    model = cls(config).eval()
    gen = GenerationConfig.from_model_config(config)
    if family == "marian":
        gen.bad_words_ids = [[config.pad_token_id]]
    model.generation_config = gen
    _shape_weights(family, model)
    scale = _calibrate_eos(model, tok, config.eos_token_id)
    lengths = greedy_lengths(model, tok)

    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out_dir))
    tok.save_pretrained(str(out_dir))
    reloaded = cls.from_pretrained(str(out_dir)).eval()
    if greedy_lengths(reloaded, tok) != lengths:
        raise RuntimeError(f"the checkpoint saved in {out_dir} does not reload to the same model; "
                           "check the transformers version (4.57 expected)")
    return {"family": family, "seed": seed, "d_model": d_model, "layers": layers, "heads": heads, "ffn": ffn,
            "positions": positions, "vocab_size": len(tok), "eos_scale": round(scale, 4), "greedy_lengths": lengths}


def add_arguments(p: argparse.ArgumentParser) -> None:
    """add_arguments declares the arguments of ``tiny``."""
    p.add_argument("family", choices=FAMILIES, help="architecture family")
    p.add_argument("out", metavar="OUT_DIR", help="checkpoint directory to write (save_pretrained layout)")
    p.add_argument("--seed", type=int, required=True, help="torch.manual_seed for the random weights")
    p.add_argument("--d-model", type=int, default=32, help="hidden size (default 32)")
    p.add_argument("--layers", type=int, default=2, help="encoder and decoder layers (default 2)")
    p.add_argument("--heads", type=int, default=4, help="attention heads (default 4)")
    p.add_argument("--ffn", type=int, default=64, help="feed-forward size (default 64)")
    p.add_argument("--positions", type=int, default=256, help="BART/Marian max_position_embeddings (default 256)")
    p.add_argument("--tokenizer-dir", default=None, help="tokenizer files (default testdata/tokenizers/FAMILY)")
    p.add_argument("--force", action="store_true", help="replace OUT_DIR if it exists and is not empty")


def run(args: argparse.Namespace) -> int:
    """run makes a tiny random-weight T5, BART or Marian checkpoint from a seed."""
    from .errors import ExportError

    out = Path(args.out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        if not args.force or not out.is_dir():
            raise ExportError(f"{out} exists and is not an empty directory; pass --force to replace it")
        shutil.rmtree(out)
    try:
        summary = make_tiny(args.family, out, args.seed, d_model=args.d_model, layers=args.layers, heads=args.heads,
                            ffn=args.ffn, positions=args.positions, tokenizer_dir=args.tokenizer_dir)
    except (ValueError, FileNotFoundError) as e:
        raise ExportError(str(e)) from None
    print(json.dumps(summary))
    return 0


def add_tokenizer_arguments(p: argparse.ArgumentParser) -> None:
    """add_tokenizer_arguments declares the arguments of ``tiny-tokenizers``."""
    p.add_argument("out", metavar="OUT_DIR", help="directory to write t5/, bart/ and marian/ into")
    p.add_argument("--family", action="append", choices=FAMILIES, help="train only this family (repeatable)")
    p.add_argument("--fortunes", default=str(FORTUNES_DIR), help=f"fortune texts (default {FORTUNES_DIR})")


def run_tokenizers(args: argparse.Namespace) -> int:
    """run_tokenizers trains the test tokenizers (T5, BART, Marian) on Debian's fortunes."""
    from .errors import ExportError

    try:
        train_tokenizers(args.out, families=args.family or FAMILIES, root=Path(args.fortunes))
    except (ValueError, FileNotFoundError) as e:
        raise ExportError(str(e)) from None
    return 0
