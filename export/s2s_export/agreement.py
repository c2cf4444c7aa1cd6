"""agreement measures how often two model directories (a float32 one and
its quantized copy) generate the same tokens through the Go host: it runs
`gen -json` on both with the same inputs and options and reports the share
of equal output sequences and the mean share of equal prefix (tokens before
the first difference over the longer output's length, as bench/ computes it).

Inputs come from files: a .jsonl file gives each object's "input" (the
goldens in testdata/goldens), a .tsv file its first column (models/g2p-en's
test.tsv), any other file its lines. Repeated inputs are scored once; an
input with a line break cannot go through gen's stdin and is skipped.
"""

from __future__ import annotations

import argparse
import json
import subprocess
from pathlib import Path
from typing import Sequence

from .errors import ExportError

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_GEN = ROOT / "bin" / "gen"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """add_arguments declares the arguments of `agreement`."""
    p.add_argument("ref", metavar="REF_DIR", help="reference model directory (float32)")
    p.add_argument("test", metavar="TEST_DIR", help="model directory to compare (e.g. its int8 copy)")
    p.add_argument("--inputs", action="append", default=[], metavar="FILE",
                   help="input file (.jsonl: \"input\" fields, .tsv: first column, else lines); repeatable; "
                        "default: REF_DIR/test.tsv")
    p.add_argument("--gen", default=str(DEFAULT_GEN), help="the gen binary (default bin/gen: go build -o bin/gen ./cmd/gen)")
    p.add_argument("--limit", type=int, default=0, help="use only the first N inputs (0: all)")
    p.add_argument("--num-beams", type=int, default=0, help="gen -num-beams (0: the model's default)")
    p.add_argument("--max-new-tokens", type=int, default=0, help="gen -max-new-tokens (0: the model's default)")
    p.add_argument("--batch-size", type=int, default=16, help="gen -batch-size (default 16)")


def run(args: argparse.Namespace) -> int:
    """run reports how often two model directories generate the same tokens (share of equal sequences and of equal prefix)."""
    if args.limit < 0 or args.num_beams < 0 or args.max_new_tokens < 0 or args.batch_size < 1:
        raise ExportError("--limit, --num-beams and --max-new-tokens must be >= 0 and --batch-size >= 1")
    files = [Path(f) for f in args.inputs] or [Path(args.ref) / "test.tsv"]
    inputs, skipped = read_inputs(files)
    if args.limit:
        inputs = inputs[: args.limit]
    if not inputs:
        raise ExportError(f"no inputs in {', '.join(map(str, files))}; pass --inputs FILE")
    flags = ["-batch-size", str(args.batch_size)]
    if args.num_beams:
        flags += ["-num-beams", str(args.num_beams)]
    if args.max_new_tokens:
        flags += ["-max-new-tokens", str(args.max_new_tokens)]
    ref = generate(Path(args.gen), Path(args.ref), inputs, flags)
    test = generate(Path(args.gen), Path(args.test), inputs, flags)
    eq, prefix = agreement(ref, test)
    note = f" ({skipped} with line breaks skipped)" if skipped else ""
    print(f"inputs {len(inputs)}{note}, gen {' '.join(flags)}")
    print(f"equal sequences {eq:.1%}, mean equal prefix {prefix:.1%}, "
          f"mean length {sum(map(len, ref)) / len(ref):.1f} (ref) {sum(map(len, test)) / len(test):.1f} (test)")
    return 0


def read_inputs(files: Sequence[Path]) -> tuple[list[str], int]:
    """read_inputs returns the distinct inputs of files in order and how many were skipped for a line break."""
    seen: dict[str, None] = {}
    skipped = 0
    for f in files:
        try:
            text = f.read_text(encoding="utf-8")
        except OSError as e:
            raise ExportError(f"{f}: {e.strerror or e}; pass an existing input file") from e
        if f.suffix == ".jsonl":
            items = []
            for n, line in enumerate(text.splitlines(), 1):
                if not line.strip():
                    continue
                try:
                    items.append(str(json.loads(line)["input"]))
                except (ValueError, KeyError, TypeError) as e:
                    raise ExportError(f"{f}:{n}: not a JSON object with an \"input\" ({e}); pass goldens-style .jsonl") from e
        elif f.suffix == ".tsv":
            items = [line.split("\t", 1)[0] for line in text.splitlines() if line.strip()]
        else:
            items = text.splitlines()
        for s in items:
            if "\n" in s or "\r" in s:
                skipped += 1
            elif s not in seen:
                seen[s] = None
    return list(seen), skipped


def generate(gen: Path, model: Path, inputs: Sequence[str], flags: Sequence[str]) -> list[list[int]]:
    """generate runs `gen -model model -json flags` on inputs (one per line on
    stdin) and returns each input's output tokens; any failed input is an ExportError."""
    if not gen.is_file():
        raise ExportError(f"{gen} not found; build it with `go build -o bin/gen ./cmd/gen` or pass --gen")
    cmd = [str(gen), "-model", str(model), "-json", *flags]
    proc = subprocess.run(cmd, input="\n".join(inputs) + "\n", capture_output=True, text=True, encoding="utf-8")
    if proc.returncode != 0:
        raise ExportError(f"{' '.join(cmd)} failed (status {proc.returncode}): {proc.stderr.strip()[-500:]}")
    out = []
    for line in proc.stdout.splitlines():
        rec = json.loads(line)
        if rec.get("error"):
            raise ExportError(f"{model}: gen failed on {rec.get('input')!r}: {rec['error']}")
        out.append([int(t) for t in rec["tokens"]])
    if len(out) != len(inputs):
        raise ExportError(f"{model}: gen gave {len(out)} outputs for {len(inputs)} inputs")
    return out


def agreement(a: Sequence[Sequence[int]], b: Sequence[Sequence[int]]) -> tuple[float, float]:
    """agreement returns the share of equal sequences of a and b and the mean
    share of tokens before the first difference (over the longer one's length)."""
    if len(a) != len(b) or not a:
        raise ExportError(f"cannot compare {len(a)} outputs with {len(b)}; both sides need the same, non-zero count")
    eq = sum(list(x) == list(y) for x, y in zip(a, b)) / len(a)
    pre = []
    for x, y in zip(a, b):
        k = 0
        while k < min(len(x), len(y)) and x[k] == y[k]:
            k += 1
        pre.append(k / max(len(x), len(y), 1))
    return eq, sum(pre) / len(pre)
