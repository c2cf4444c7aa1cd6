"""python -m bench: run the benchmark and print the table (docs/performance.md).

    .venv/bin/python -m bench --quick
    .venv/bin/python -m bench --models marian,t5 --tokens 64,256
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from s2s_export.agreement import agreement  # equal sequences, mean equal prefix: one definition for both

from . import models

ROOT = models.ROOT
GO_ENGINE = "go"  # the Go host on the inplace layout (the exporter's default decoder graphs)
GO_OPTIMUM = "go-optimum"  # the Go host on Optimum's decoder graphs (--layout optimum), the graphs before the inplace layout
GO_INT8 = "go-int8"  # the Go host on the exporter's int8 copy (s2s_export quantize) of the inplace layout, compared with go
GO_ENGINES = (GO_ENGINE, GO_OPTIMUM, GO_INT8)
ALL_ENGINES = (GO_ENGINE, GO_OPTIMUM, GO_INT8, "optimum", "optimum-iobinding", "pytorch", "ct2-float32", "ct2-int8")


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.strip().splitlines()[0])
    p.add_argument("--quick", action="store_true", help="t5-tiny and g2p, 4 inputs, 16 tokens, batch 4: checks the plumbing in a minute or two")
    p.add_argument("--models", default="marian,t5,g2p", help="comma-separated: marian, t5, g2p (models/g2p-en, our LSTM), "
                   "t5-tiny (default marian,t5,g2p)")
    p.add_argument("--engines", default=",".join(ALL_ENGINES), help=f"comma-separated subset of {','.join(ALL_ENGINES)}")
    p.add_argument("--tokens", default="64", help="comma-separated forced output lengths (default 64; 256 is long on 2 cores)")
    p.add_argument("--long-batch", action="store_true", help="also run the batch cases at lengths above 64")
    p.add_argument("--inputs", type=int, default=8, help="inputs of the batch-1 cases (default 8)")
    p.add_argument("--batch", type=int, default=32, help="batch size of the batch cases (default 32)")
    p.add_argument("--reps", type=int, default=3, help="repetitions of every case (default 3)")
    p.add_argument("--threads", default="2,1", help="intra-op,inter-op threads (default 2,1); several settings joined by + "
                   "(2,1+1,1) run every engine at each and add a table of each engine's best")
    p.add_argument("--decoder-graphs", default="merged", choices=["split", "merged"],
                   help="decoder graphs of the ONNX engines (default merged, what the Go host runs on the CPU by default)")
    p.add_argument("--provider", default="cpu", choices=["cpu", "cuda"],
                   help="where the engines run: cpu, or cuda (the Go host on .ort/cuda/lib, Optimum on the CUDA provider of "
                   "onnxruntime-gpu, CTranslate2 and PyTorch on the GPU; scripts/gpu-check.sh sets it up)")
    p.add_argument("--no-limit", dest="limit", action="store_false", help="skip the limit L of the Go host")
    p.add_argument("--ort-config", default="", help="ONNX Runtime session config entries for the ONNX engines (Go host and "
                   "Optimum), key=value[,key=value...], e.g. session.intra_op.allow_spinning=0")
    p.add_argument("--no-arena", action="store_true", help="turn ONNX Runtime's CPU memory arena off in the ONNX engines")
    p.add_argument("--one-process", action="store_true", help="run all cases of an engine in one process (faster; but "
                   "then a case's peak RSS starts from what the cases before it left, e.g. batch 32's caches)")
    p.add_argument("--work", type=Path, default=Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "s2s-bench",
                   help="where built models are cached (default ~/.cache/s2s-bench)")
    p.add_argument("--json", type=Path, help="also write every result to this file")
    p.add_argument("--serve", default="", help="instead of the cases: concurrent clients (comma-separated counts, e.g. 8,32) "
                   "sending one input at a time through s2s.Continuous and through a window batcher (cmd/s2s-bench serve), "
                   "on the inplace layout; outputs end at EOS or at the first --tokens")
    p.add_argument("--serve-requests", type=int, default=0, help="requests per serve run (default 4 x the clients)")
    p.add_argument("--serve-beams", type=int, default=1, help="beams of the serve runs' requests (default 1)")
    p.add_argument("--window-ms", type=float, default=20, help="the window batcher's window (default 20 ms)")
    p.add_argument("--cases", default="", help="comma-separated subset of case names without the length, "
                   "e.g. greedy/b1,beam4/b32 (default: all four)")
    a = p.parse_args(argv)
    if a.quick:
        a.models, a.tokens, a.inputs, a.batch, a.reps = "t5-tiny,g2p", "16", 4, 4, 1
    a.models = [m for m in a.models.split(",") if m]
    a.engines = [e for e in a.engines.split(",") if e]
    a.cases = [c for c in a.cases.split(",") if c]
    try:
        a.serve = [int(c) for c in a.serve.split(",") if c.strip()]
    except ValueError:
        p.error("--serve takes comma-separated client counts")
    known = {f"{s}/b{b}" for s in ("greedy", "beam4") for b in (1, a.batch if not a.quick else 4)}
    if set(a.cases) - known:
        p.error(f"unknown case(s) {', '.join(sorted(set(a.cases) - known))}; use {', '.join(sorted(known))}")
    bad = [e for e in a.engines if e not in ALL_ENGINES]
    if bad:
        p.error(f"unknown engine(s) {', '.join(bad)}; use {', '.join(ALL_ENGINES)}")
    try:
        a.tokens = [int(t) for t in a.tokens.split(",")]
        a.thread_sets = [tuple(int(x) for x in t.split(",")) for t in a.threads.split("+")]
        if any(len(t) != 2 or min(t) < 1 for t in a.thread_sets):
            raise ValueError
    except ValueError:
        p.error("--tokens and --threads take comma-separated integers (--threads intra,inter[+intra,inter...], each at least 1)")
    a.intra, a.inter = a.thread_sets[0]
    try:
        a.session_config = dict(kv.split("=", 1) for kv in a.ort_config.split(",") if kv.strip())
    except ValueError:
        p.error("--ort-config takes key=value[,key=value...]")
    a.session_config = {k.strip(): v.strip() for k, v in a.session_config.items()}
    if a.inputs < 1 or a.batch < 1 or a.reps < 1 or min(a.tokens) < 1:
        p.error("--inputs, --batch, --reps and --tokens must be at least 1")
    return a


def make_inputs(model: models.Model, n: int, seed: int = 7) -> list[list[int]]:
    """make_inputs returns n random source sequences of 5 to 40 ids (inside
    the vocabulary, special ids avoided) ending in EOS; for g2p, whose
    vocabulary is letters, n words of its test split, tokenized."""
    if model.kind == "g2p":
        return models.g2p_words(model, n, seed)
    if model.kind == "text":
        return models.text_inputs(model, n, seed)
    rng = random.Random(seed)
    hi = min(model.vocab - 2, 32000)
    return [[rng.randint(3, hi) for _ in range(rng.randint(4, 39))] + [model.eos] for _ in range(n)]


def make_cases(a, model) -> list[dict]:
    """make_cases returns the cases: greedy and beam 4, batch 1 and batch a.batch
    (inputs sorted by length), at every forced length."""
    single = make_inputs(model, a.inputs)
    batched = sorted(make_inputs(model, a.batch, seed=8), key=len)
    cases = []
    for n in a.tokens:
        for beams in (1, 4):
            search = "greedy" if beams == 1 else f"beam{beams}"
            cases.append(dict(name=f"{search}/b1/{n}", inputs=single, batch=1, beams=beams, new_tokens=n, reps=a.reps))
            if n <= 64 or a.long_batch or a.quick:
                cases.append(dict(name=f"{search}/b{a.batch}/{n}", inputs=batched, batch=a.batch, beams=beams,
                                  new_tokens=n, reps=a.reps))
    if getattr(a, "cases", None):
        cases = [c for c in cases if c["name"].rsplit("/", 1)[0] in a.cases]
    return cases


def build_driver() -> Path:
    out = ROOT / "bin" / "s2s-bench"
    subprocess.run(["go", "build", "-o", str(out), "./cmd/s2s-bench"], cwd=ROOT, check=True)
    return out


def run_engine(engine, spec, tmp: Path, driver, per_case=True) -> dict | str:
    """run_engine runs engine over spec, each case in a process of its own
    unless per_case is false (then all in one); it returns the results, or a
    string saying why the engine was skipped."""
    if per_case and len(spec["cases"]) > 1:
        merged = None
        for case in spec["cases"]:
            res = run_engine(engine, dict(spec, cases=[case]), tmp, driver, per_case=False)
            if isinstance(res, str):
                return f"{res} (case {case['name']})"
            if merged is None:
                merged = res
            else:
                merged["results"] += res["results"]
        return merged
    spec_path, out_path = tmp / f"spec-{engine}.json", tmp / f"out-{engine}.json"
    spec_path.write_text(json.dumps(spec))
    if engine in GO_ENGINES:
        cmd = [str(driver), "-spec", str(spec_path), "-out", str(out_path)]
    else:
        if engine.startswith("ct2"):
            try:
                import ctranslate2  # noqa: F401
            except ImportError:
                return "skipped: ctranslate2 not installed (pip install -r bench/requirements.txt)"
        cmd = [sys.executable, "-m", "bench.engines", engine, str(spec_path), str(out_path)]
    p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if p.returncode != 0:
        return f"skipped: failed: {p.stderr.strip().splitlines()[-1] if p.stderr.strip() else p.returncode}"
    return json.loads(out_path.read_text())


def pct(xs, q):
    xs = sorted(xs)
    k = (len(xs) - 1) * q
    lo = int(k)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def summarize(case, res, ref) -> dict:
    """summarize turns one engine's result of case into the table's figures."""
    n = case["new_tokens"]
    per_rep = [sum(t) for t in res["gen_ms"]]
    total_tokens = sum(len(o) for o in res["outputs"])
    gens = [t for rep in res["gen_ms"] for t in rep]
    row = dict(
        tok_s=total_tokens / (statistics.median(per_rep) / 1e3),
        ms_tok=statistics.median(gens) / n,
        lat50=statistics.median(gens), lat99=pct(gens, 0.99),
        rss_mb=res["peak_rss_kb"] / 1024, tokens=total_tokens,
        lengths_ok=all(len(o) == n for o in res["outputs"]) and len(res["outputs"]) == len(case["inputs"]),
    )
    if ref is not None:
        row["agree"] = agreement(res["outputs"], ref["outputs"])
    if res.get("limit_ms"):
        e2e, lim, situ = sum(res["limit_e2e_ms"]), sum(res["limit_ms"]), sum(res["in_situ_ort_ms"])
        row["overhead"] = (e2e - lim) / e2e
        # The host's own share, from the traced run alone (its calls' time
        # against its own length; the fastest run is another run). Results
        # written before traced_ms existed have no such share.
        if res.get("traced_ms"):
            traced = sum(res["traced_ms"])
            row["situ_overhead"] = (traced - situ) / traced
        row["limit_ms"], row["e2e_ms"] = lim, e2e
    return row


def table(rows) -> str:
    threads = len({r.get("threads") for r in rows}) > 1
    head = ("model", "case", "engine") + (("threads",) if threads else ()) + ("tok/s", "ms/tok p50", "lat p50 ms",
            "lat p99 ms", "peak RSS MB", "tokens", "= go seqs", "= go prefix", "overhead (L)")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        lead = [r["model"], r["case"], r["engine"]] + ([r.get("threads", "")] if threads else [])
        if "skip" in r:
            lines.append("| " + " | ".join(lead) + f" | {r['skip']} |" + " |" * (len(head) - len(lead) - 1))
            continue
        ag = r.get("agree")
        # The overhead splits into the host's own time (outside the ORT
        # calls of the generation) and the calls running slower in situ
        # than in the replay.
        ov = ""
        if "overhead" in r:
            situ = f"; outside ORT {100 * r['situ_overhead']:.1f}%" if "situ_overhead" in r else ""
            ov = f"{100 * r['overhead']:.1f}% (L {r['limit_ms']:.0f} of {r['e2e_ms']:.0f} ms{situ})"
        lines.append("| " + " | ".join(lead + [
            f"{r['tok_s']:.1f}", f"{r['ms_tok']:.2f}", f"{r['lat50']:.1f}",
            f"{r['lat99']:.1f}", f"{r['rss_mb']:.0f}", f"{r['tokens']}{'' if r['lengths_ok'] else ' (!)'}",
            f"{100 * ag[0]:.0f}%" if ag else "", f"{100 * ag[1]:.0f}%" if ag else "", ov]) + " |")
    return "\n".join(lines)


def best_table(rows) -> str:
    """best_table returns, per model, case and engine, the best tok/s over
    the thread settings measured, with the setting and the ratio of go's
    best to it."""
    best: dict[tuple, dict] = {}
    for r in rows:
        if "skip" in r:
            continue
        k = (r["model"], r["case"], r["engine"])
        if k not in best or r["tok_s"] > best[k]["tok_s"]:
            best[k] = r
    head = ("model", "case", "engine", "best tok/s", "at threads", "go's best / this")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for (m, c, e), r in best.items():
        go = best.get((m, c, GO_ENGINE))
        ratio = f"{go['tok_s'] / r['tok_s']:.2f}x" if go else ""
        lines.append(f"| {m} | {c} | {e} | {r['tok_s']:.1f} | {r['threads']} | {ratio} |")
    return "\n".join(lines)


def run(a, log=print) -> tuple[list[dict], bool]:
    """run runs the benchmark a describes (at each thread setting) and
    returns the rows of the table and whether every engine generated the
    forced number of tokens."""
    rows, ok = [], True
    for intra, inter in a.thread_sets:
        a.intra, a.inter = intra, inter
        r, o = run_threads(a, log)
        for row in r:
            row["threads"] = f"{intra},{inter}"
        rows += r
        ok = ok and o
    return rows, ok


def go_dir(engine: str, model: models.Model, work: Path, log) -> tuple[Path, str]:
    """go_dir returns the model directory and the decoder graphs a Go engine runs."""
    if engine == GO_OPTIMUM or model.inplace is None:
        return model.onnx, "merged"
    if engine == GO_INT8:
        return models.int8_dir(model, work, log=log, src=model.inplace), "auto"
    return model.inplace, "auto"


def run_threads(a, log=print) -> tuple[list[dict], bool]:
    """run_threads runs the benchmark at one thread setting (a.intra, a.inter)."""
    a.work.mkdir(parents=True, exist_ok=True)
    driver = build_driver() if set(GO_ENGINES) & set(a.engines) else None
    rows, ok = [], True
    for name in a.models:
        model = models.prepare(name, a.work, log=log)
        cases = make_cases(a, model)
        base = dict(model=str(model.onnx), intra_op_threads=a.intra, inter_op_threads=a.inter,
                    decoder_graphs=a.decoder_graphs, cases=cases, checkpoint=str(model.checkpoint),
                    tokenizer=str(model.checkpoint), kind=model.kind,
                    session_config=a.session_config, disable_mem_arena=a.no_arena, provider=a.provider)
        results = {}
        with tempfile.TemporaryDirectory() as tmp:
            for engine in a.engines:
                spec = dict(base)
                if engine in model.not_applicable:
                    results[engine] = model.not_applicable[engine]
                    continue
                if engine in GO_ENGINES:
                    spec = {k: base[k] for k in ("model", "intra_op_threads", "inter_op_threads", "decoder_graphs", "cases",
                                                 "session_config", "disable_mem_arena", "provider")}
                    spec["limit"] = a.limit
                    try:
                        d, graphs = go_dir(engine, model, a.work, log)
                    except Exception as e:  # models.QuantizeUnavailable: no quantize command yet; or it failed
                        log(f"bench: {name}: {engine}: {e}")
                        results[engine] = f"skipped: {e}"
                        continue
                    spec["model"] = str(d)
                    if model.kind == "hf":
                        spec["decoder_graphs"] = a.decoder_graphs if engine == GO_OPTIMUM else graphs
                if engine.startswith("ct2"):
                    try:
                        spec["ct2"] = str(models.ct2_dir(model, a.work, engine.removeprefix("ct2-"), log=log))
                    except ImportError:
                        results[engine] = "skipped: ctranslate2 not installed (pip install -r bench/requirements.txt)"
                        continue
                    except Exception as e:  # a converter that cannot take this checkpoint
                        results[engine] = f"skipped: conversion failed: {type(e).__name__}: {e}"
                        continue
                log(f"bench: {name}: {engine}")
                results[engine] = run_engine(engine, spec, Path(tmp), driver, per_case=not a.one_process)
        ref = results.get(GO_ENGINE)
        ref = ref if isinstance(ref, dict) else None
        for i, case in enumerate(cases):
            for engine in a.engines:
                if engine in model.not_applicable:
                    continue
                res = results[engine]
                row = dict(model=name, case=case["name"], engine=engine)
                if isinstance(res, str):
                    row["skip"] = res
                else:
                    row.update(summarize(case, res["results"][i], ref["results"][i] if ref and engine != GO_ENGINE else None))
                    ok = ok and row["lengths_ok"]
                rows.append(row)
        # an engine that cannot run this model: one row saying why, not one per case
        rows += [dict(model=name, case="all", engine=e, skip=model.not_applicable[e]) for e in a.engines if e in model.not_applicable]
    return rows, ok


def run_serve(a, log=print) -> list[dict]:
    """run_serve runs the serve mode of the Go driver for every model and
    returns its rows: batcher, clients, requests/s, latency."""
    a.work.mkdir(parents=True, exist_ok=True)
    driver = build_driver()
    rows = []
    for name in a.models:
        model = models.prepare(name, a.work, log=log)
        if model.inplace is None:
            rows.append(dict(model=name, skip="n/a: continuous batching needs the inplace layout"))
            continue
        clients = a.serve
        serve = dict(clients=clients, requests=a.serve_requests or 4 * max(clients), batchers=["continuous", "window"],
                     window_ms=a.window_ms, max_batch=max(clients), beams=a.serve_beams, max_new_tokens=a.tokens[0],
                     inputs=make_inputs(model, 64, seed=9))
        spec = dict(model=str(model.inplace), intra_op_threads=a.intra, inter_op_threads=a.inter, cases=[], serve=serve,
                    session_config=a.session_config, disable_mem_arena=a.no_arena)
        with tempfile.TemporaryDirectory() as tmp:
            log(f"bench: {name}: serve {clients}")
            res = run_engine(GO_ENGINE, spec, Path(tmp), driver, per_case=False)
        if isinstance(res, str):
            rows.append(dict(model=name, skip=res))
            continue
        for r in res["serve"]:
            rows.append(dict(model=name, **r))
    return rows


def serve_table(rows) -> str:
    head = ("model", "batcher", "clients", "requests", "req/s", "tok/s", "lat p50 ms", "lat p99 ms", "tokens/request",
            "rows (continuous: peak; window: mean batch)")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        if "skip" in r:
            lines.append(f"| {r['model']} | {r['skip']} |" + " |" * (len(head) - 2))
            continue
        lines.append(f"| {r['model']} | {r['batcher']} | {r['clients']} | {r['requests']} | {r['req_s']:.2f} | {r['tok_s']:.1f} | "
                     f"{r['lat_p50_ms']:.0f} | {r['lat_p99_ms']:.0f} | {r['mean_len']:.1f} | {r['mean_rows']:.1f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    a = parse_args(sys.argv[1:] if argv is None else argv)
    if a.serve:
        load_before = os.getloadavg()[0]
        rows = run_serve(a, log=lambda s: print(s, file=sys.stderr))
        print(serve_table(rows))
        print(f"\nthreads intra {a.intra} inter {a.inter}; beams {a.serve_beams}; max_new_tokens {a.tokens[0]}; "
              f"window {a.window_ms:g} ms, max batch {max(a.serve)}; load average (1 min) {load_before:.2f} before, "
              f"{os.getloadavg()[0]:.2f} after")
        if a.json:
            a.json.write_text(json.dumps(rows, indent=1))
        return 0
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    busy = subprocess.run(["pgrep", "-f", "g2p-train"], capture_output=True, text=True).stdout.strip()
    load_before = os.getloadavg()[0]
    rows, ok = run(a, log=lambda s: print(s, file=sys.stderr))
    load_after = os.getloadavg()[0]
    print(table(rows))
    if len(a.thread_sets) > 1:
        print("\nBest of the thread settings:\n")
        print(best_table(rows))
    extra = "".join([f"; ORT config {a.ort_config}" if a.session_config else "", "; arena off" if a.no_arena else "",
                     "; all cases of an engine in one process" if a.one_process else "; a process per case"])
    threads = " + ".join(f"intra {i} inter {j}" for i, j in a.thread_sets)
    print(f"\nprovider {a.provider}; threads {threads}; {a.reps} reps; go: the inplace layout, go-optimum: decoder graphs {a.decoder_graphs}{extra}; "
          f"machine {'BUSY (g2p-train running): timings are not meaningful' if busy else 'no training run'}, "
          f"load average (1 min) {load_before:.2f} before, {load_after:.2f} after")
    print("token counts: " + ("every engine generated the forced number of tokens" if ok else "MISMATCH (rows marked (!))"))
    if a.json:
        a.json.write_text(json.dumps(rows, indent=1))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
