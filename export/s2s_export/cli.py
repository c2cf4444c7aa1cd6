"""cli is the command line of s2s_export: `python -m s2s_export <subcommand>`.

Each subcommand is one line in COMMANDS: its name mapped to a pair
(add_arguments, run). add_arguments(parser) declares its arguments on an
argparse parser; run(args) does the work and returns the exit status.
The first line of run's docstring is the subcommand's help. Modules that
define subcommands import their heavy dependencies (torch, onnx) inside
run, so `--help` stays fast.
"""

from __future__ import annotations

import argparse
import sys
from typing import Callable, Sequence

from . import agreement, check, crosscheck, goldens, hf, marian, pack, quantize, tiny
from .rnn import evaluate as g2p_evaluate, export as g2p_export, train as g2p_train
from .errors import ExportError

AddArguments = Callable[[argparse.ArgumentParser], None]
Run = Callable[[argparse.Namespace], int]

# COMMANDS maps a subcommand name to (add_arguments, run). Add one line to add
# a subcommand.
COMMANDS: dict[str, tuple[AddArguments, Run]] = {
    "hf": (hf.add_arguments, hf.run),
    "check": (check.add_arguments, check.run),
    "marian-tokenizer": (marian.add_arguments, marian.run),
    "g2p-train": (g2p_train.add_arguments, g2p_train.run),
    "g2p-export": (g2p_export.add_export_arguments, g2p_export.run_export),
    "g2p-check": (g2p_export.add_check_arguments, g2p_export.run_check),
    "g2p-ensemble": (g2p_export.add_ensemble_arguments, g2p_export.run_ensemble),
    "g2p-eval": (g2p_evaluate.add_eval_arguments, g2p_evaluate.run_eval),
    "g2p-reference": (g2p_evaluate.add_reference_arguments, g2p_evaluate.run_reference),
    "g2p-split": (g2p_evaluate.add_split_arguments, g2p_evaluate.run_split),
    "tiny": (tiny.add_arguments, tiny.run),
    "tiny-tokenizers": (tiny.add_tokenizer_arguments, tiny.run_tokenizers),
    "goldens": (goldens.add_arguments, goldens.run),
    "crosscheck": (crosscheck.add_arguments, crosscheck.run),
    "quantize": (quantize.add_arguments, quantize.run),
    "agreement": (agreement.add_arguments, agreement.run),
    "pack": (pack.add_arguments, pack.run),
}


def _help(run: Run) -> str:
    """_help returns the first line of run's docstring, without the name."""
    doc = (run.__doc__ or "").strip().splitlines()
    line = doc[0] if doc else ""
    head, sep, rest = line.partition(" ")
    # "run exports ..." reads as "exports ..." in the list of subcommands.
    text = rest if sep and head in ("run", run.__name__) else line
    return text.rstrip(".")


def build_parser() -> argparse.ArgumentParser:
    """build_parser returns the argparse parser with every registered subcommand."""
    parser = argparse.ArgumentParser(
        prog="python -m s2s_export",
        description="Write s2s model directories (ONNX graphs, tokenizer.json, s2s.json) for the Go host.",
    )
    sub = parser.add_subparsers(dest="command", metavar="SUBCOMMAND")
    sub.required = True
    for name, (add_arguments, run) in COMMANDS.items():
        text = _help(run)
        p = sub.add_parser(name, help=text, description=text)
        add_arguments(p)
        p.set_defaults(_run=run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """main parses argv, runs the chosen subcommand and returns its exit status.

    An ExportError, or an OSError on a named file (a missing directory, no
    permission, a full disk), is printed as one line on stderr and gives
    status 1.
    """
    args = build_parser().parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except ExportError as e:
        print(f"s2s_export {args.command}: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        if e.filename is None:
            raise
        print(f"s2s_export {args.command}: {e.filename}: {e.strerror or e}; check that the path exists and is writable",
              file=sys.stderr)
        return 1
