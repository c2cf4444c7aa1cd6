"""evaluate scores G2P output: word error rate (a word is right when the
prediction equals any of its reference pronunciations) and phoneme error
rate (the edit distance to the closest reference, summed over words, over
the summed lengths of those references).
"""

from __future__ import annotations

from . import data  # stdlib only, like this module's top level (bench/g2p_peers.py imports it without torch)

# MAX_LENGTH is generation_config.json's max_length: the decoder start token
# plus up to 39 generated tokens, </s> included (the longest CMUdict
# pronunciation has 28 phonemes).
MAX_LENGTH = 40
MAX_NEW_TOKENS = MAX_LENGTH - 1


def edit_distance(a, b) -> int:
    """edit_distance returns the Levenshtein distance of two sequences."""
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        cur = [i]
        for j, y in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y)))
        prev = cur
    return prev[-1]


def score_word(hyp, refs) -> tuple[bool, int, int]:
    """score_word returns (correct, edits, reference length) of one prediction
    against the closest of its references (fewest edits; on a tie, the shorter
    reference, then the first)."""
    best = None
    for r in refs:
        d = edit_distance(hyp, r)
        key = (d, len(r))
        if best is None or key < best[0]:
            best = (key, r)
    (d, n), _ = best
    return d == 0, d, n


def error_rates(hyps, refs) -> tuple[float, float]:
    """error_rates returns (WER, PER) of hyps (phoneme lists) against refs
    (lists of phoneme lists), as fractions."""
    if len(hyps) != len(refs) or not hyps:
        raise ValueError(f"error_rates: {len(hyps)} predictions for {len(refs)} words; pass one per word")
    wrong = edits = length = 0
    for h, r in zip(hyps, refs):
        ok, d, n = score_word(list(h), [list(x) for x in r])
        wrong += not ok
        edits += d
        length += n
    return wrong / len(hyps), edits / length


def _phonemes(voc, ids) -> list[str]:
    """_phonemes returns the phonemes of generated ids (specials dropped)."""
    return voc.decode_pron(ids).split()


def add_eval_arguments(p) -> None:
    """add_eval_arguments declares the arguments of `g2p-eval`."""
    p.add_argument("dir", metavar="MODEL_DIR", help="a g2p model directory (e.g. models/g2p-en)")
    p.add_argument("--words", default=None, help="word<TAB>pron | pron file to score (default MODEL_DIR/test.tsv)")
    p.add_argument("--beams", default="1,5", help="comma-separated num_beams values (default 1,5)")
    p.add_argument("--limit", type=int, default=0, help="score the first N words only")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")


def run_eval(args) -> int:
    """run_eval prints the PyTorch model's word and phoneme error rates (greedy, beam search) on the test split."""
    import time
    from pathlib import Path

    import torch

    from ..errors import ExportError
    from . import data, export, search

    torch.set_num_threads(max(1, args.threads))
    d = Path(args.dir)
    model, voc, _ = export.load_model(d)
    words = Path(args.words) if args.words else d / "test.tsv"
    if not words.is_file():
        raise ExportError(f"{words} does not exist; pass --words FILE (word<TAB>pronunciation lines)")
    entries = data.read_tsv(words)
    if args.limit:
        entries = entries[: args.limit]
    try:
        beams = [int(b) for b in args.beams.split(",")]
    except ValueError:
        raise ExportError(f"--beams {args.beams!r}: want comma-separated integers such as 1,5") from None
    if not beams or min(beams) < 1:
        raise ExportError(f"--beams {args.beams!r}: every value must be 1 or more")
    sources = [voc.encode_word(e.word) for e in entries]
    refs = [[list(p) for p in e.prons] for e in entries]
    print(f"{words}: {len(entries)} words, PyTorch model of {d}")
    print(f"{'search':<10} {'WER':>8} {'PER':>8} {'seconds':>8}")
    for b in beams:
        t0 = time.monotonic()
        outs = search.generate(model, sources, num_beams=b, max_length=MAX_LENGTH)
        wer, per = error_rates([_phonemes(voc, ids) for ids, _ in outs], refs)
        name = "greedy" if b == 1 else f"beam {b}"
        print(f"{name:<10} {100 * wer:7.2f}% {100 * per:7.2f}% {time.monotonic() - t0:8.1f}")
    return 0


