"""Writes the tokenizer parity goldens from the Hugging Face `tokenizers`
library, for tokenizer/parity_test.go.

For each tokenizer NAME it writes golden-NAME.jsonl, one line per line of
corpus.jsonl:
    {"text": ..., "ids": encode(text).ids (special tokens added),
     "decoded": decode(ids, skip_special_tokens=True),
     "decoded_special": decode(ids, skip_special_tokens=False)}
and golden-NAME-extra.json: vocabulary size, special ids, some token ids,
and decodes of seeded random id sequences (partial UTF-8, special and
out-of-range ids).

Ids come from the source tokenizer (tokenizer.json); text from the target
tokenizer (tokenizer_target.json when present, as Marian has).

Besides the model tokenizers under testdata/tokenizers (t5, bart, marian),
it checks three small "edge" tokenizers, edge-*.json beside this script,
that use the components those three do not (Unigram with an unknown-piece
contest, NFKC/NFD, Lowercase, Prepend, WhitespaceSplit, Metaspace
"first" without split, BPE with byte fallback, fused unknowns, subword
prefix and suffix, Bert/Template post-processors, ByteFallback, Fuse,
Strip and no decoder, added tokens with single_word, lstrip, rstrip and
normalized forms). They are trained on corpus.jsonl and written once;
--rebuild-edge writes them again.

    .venv/bin/python testdata/tokenizer/make_goldens.py
or  go test ./tokenizer -run Parity -update
"""

import argparse
import json
import os
import random

import tokenizers
from tokenizers import (AddedToken, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors,
                        trainers)

HERE = os.path.dirname(os.path.abspath(__file__))
NAMES = ["t5", "bart", "marian"]
EDGE_NAMES = ["edge-unigram", "edge-bytefallback", "edge-bpe-suffix", "edge-t5-first"]
N_RANDOM = 60
# Byte strings that are not valid UTF-8, or cut short, to decode through
# byte tokens: each maximal invalid part must become one U+FFFD.
BAD_BYTES = [b"\xe2\x82", b"\xe2\x82A", b"\xf0\x9f\x98", b"\xf0\x9f\x98\x80", b"\xed\xa0\x80",
             b"\xc0\x80", b"\xff", b"\xe0\x80\x80", b"a\x80b", b"\xf4\x90\x80\x80", b"\xc3", b"\xc3\xa9\xc3",
             b"\xe2\x82\xac\xe2", b"\xf0\x9f\x98\x80\x9f"]


def load(directory):
    src = os.path.join(directory, "tokenizer.json")
    tgt = os.path.join(directory, "tokenizer_target.json")
    source = Tokenizer.from_file(src)
    target = Tokenizer.from_file(tgt) if os.path.exists(tgt) else source
    return source, target


def train_edge(name, corpus, tokenizers_dir):
    """Builds one edge tokenizer from the corpus."""
    if name == "edge-unigram":
        t = Tokenizer(models.Unigram())
        t.normalizer = normalizers.Sequence(
            [normalizers.NFKC(), normalizers.Replace("``", '"'), normalizers.Strip(left=False, right=True)])
        t.pre_tokenizer = pre_tokenizers.Sequence(
            [pre_tokenizers.WhitespaceSplit(),
             pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="first", split=False)])
        t.train_from_iterator(corpus, trainers.UnigramTrainer(
            vocab_size=1500, special_tokens=["<unk>", "<s>", "</s>"], unk_token="<unk>", show_progress=False))
        # No piece but "qu" holds a q. It has the lowest score and "u" a
        # positive one, so [<unk>][u] (min - penalty + 3) beats [qu] (min)
        # only if the unknown penalty is under 3: tokenizers' is 10.
        data = json.loads(t.to_str())
        vocab = data["model"]["vocab"]
        low = min(score for _, score in vocab)
        vocab[:] = [p for p in vocab if "q" not in p[0].lower()] + [["qu", low]]
        for p in vocab:
            if p[0] == "u":
                p[1] = 3.0
        t = Tokenizer.from_str(json.dumps(data))
        t.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="first")
        t.post_processor = processors.TemplateProcessing(
            single="<s> $A </s>", special_tokens=[("<s>", 1), ("</s>", 2)])
        t.add_tokens([AddedToken("[NL]", single_word=True, normalized=True),
                      AddedToken("\uff46\uff4f\uff4f", normalized=True)])
        t.add_special_tokens([AddedToken("<sep>", lstrip=True, rstrip=True, normalized=False)])
        return t
    if name == "edge-bytefallback":
        t = Tokenizer(models.BPE(unk_token="<unk>", fuse_unk=True, byte_fallback=True))
        t.normalizer = normalizers.Sequence([normalizers.Prepend("\u2581"), normalizers.Replace(" ", "\u2581")])
        t.decoder = decoders.Sequence([decoders.Replace("\u2581", " "), decoders.ByteFallback(), decoders.Fuse(),
                                       decoders.Strip(" ", 1, 0)])
        t.train_from_iterator(corpus, trainers.BpeTrainer(
            vocab_size=500, special_tokens=["<unk>", "<s>", "</s>"], limit_alphabet=60, show_progress=False))
        # Byte tokens for all bytes but UTF-8 continuation bytes: unknown
        # ASCII characters fall back to bytes, others to <unk> (fused), and
        # lead bytes alone decode to U+FFFD.
        data = json.loads(t.to_str())
        vocab = data["model"]["vocab"]
        for b in list(range(0x80)) + list(range(0xC0, 0x100)):
            vocab.setdefault("<0x%02X>" % b, len(vocab))
        t = Tokenizer.from_str(json.dumps(data))
        t.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
        t.add_special_tokens([AddedToken("<sep>", rstrip=True, normalized=False)])
        return t
    if name == "edge-bpe-suffix":
        t = Tokenizer(models.BPE(unk_token="[UNK]", continuing_subword_prefix="##", end_of_word_suffix="</w>"))
        t.normalizer = normalizers.Sequence([normalizers.Lowercase(), normalizers.NFD()])
        t.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
        t.train_from_iterator(corpus, trainers.BpeTrainer(
            vocab_size=500, special_tokens=["[UNK]", "[CLS]", "[SEP]"], limit_alphabet=50,
            continuing_subword_prefix="##", end_of_word_suffix="</w>", show_progress=False))
        t.post_processor = processors.BertProcessing(("[SEP]", 2), ("[CLS]", 1))
        return t
    if name == "edge-t5-first":
        # The T5 test tokenizer as transformers writes it with legacy=False
        # (prepend_scheme "first"), and with a left Strip as well.
        with open(os.path.join(tokenizers_dir, "t5", "tokenizer.json"), encoding="utf-8") as f:
            data = json.load(f)
        for n in data["normalizer"]["normalizers"]:
            if n["type"] == "Strip":
                n["strip_left"] = True
        data["pre_tokenizer"]["prepend_scheme"] = "first"
        data["decoder"]["prepend_scheme"] = "first"
        return Tokenizer.from_str(json.dumps(data))
    raise ValueError(name)


