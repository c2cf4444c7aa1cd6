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

    .venv/bin/python testdata/tokenizer/make_goldens.py
or  go test ./tokenizer -run Parity -update
"""

import argparse
import json
import os
import random

import tokenizers
from tokenizers import Tokenizer

HERE = os.path.dirname(os.path.abspath(__file__))
NAMES = ["t5", "bart", "marian"]
N_RANDOM = 60


def load(directory):
    src = os.path.join(directory, "tokenizer.json")
    tgt = os.path.join(directory, "tokenizer_target.json")
    source = Tokenizer.from_file(src)
    target = Tokenizer.from_file(tgt) if os.path.exists(tgt) else source
    return source, target


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
    args = ap.parse_args()

    with open(args.corpus, encoding="utf-8") as f:
        corpus = [json.loads(line) for line in f if line.strip()]

    for i, name in enumerate(NAMES):
        source, target = load(os.path.join(args.tokenizers, name))
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
                for ids in random_sequences(target, seed=100 + i)
            ],
        }
        with open(os.path.join(args.out, "golden-%s-extra.json" % name), "w", encoding="utf-8") as f:
            json.dump(extra, f, ensure_ascii=False, indent=1)
            f.write("\n")
        print("wrote %s (%d lines)" % (path, len(corpus)))


if __name__ == "__main__":
    main()
