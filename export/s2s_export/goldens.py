"""goldens records what transformers' generate() does with a checkpoint, as
JSON lines the Go search is tested against.

    python -m s2s_export goldens CKPT_DIR MODEL_DIR OUT_DIR [--kind greedy|beam|all]

CKPT_DIR is the PyTorch checkpoint (save_pretrained layout) and MODEL_DIR
the s2s model directory exported from it; input ids come from MODEL_DIR's
tokenizer.json (the file the Go host reads), output text from the
checkpoint's transformers tokenizer, checked against MODEL_DIR's target
tokenizer. Each line of greedy-<family>.jsonl and beam-<family>.jsonl is
one input of one generate() call:

    input          the text
    input_ids      its ids, EOS included, unpadded
    batch          the texts generated together in that call (right-padded
                   with pad_token_id, attention mask 0 on padding)
    batch_index    this input's row in batch
    options        every keyword passed to generate(), Hugging Face names;
                   the rest comes from the checkpoint's generation_config.json
    output_ids     (greedy) generated ids, decoder start token excluded,
                   through the first EOS; nothing after it
    output_text    (greedy) decode(output_ids, skip_special_tokens=True)
    min_margin     (greedy) the smallest gap between the chosen token's
                   processed score and the runner-up's over the steps
                   (forced steps left out; null if all were forced): how
                   close the record is to a tie
    sequences      (beam) the returned hypotheses, best first: output_ids,
                   output_text and score (generate's sequences_scores)
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

from .errors import ExportError

# LONG_MAX_TOKENS bounds the long input: BART and Marian have 256 positions.
LONG_MAX_TOKENS = 240

# HARD_INPUTS stress the tokenizer and short inputs; every family encodes
# them the same way with tokenizer.json as with its transformers tokenizer.
HARD_INPUTS = (
    "a",
    "",
    "Caf\u00e9 na\u00efve Zo\u00eb: \u00abd\u00e9j\u00e0 vu\u00bb \u2014 \u00fcber r\u00e9sum\u00e9.",
    "\u65e5\u672c\u8a9e and emoji \U0001F600 mixed in.",
    "  spaces   everywhere \t and\nnewlines  ",
    "?!?!... ;-) :-( [[{{<>}}]] $$$ 100%!!!",
    "Supercalifragilisticexpialidocious antidisestablishmentarianism pneumonoultramicroscopic.",
)

GREEDY_MAX = 24
FORTUNE_SOURCES = ("fortunes", "wisdom", "literature", "computers", "humorists", "platitudes", "food", "kids")


def golden_inputs(seed: int = 0) -> list[str]:
    """golden_inputs returns the inputs of the goldens: fortunes of varied
    length picked with random.Random(seed) (6 under 40 characters, 8 of
    40-119, 6 of 120-299, one of 500-700) followed by HARD_INPUTS."""
    from .tiny import fortunes

    pool = sorted(set(fortunes(FORTUNE_SOURCES)))
    rng = random.Random(seed)
    picked = []
    for lo, hi, n in ((10, 40, 6), (40, 120, 8), (120, 300, 6), (500, 700, 1)):
        bucket = [t for t in pool if lo <= len(t) < hi]
        picked += rng.sample(bucket, n)
    return picked + list(HARD_INPUTS)


class _Runner:
    """_Runner holds a checkpoint, its tokenizers and the exported
    tokenizer.json files, and turns generate() calls into records."""

    def __init__(self, ckpt: Path, model_dir: Path):
        import warnings

        import torch
        from tokenizers import Tokenizer
        from transformers import AutoConfig, AutoModelForSeq2SeqLM, AutoTokenizer, MarianTokenizer

        if not (ckpt / "config.json").is_file():
            raise ExportError(f"{ckpt} has no config.json; pass the checkpoint written by `s2s_export tiny` or save_pretrained")
        manifest_path = model_dir / "s2s.json"
        if not manifest_path.is_file():
            raise ExportError(f"{model_dir} has no s2s.json; export the checkpoint with `python -m s2s_export hf` first")
        manifest = json.loads(manifest_path.read_text())
        torch.manual_seed(0)
        torch.set_num_threads(1)  # one reduction order everywhere
        self.torch = torch
        self.config = AutoConfig.from_pretrained(str(ckpt))
        self.family = self.config.model_type
        self.model = AutoModelForSeq2SeqLM.from_pretrained(str(ckpt)).eval()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if self.family == "marian":
                self.hf_tok = MarianTokenizer.from_pretrained(str(ckpt))
            else:
                self.hf_tok = AutoTokenizer.from_pretrained(str(ckpt))
        tk = manifest["tokenizer"]
        self.source = Tokenizer.from_file(str(model_dir / tk["source"]))
        self.target = Tokenizer.from_file(str(model_dir / (tk.get("target") or tk["source"])))
        gen = self.model.generation_config
        eos = gen.eos_token_id
        self.eos = [eos] if isinstance(eos, int) else list(eos)
        self.pad = gen.pad_token_id

    def encode(self, text: str) -> list[int]:
        """encode returns text's ids from tokenizer.json, checked against
        the transformers tokenizer."""
        ids = self.source.encode(text).ids
        want = self.hf_tok(text)["input_ids"]
        if ids != want:
            raise ExportError(f"tokenizer.json encodes {text!r} as {ids}, transformers as {want}; pick another input")
        return ids

    def decode(self, ids: list[int]) -> str:
        """decode returns the transformers tokenizer's text for ids, checked
        against the target tokenizer.json."""
        text = self.hf_tok.decode(ids, skip_special_tokens=True)
        got = self.target.decode(ids, skip_special_tokens=True)
        if got != text:
            raise ExportError(f"tokenizer.json decodes {ids} as {got!r}, transformers as {text!r}")
        return text

    def _cut(self, ids: list[int], eos: list[int]) -> list[int]:
        """_cut drops the decoder start token and everything after the first EOS."""
        ids = ids[1:]
        for i, t in enumerate(ids):
            if t in eos:
                return ids[: i + 1]
        return ids

    def generate(self, texts: list[str], options: dict):
        """generate runs generate() on texts as one right-padded batch with
        options and returns (input ids per text, output, eos ids in force)."""
        torch = self.torch
        ids = [self.encode(t) for t in texts]
        width = max(len(x) for x in ids)
        pad = self.config.pad_token_id
        input_ids = torch.tensor([x + [pad] * (width - len(x)) for x in ids])
        mask = torch.tensor([[1] * len(x) + [0] * (width - len(x)) for x in ids])
        with torch.no_grad():
            out = self.model.generate(input_ids=input_ids, attention_mask=mask, return_dict_in_generate=True,
                                      output_scores=True, **options)
        eos = options.get("eos_token_id", self.eos)
        eos = [eos] if isinstance(eos, int) else list(eos)
        return ids, out, eos

    def greedy(self, texts: list[str], options: dict) -> list[dict]:
        """greedy returns the greedy records of one generate() call."""
        ids, out, eos = self.generate(texts, options)
        recs = []
        for i, text in enumerate(texts):
            o = self._cut(out.sequences[i].tolist(), eos)
            recs.append({"input": text, "input_ids": ids[i], "batch": texts, "batch_index": i, "options": options,
                         "output_ids": o, "output_text": self.decode(o), "min_margin": self._margin(out.scores, i, len(o))})
        return recs

    def _margin(self, scores, row: int, steps: int):
        """_margin returns the smallest gap between the best and the second
        best processed score over the steps greedy search took for row (steps
        where one token was forced do not count), or None if all were forced."""
        torch = self.torch
        gaps = []
        for step in scores[:steps]:
            top = torch.topk(step[row].float(), 2).values
            if torch.isfinite(top[1]):
                gaps.append(float(top[0] - top[1]))
        return round(min(gaps), 6) if gaps else None

    def beam(self, texts: list[str], options: dict) -> list[dict]:
        """beam returns the beam records of one generate() call."""
        ids, out, eos = self.generate(texts, options)
        n = options.get("num_return_sequences", 1)
        recs = []
        for i, text in enumerate(texts):
            seqs = []
            for j in range(i * n, (i + 1) * n):
                o = self._cut(out.sequences[j].tolist(), eos)
                seqs.append({"output_ids": o, "output_text": self.decode(o), "score": float(out.sequences_scores[j])})
            recs.append({"input": text, "input_ids": ids[i], "batch": texts, "batch_index": i, "options": options,
                         "sequences": seqs})
        return recs


def _base(max_new_tokens: int = GREEDY_MAX) -> dict:
    """_base returns the options of plain greedy search."""
    return {"max_new_tokens": max_new_tokens, "do_sample": False, "num_beams": 1}


def greedy_records(r: _Runner, inputs: list[str]) -> list[dict]:
    """greedy_records returns the greedy goldens: each input alone with
    max_new_tokens GREEDY_MAX, then min_new_tokens, list-valued
    eos_token_id, short max_new_tokens, no_repeat_ngram_size and
    repetition_penalty cases, and right-padded batches."""
    recs = []
    for text in inputs:
        recs += r.greedy([text], _base())
    plain = {rec["input"]: rec["output_ids"] for rec in recs}
    ended = [t for t in inputs if plain[t] and plain[t][-1] in r.eos and len(plain[t]) < GREEDY_MAX - 6]
    # min_new_tokens past the natural end, so it must change the output.
    for text in sorted(ended, key=lambda t: len(plain[t]))[:4]:
        recs += r.greedy([text], {**_base(), "min_new_tokens": len(plain[text]) + 3})
    # An EOS list with a frequent generated token: generation must stop at it.
    counts: dict[int, int] = {}
    for o in plain.values():
        for t in o[1:]:
            if t not in r.eos:
                counts[t] = counts.get(t, 0) + 1
    frequent = max(sorted(counts), key=counts.get)
    with_it = [t for t in inputs if frequent in plain[t][1:]]
    for text in with_it[:4]:
        recs += r.greedy([text], {**_base(), "eos_token_id": [r.eos[0], frequent]})
    if with_it:
        recs += r.greedy([with_it[0]], {**_base(), "eos_token_id": [r.eos[0], frequent], "min_new_tokens": 6})
    for text in inputs[:2]:
        recs += r.greedy([text], _base(1))
        recs += r.greedy([text], _base(5))
    repetitive = sorted(inputs, key=lambda t: len(set(plain[t])) - len(plain[t]))[:3]
    for text in repetitive:
        recs += r.greedy([text], {**_base(), "no_repeat_ngram_size": 2})
        recs += r.greedy([text], {**_base(), "repetition_penalty": 1.3})
    recs += r.greedy([inputs[1], inputs[-4]], {**_base(), "no_repeat_ngram_size": 3})
    recs += r.greedy(inputs[6:10], _base())
    recs += r.greedy([inputs[20], inputs[0], inputs[-7]], {**_base(), "min_new_tokens": 5})
    return recs


def beam_records(r: _Runner, inputs: list[str]) -> list[dict]:
    """beam_records returns the beam-search goldens: num_beams 2/4/5,
    length_penalty 0.6/1.0/2.0, early_stopping true/false/"never",
    no_repeat_ngram_size 2/3, repetition_penalty 1.3,
    num_return_sequences 3, min_new_tokens, EOS lists and right-padded
    batches of mixed lengths."""
    recs = []

    def beam(n: int, **kw) -> dict:
        return {"max_new_tokens": kw.pop("max_new_tokens", 16), "do_sample": False, "num_beams": n, **kw}

    picks = [inputs[i] for i in (0, 3, 7, 9, 13, 16, 21, 23)]
    for text in picks:
        recs += r.beam([text], beam(4))
    for n in (2, 5):
        for text in picks[:3]:
            recs += r.beam([text], beam(n))
    for lp in (0.6, 1.0, 2.0):
        for es in (True, False, "never"):
            recs += r.beam([picks[1]], beam(4, length_penalty=lp, early_stopping=es))
            recs += r.beam([picks[4]], beam(3, length_penalty=lp, early_stopping=es, max_new_tokens=10))
    for ng in (2, 3):
        for text in picks[2:5]:
            recs += r.beam([text], beam(4, no_repeat_ngram_size=ng))
    for text in picks[:3]:
        recs += r.beam([text], beam(4, repetition_penalty=1.3))
    for text in picks[3:6]:
        recs += r.beam([text], beam(5, num_return_sequences=3))
    recs += r.beam([picks[0]], beam(4, num_return_sequences=3, length_penalty=2.0, early_stopping=True))
    recs += r.beam([picks[5]], beam(4, min_new_tokens=8))
    recs += r.beam([picks[6]], beam(4, eos_token_id=[r.eos[0], _frequent(r, picks)]))
    recs += r.beam([inputs[1], inputs[20], inputs[-7]], beam(4))
    recs += r.beam([inputs[2], inputs[10], inputs[15], inputs[-6]], beam(3, num_return_sequences=2, length_penalty=0.6))
    recs += r.beam([inputs[4], inputs[-5]], beam(2, early_stopping="never", no_repeat_ngram_size=3))
    return recs


def _frequent(r: _Runner, texts: list[str]) -> int:
    """_frequent returns the non-EOS token greedy search generates most on texts."""
    counts: dict[int, int] = {}
    for rec in r.greedy(texts, _base()):
        for t in rec["output_ids"]:
            if t not in r.eos:
                counts[t] = counts.get(t, 0) + 1
    return max(sorted(counts), key=counts.get)


def write_goldens(ckpt, model_dir, out_dir, kind: str = "all", inputs=None) -> dict[str, int]:
    """write_goldens writes greedy-<family>.jsonl and/or beam-<family>.jsonl
    for the checkpoint ckpt and its export model_dir into out_dir and
    returns the record count of each file written. inputs defaults to
    golden_inputs()."""
    if kind not in ("greedy", "beam", "all"):
        raise ExportError(f"unknown golden kind {kind!r}; use greedy, beam or all")
    ckpt, model_dir, out_dir = Path(ckpt), Path(model_dir), Path(out_dir)
    r = _Runner(ckpt, model_dir)
    inputs = list(inputs) if inputs is not None else golden_inputs()
    if len(inputs) < 24:
        raise ExportError(f"{len(inputs)} inputs given; the goldens need at least 24")
    longest = max(len(r.encode(t)) for t in inputs)
    if longest > LONG_MAX_TOKENS:
        raise ExportError(f"an input has {longest} tokens, more than {LONG_MAX_TOKENS}; pick shorter inputs")
    out_dir.mkdir(parents=True, exist_ok=True)
    written = {}
    for k, make in (("greedy", greedy_records), ("beam", beam_records)):
        if kind not in (k, "all"):
            continue
        recs = make(r, inputs)
        path = out_dir / f"{k}-{r.family}.jsonl"
        path.write_text("".join(json.dumps(rec, ensure_ascii=False) + "\n" for rec in recs), encoding="utf-8")
        written[path.name] = len(recs)
    return written


def add_arguments(p: argparse.ArgumentParser) -> None:
    """add_arguments declares the arguments of ``goldens``."""
    p.add_argument("ckpt", metavar="CKPT_DIR", help="PyTorch checkpoint (save_pretrained layout)")
    p.add_argument("model", metavar="MODEL_DIR", help="s2s model directory exported from CKPT_DIR")
    p.add_argument("out", metavar="OUT_DIR", help="directory to write greedy-<family>.jsonl and beam-<family>.jsonl into")
    p.add_argument("--kind", default="all", choices=("greedy", "beam", "all"), help="which goldens (default all)")
    p.add_argument("--inputs", default=None, help="JSON file with a list of input texts (default: fortunes picked with seed 0)")


def run(args: argparse.Namespace) -> int:
    """run records transformers' greedy and beam-search outputs of a checkpoint as JSON-lines goldens."""
    inputs = None
    if args.inputs:
        try:
            inputs = json.loads(Path(args.inputs).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as e:
            raise ExportError(f"cannot read inputs from {args.inputs} ({e}); give a JSON list of strings") from None
        if not isinstance(inputs, list) or not all(isinstance(t, str) for t in inputs):
            raise ExportError(f"{args.inputs} must hold a JSON list of strings")
    try:
        written = write_goldens(args.ckpt, args.model, args.out, kind=args.kind, inputs=inputs)
    except FileNotFoundError as e:
        raise ExportError(str(e)) from None
    for name, n in written.items():
        print(f"{Path(args.out) / name}: {n} records")
    return 0
