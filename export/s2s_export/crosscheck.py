"""crosscheck compares the Go host with transformers on fresh random models.

``python -m s2s_export crosscheck --gen bin/gen`` makes tiny random-weight
T5, BART and Marian checkpoints with seeds and sizes other than the committed
test models', exports each with ``s2s_export hf``, draws generation options
at random (greedy, beam search with every stopping rule, length penalties,
n-gram and repetition penalties, n-best, min_new_tokens, EOS lists) and
runs every request both through transformers' ``generate()`` and through
``gen -json``. It prints one line per model and fails unless every sequence
has the same tokens and every beam score is within --atol of
``sequences_scores``.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import tempfile
from pathlib import Path

from .errors import ExportError

DEFAULT_SIZES = ("48x3x4", "24x1x2")


def _flag(name: str, value) -> list[str]:
    """_flag spells one generate() option as gen's flag."""
    flag = "-" + name.replace("_", "-")
    if isinstance(value, bool):
        return [f"{flag}={'true' if value else 'false'}"]
    if isinstance(value, list):
        return [flag, ",".join(str(v) for v in value)]
    return [flag, str(value)]


def draw_options(rng: random.Random, eos: list[int], frequent: int) -> dict:
    """draw_options returns one random set of generate() options."""
    o = {"do_sample": False, "max_new_tokens": rng.randint(3, 28)}
    beams = rng.choice([1, 1, 2, 3, 4, 5, 6])
    o["num_beams"] = beams
    if beams > 1:
        o["length_penalty"] = rng.choice([0.5, 0.8, 1.0, 1.3, 2.5])
        o["early_stopping"] = rng.choice([True, False, "never"])
        o["num_return_sequences"] = rng.randint(1, min(beams, 3))
    if rng.random() < 0.3:
        o["no_repeat_ngram_size"] = rng.choice([2, 3, 4])
    if rng.random() < 0.3:
        o["repetition_penalty"] = rng.choice([1.1, 1.3, 1.7])
    if rng.random() < 0.3:
        o["min_new_tokens"] = rng.randint(1, o["max_new_tokens"])
    if rng.random() < 0.2:
        o["eos_token_id"] = [eos[0], frequent]
    return o


def run_gen(gen: Path, model_dir: Path, texts: list[str], options: dict) -> list[dict]:
    """run_gen runs ``gen -json`` on texts as one batch and returns its lines."""
    cmd = [str(gen), "-model", str(model_dir), "-json", "-batch-size", str(len(texts))]
    for k, v in options.items():
        cmd += _flag(k, v)
    p = subprocess.run(cmd, input="".join(t + "\n" for t in texts), capture_output=True, text=True, timeout=300)
    if p.returncode != 0:
        raise ExportError(f"{' '.join(cmd)} failed: {p.stderr.strip()}")
    return [json.loads(line) for line in p.stdout.splitlines()]


def compare(records: list[dict], lines: list[dict], atol: float) -> tuple[int, int, float, list[str]]:
    """compare returns (sequences, equal sequences, max score difference,
    mismatch descriptions) for one request's goldens and gen's lines."""
    total = equal = 0
    worst = 0.0
    bad = []
    for rec, line in zip(records, lines, strict=True):
        if "sequences" in rec:
            want = rec["sequences"]
            got = line.get("sequences") or [{"tokens": line["tokens"], "score": line["score"]}]
        else:
            want = [{"output_ids": rec["output_ids"]}]
            got = [{"tokens": line["tokens"]}]
        for i, w in enumerate(want):
            total += 1
            g = got[i] if i < len(got) else {"tokens": None}
            if g["tokens"] != w["output_ids"]:
                bad.append(f"{rec['input']!r} {rec['options']} seq {i}: gen {g['tokens']} transformers {w['output_ids']}")
                continue
            if "score" in w:
                d = abs(g["score"] - w["score"])
                worst = max(worst, d)
                if d > atol:
                    bad.append(f"{rec['input']!r} {rec['options']} seq {i}: score {g['score']} transformers {w['score']}")
                    continue
            equal += 1
    return total, equal, worst, bad