def byte_sequences(target):
    """Id sequences spelling BAD_BYTES with byte tokens, when the target has them."""
    byte_level = {}
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("\xa1"), ord("\xac") + 1)) + list(range(ord("\xae"), ord("\xff") + 1))
    cs, n = bs[:], 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    byte_level = {b: chr(c) for b, c in zip(bs, cs)}
    out = []
    for raw in BAD_BYTES:
        for spell in (lambda b: byte_level[b], lambda b: "<0x%02X>" % b):
            ids = [target.token_to_id(spell(b)) for b in raw]
            if all(i is not None for i in ids):
                out.append(ids)
    return out


def random_sequences(target, seed):
    rng = random.Random(seed)
    size = target.get_vocab_size(with_added_tokens=True)
    specials = sorted(t.content for t in target.get_added_tokens_decoder().values() if t.special)
    special_ids = [target.token_to_id(t) for t in specials]
    out = []
    for _ in range(N_RANDOM):
        n = rng.randint(1, 12)
        ids = []
        for _ in range(n):
            r = rng.random()
            if r < 0.1 and special_ids:
                ids.append(rng.choice(special_ids))
            elif r < 0.15:
                ids.append(size + rng.randint(0, 1000))  # names no token
            else:
                ids.append(rng.randrange(size))
        out.append(ids)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tokenizers", default=os.path.join(HERE, "..", "tokenizers"),
                    help="directory holding t5/, bart/, marian/ (default: testdata/tokenizers)")
    ap.add_argument("--corpus", default=os.path.join(HERE, "corpus.jsonl"))
    ap.add_argument("--out", default=HERE)
    ap.add_argument("--rebuild-edge", action="store_true", help="train the edge-*.json tokenizers again")
    args = ap.parse_args()

    with open(args.corpus, encoding="utf-8") as f:
        corpus = [json.loads(line) for line in f if line.strip()]

    jobs = [(name, os.path.join(args.tokenizers, name)) for name in NAMES]
    for name in EDGE_NAMES:
        path = os.path.join(HERE, name + ".json")
        if args.rebuild_edge or not os.path.exists(path):
            train_edge(name, corpus, args.tokenizers).save(path)
            print("wrote", path)
        jobs.append((name, path))

    for i, (name, where) in enumerate(jobs):
        if where.endswith(".json"):
            source = target = Tokenizer.from_file(where)
        else:
            source, target = load(where)
        path = os.path.join(args.out, "golden-%s.jsonl" % name)
        with open(path, "w", encoding="utf-8") as f:
            for text in corpus:
                ids = source.encode(text).ids
                f.write(json.dumps({
                    "text": text,
                    "ids": ids,
                    "decoded": target.decode(ids, skip_special_tokens=True),
                    "decoded_special": target.decode(ids, skip_special_tokens=False),
                }, ensure_ascii=False) + "\n")
        specials = sorted(t.content for t in target.get_added_tokens_decoder().values() if t.special)
        probe = specials + ["</s>", "<s>", "<pad>", "<unk>", "▁", "Ġ", "the", "▁the", "Ġthe", "not-a-token-xyz"]
        extra = {
            "tokenizers_version": tokenizers.__version__,
            "vocab_size": target.get_vocab_size(with_added_tokens=True),
            "special_ids": sorted(target.token_to_id(t) for t in specials),
            "token_ids": {t: target.token_to_id(t) for t in sorted(set(probe))},
            "random_decode": [
                {"ids": ids,
                 "decoded": target.decode(ids, skip_special_tokens=True),
                 "decoded_special": target.decode(ids, skip_special_tokens=False)}
                for ids in random_sequences(target, seed=100 + i) + byte_sequences(target)
            ],
        }
        with open(os.path.join(args.out, "golden-%s-extra.json" % name), "w", encoding="utf-8") as f:
            json.dump(extra, f, ensure_ascii=False, indent=1)
            f.write("\n")
        print("wrote %s (%d lines)" % (path, len(corpus)))


if __name__ == "__main__":
    main()