def add_split_arguments(p) -> None:
    """add_split_arguments declares the arguments of `g2p-split`."""
    p.add_argument("split", choices=data.SPLITS, help="which split of the hash split (s2s_export.rnn.data)")
    p.add_argument("out", metavar="OUT_TSV", help="file to write: word<TAB>pron | pron lines, stress removed (g2p-eval -words reads it)")


def run_split(args) -> int:
    """run_split writes one split's words and pronunciations (e.g. dev, for g2p-eval -words)."""
    from ..errors import ExportError

    entries = data.split(data.load())[args.split]
    try:
        data.write_tsv(entries, args.out)
    except OSError as e:
        raise ExportError(f"cannot write {args.out}: {e.strerror}; pass a file in an existing, writable directory") from None
    print(f"{args.out}: {len(entries)} {args.split} words")
    return 0


REFERENCE_FILE = "reference-decodes.jsonl"
TOKENIZER_CASES_FILE = "tokenizer-cases.jsonl"

# TOKENIZER_TEXTS are encoded by the tokenizers library into
# tokenizer-cases.jsonl, for the Go tokenizer to match: case, spaces,
# apostrophes, characters outside the vocabulary.
TOKENIZER_TEXTS = [
    "hello", "Hello", "HELLO", " padded ", "\tTab\n", "it's", "'tis", "rock'n'roll", "a b", "x1", "ad-hoc",
    "naïve", "ÉCOLE", "straße", "İstanbul", "ΣΟΦΙΑ", "日本", "", " ",
]
# TOKENIZER_IDS are decoded: specials are skipped, unknown ids left out.
TOKENIZER_IDS = [[3, 20, 5, 24, 28, 1], [3, 1, 0, 0], [2, 4, 2, 42], [4, 5, 6, 7, 8, 9, 10], [], [1], [999, 4]]


def reference_words(entries: list, n: int) -> list:
    """reference_words picks n entries spread evenly over the list (index i*len/n)."""
    if n >= len(entries):
        return list(entries)
    return [entries[i * len(entries) // n] for i in range(n)]


def add_reference_arguments(p) -> None:
    """add_reference_arguments declares the arguments of `g2p-reference`."""
    p.add_argument("dir", metavar="MODEL_DIR", help="a g2p model directory with test.tsv")
    p.add_argument("-n", type=int, default=200, help="test words to decode (default 200)")
    p.add_argument("--out", default=None, help=f"output file (default MODEL_DIR/{REFERENCE_FILE})")


def run_reference(args) -> int:
    """run_reference writes PyTorch greedy and beam-5 decodes of test words (transformers' generate) for the Go parity test."""
    import json
    from pathlib import Path

    import torch

    from ..errors import ExportError
    from . import data, export, search

    torch.set_num_threads(1)
    d = Path(args.dir)
    model, voc, _ = export.load_model(d)
    if not (d / "test.tsv").is_file():
        raise ExportError(f"{d} has no test.tsv; train the model with g2p-train, which writes it")
    if args.n < 1:
        raise ExportError(f"-n {args.n}: decode at least one word")
    entries = reference_words(data.read_tsv(d / "test.tsv"), args.n)
    out = Path(args.out) if args.out else d / REFERENCE_FILE
    lines = []
    for e in entries:
        src = voc.encode_word(e.word)
        # One word per generate() call: the reference is each word decoded alone.
        (greedy, _), = search.generate(model, [src], num_beams=1, max_length=MAX_LENGTH)
        (beam, score), = search.generate(model, [src], num_beams=5, max_length=MAX_LENGTH)
        lines.append(json.dumps({"word": e.word, "input_ids": src, "greedy_ids": greedy, "beam5_ids": beam,
                                 "beam5_score": score, "greedy_text": voc.decode_pron(greedy),
                                 "beam5_text": voc.decode_pron(beam)}))
    out.write_text("\n".join(lines) + "\n")
    cases = [json.dumps({"kind": "encode", "text": t, "ids": voc.source.encode(t).ids}) for t in TOKENIZER_TEXTS]
    cases += [json.dumps({"kind": "decode", "ids": ids, "text": voc.decode_pron(ids)}) for ids in TOKENIZER_IDS]
    cases_path = out.parent / TOKENIZER_CASES_FILE
    cases_path.write_text("\n".join(cases) + "\n")
    print(f"wrote {out}: {len(lines)} words; {cases_path}: {len(cases)} tokenizer cases")
    return 0
