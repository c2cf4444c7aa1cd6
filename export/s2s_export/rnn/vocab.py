"""vocab builds the two vocabularies of the G2P model and their tokenizer.json
files, using only components the Go tokenizer package implements:

  source (characters in): a BPE model with no merges over the letters a-z and
  the apostrophe, so every character is one token; normalizer Strip + Lowercase;
  no pre-tokenizer (a space or any other character becomes <unk>); a
  TemplateProcessing post-processor appends </s>.

  target (phonemes out): a Unigram model whose pieces are the 39 phonemes,
  each scored -1 so that a whole phoneme always beats two shorter ones (NG
  over N + G); a WhitespaceSplit pre-tokenizer; no decoder, so decoding joins
  the phonemes with spaces, as tokenizers does.

Both start with the same special tokens at the same ids, so the source pad
(which the Go host takes from the target side) is the same id:

  0 <pad>   1 </s>   2 <unk>   (target only:) 3 <s>, the decoder start token
"""

from __future__ import annotations

import string
from pathlib import Path

from ..errors import ExportError

PAD, EOS, UNK, BOS = 0, 1, 2, 3
SPECIALS = ["<pad>", "</s>", "<unk>"]
TARGET_SPECIALS = SPECIALS + ["<s>"]
LETTERS = ["'"] + list(string.ascii_lowercase)


def source_tokens() -> list[str]:
    """source_tokens returns the source vocabulary in id order."""
    return SPECIALS + LETTERS


def target_tokens(phones: list[str]) -> list[str]:
    """target_tokens returns the target vocabulary in id order: the specials, then phones."""
    return TARGET_SPECIALS + list(phones)


def source_tokenizer():
    """source_tokenizer returns the character tokenizer (a tokenizers.Tokenizer)."""
    from tokenizers import Tokenizer, models, normalizers, processors

    vocab = {t: i for i, t in enumerate(source_tokens())}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<unk>"))
    tok.normalizer = normalizers.Sequence([normalizers.Strip(), normalizers.Lowercase()])
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", EOS)])
    tok.add_special_tokens(SPECIALS)
    return tok


def target_tokenizer(phones: list[str]):
    """target_tokenizer returns the phoneme tokenizer (a tokenizers.Tokenizer)."""
    from tokenizers import Tokenizer, models, pre_tokenizers

    tok = Tokenizer(models.Unigram([(t, -1.0) for t in target_tokens(phones)], unk_id=UNK, byte_fallback=False))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.add_special_tokens(TARGET_SPECIALS)
    return tok


class Vocab:
    """Vocab encodes words and pronunciations with the two tokenizers."""

    def __init__(self, phones: list[str]):
        self.phones = list(phones)
        self.source = source_tokenizer()
        self.target = target_tokenizer(self.phones)
        self.source_size = self.source.get_vocab_size()
        self.target_size = self.target.get_vocab_size()

    @classmethod
    def from_files(cls, source_path: Path, target_path: Path) -> "Vocab":
        """from_files loads a model directory's tokenizers, checking they are
        the two this module writes."""
        from tokenizers import Tokenizer

        v = cls.__new__(cls)
        v.source = Tokenizer.from_file(str(source_path))
        v.target = Tokenizer.from_file(str(target_path))
        tv = v.target.get_vocab()
        v.phones = [t for t, _ in sorted(tv.items(), key=lambda kv: kv[1])][len(TARGET_SPECIALS):]
        v.source_size = v.source.get_vocab_size()
        v.target_size = v.target.get_vocab_size()
        for name, tok, specials in (("source", v.source, SPECIALS), ("target", v.target, TARGET_SPECIALS)):
            for i, t in enumerate(specials):
                if tok.token_to_id(t) != i:
                    raise ExportError(f"{name} tokenizer: {t} is not id {i}; re-train or re-export the model with g2p-train")
        return v

    def encode_word(self, word: str) -> list[int]:
        """encode_word returns the source ids of word, </s> included."""
        return self.source.encode(word).ids

    def encode_pron(self, pron) -> list[int]:
        """encode_pron returns the target ids of a pronunciation (phonemes, or
        one space-separated string), without <s> or </s>; an unknown phoneme
        is an error."""
        text = pron if isinstance(pron, str) else " ".join(pron)
        ids = self.target.encode(text).ids
        if UNK in ids:
            raise ExportError(f"pronunciation {text!r} has a phoneme outside the vocabulary; use the 39 stress-free CMUdict phonemes")
        return ids

    def decode_pron(self, ids) -> str:
        """decode_pron returns the phonemes of ids joined by spaces, specials dropped."""
        return self.target.decode(list(ids), skip_special_tokens=True)

    def save(self, out: Path, source_name: str = "tokenizer.json", target_name: str = "tokenizer_target.json") -> None:
        """save writes both tokenizer.json files into out."""
        self.source.save(str(out / source_name))
        self.target.save(str(out / target_name))