def crosscheck_model(family: str, seed: int, size: str, gen: Path, work: Path, requests: int, atol: float,
                     log=print, export_atol: float = 1e-4, layout: str | None = None) -> dict:
    """crosscheck_model makes, exports and compares one random model."""
    from . import goldens, hf, tiny

    d_model, layers, heads = (int(x) for x in size.split("x"))
    ckpt, model_dir = work / f"{family}-{seed}-{size}-ckpt", work / f"{family}-{seed}-{size}"
    tiny.make_tiny(family, ckpt, seed, d_model=d_model, layers=layers, heads=heads, ffn=2 * d_model)
    hf.export(ckpt, model_dir, force=True, atol=export_atol, layout=layout or hf.DEFAULT_LAYOUT, log=lambda *a, **k: None)
    r = goldens._Runner(ckpt, model_dir)
    rng = random.Random(f"{family}/{seed}/{size}")
    inputs = [t for t in goldens.golden_inputs(seed) if "\n" not in t and len(r.encode(t)) <= 64]
    frequent = goldens._frequent(r, inputs[:8])
    summary = {"family": family, "seed": seed, "size": size, "requests": 0, "sequences": 0, "equal": 0,
               "max_score_diff": 0.0, "mismatches": []}
    for _ in range(requests):
        options = draw_options(rng, r.eos, frequent)
        texts = rng.sample(inputs, rng.choice([1, 1, 2, 3]))
        records = r.beam(texts, options) if options["num_beams"] > 1 else r.greedy(texts, options)
        lines = run_gen(gen, model_dir, texts, options)
        total, equal, worst, bad = compare(records, lines, atol)
        summary["requests"] += 1
        summary["sequences"] += total
        summary["equal"] += equal
        summary["max_score_diff"] = max(summary["max_score_diff"], worst)
        summary["mismatches"] += bad
    log(f"{family:7s} seed {seed:<4d} size {size:8s} requests {summary['requests']:3d} "
        f"sequences {summary['equal']}/{summary['sequences']} equal, max score diff {summary['max_score_diff']:.2e}")
    for m in summary["mismatches"][:5]:
        log("  mismatch:", m)
    return summary


def add_arguments(p: argparse.ArgumentParser) -> None:
    """add_arguments declares the arguments of ``crosscheck``."""
    p.add_argument("--gen", default="bin/gen", help="the gen binary (default bin/gen; build it with scripts/setup.sh go)")
    p.add_argument("--families", default="t5,bart,marian", help="comma-separated families (default t5,bart,marian)")
    p.add_argument("--seeds", default="7,31", help="comma-separated weight seeds (default 7,31; the tests use 2)")
    p.add_argument("--sizes", default=",".join(DEFAULT_SIZES),
                   help="comma-separated d_model x layers x heads (default 48x3x4,24x1x2; the tests use 32x2x4)")
    p.add_argument("--requests", type=int, default=12, help="random requests per model (default 12)")
    p.add_argument("--atol", type=float, default=1e-4, help="largest beam score difference (default 1e-4)")
    p.add_argument("--export-atol", type=float, default=1e-4,
                   help="the exporter's self-check tolerance on logits (default 1e-4); the tiny models' logits are "
                        "shaped large so outputs vary, and float32 graphs of the wider ones differ from PyTorch by "
                        "up to a few 1e-4")
    p.add_argument("--work", default=None, help="keep checkpoints and exports here (default: a temporary directory)")
    p.add_argument("--layout", default=None, help="decoder graphs to export: inplace or optimum (default: the exporter's, inplace)")


def run(args: argparse.Namespace) -> int:
    """run compares gen with transformers generate() on fresh random models."""
    gen = Path(args.gen)
    if not gen.is_file():
        raise ExportError(f"{gen} not found; build it with scripts/setup.sh go or pass --gen")
    sizes = [s.strip() for s in args.sizes.split(",") if s.strip()]
    for s in sizes:
        parts = s.split("x")
        if len(parts) != 3 or not all(x.isdigit() and int(x) > 0 for x in parts):
            raise ExportError(f"size {s!r} is not d_model x layers x heads, e.g. 48x3x4")
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    families = [f.strip() for f in args.families.split(",") if f.strip()]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.work) if args.work else Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        results = []
        for f in families:
            for seed in seeds:
                for size in sizes:
                    try:
                        results.append(crosscheck_model(f, seed, size, gen.resolve(), work, args.requests, args.atol,
                                                        export_atol=args.export_atol, layout=args.layout))
                    except ExportError as e:
                        print(f"{f:7s} seed {seed:<4d} size {size:8s} not compared: {e}")
                        results.append({"sequences": 0, "equal": 0, "mismatches": [str(e)]})
    failed = [r for r in results if r["mismatches"]]
    total = sum(r["sequences"] for r in results)
    print(f"crosscheck: {len(results)} models, {sum(r['equal'] for r in results)}/{total} sequences equal"
          + (f", {len(failed)} models with mismatches" if failed else ""))
    return 1 if failed else 0
