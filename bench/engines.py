"""engines runs one Python engine over a spec in its own process, so that
its peak resident set size is its own, and writes the same results format as
the Go driver (cmd/s2s-bench):

    python -m bench.engines ENGINE SPEC.json OUT.json

ENGINE is one of ENGINES. The spec adds to the Go driver's fields
"checkpoint" (PyTorch), "ct2" (CTranslate2 directory) and "tokenizer"
(a fast tokenizer directory, for CTranslate2's token strings).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

ENGINES = ("optimum", "optimum-iobinding", "pytorch", "ct2-float32", "ct2-int8")

# With "kind": "g2p" the spec's checkpoint is a g2p model directory
# (models/g2p-en) and "pytorch" runs our own module (s2s_export.rnn) through
# its transformers wrapper, the one g2p-eval and g2p-reference decode with.


def reset_peak_rss() -> None:
    """reset_peak_rss resets the kernel's peak RSS of this process (Linux 4.0+)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def peak_rss_kb() -> int:
    """peak_rss_kb returns VmHWM in kB, or -1."""
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return -1


def batches(inputs, n):
    return [inputs[i:i + n] for i in range(0, len(inputs), n)]


def _padded(batch, pad):
    import torch

    n = max(len(x) for x in batch)
    ids = torch.full((len(batch), n), pad, dtype=torch.long)
    mask = torch.zeros((len(batch), n), dtype=torch.long)
    for i, x in enumerate(batch):
        ids[i, :len(x)] = torch.tensor(x)
        mask[i, :len(x)] = 1
    return ids, mask


def cuda_preload(spec: dict) -> None:
    """cuda_preload makes onnxruntime-gpu load the CUDA 13 and cuDNN libraries
    of .ort/cuda/lib (scripts/setup.sh ort-cuda) before torch loads its own
    CUDA 12 ones: cuDNN has one soname for both, and the first loaded wins."""
    if spec.get("provider") != "cuda":
        return
    import onnxruntime as ort

    if "CUDAExecutionProvider" not in ort.get_available_providers():
        raise SystemExit("bench.engines: this onnxruntime has no CUDA provider; install onnxruntime-gpu "
                         "(scripts/gpu-check.sh does, into .venv-gpu)")
    lib = Path(__file__).resolve().parent.parent / ".ort" / "cuda" / "lib"
    if lib.is_dir():
        ort.preload_dlls(cuda=True, cudnn=True, directory=str(lib))


def hf_generator(engine: str, spec: dict):
    """hf_generator returns a function generating one batch through
    transformers' generate() on PyTorch or on Optimum's ORT model."""
    cuda = spec.get("provider") == "cuda"
    if cuda and engine != "pytorch":
        cuda_preload(spec)
    import torch

    torch.set_num_threads(spec["intra_op_threads"])
    try:
        torch.set_num_interop_threads(spec["inter_op_threads"])
    except RuntimeError:
        pass
    if engine == "pytorch":
        from transformers import AutoModelForSeq2SeqLM

        model = AutoModelForSeq2SeqLM.from_pretrained(spec["checkpoint"], local_files_only=True).eval()
        if cuda:
            model = model.to("cuda")
    else:
        import onnxruntime as ort
        from optimum.onnxruntime import ORTModelForSeq2SeqLM

        so = ort.SessionOptions()
        so.intra_op_num_threads = spec["intra_op_threads"]
        so.inter_op_num_threads = spec["inter_op_threads"]
        so.enable_cpu_mem_arena = not spec.get("disable_mem_arena", False)
        for k, v in (spec.get("session_config") or {}).items():
            so.add_session_config_entry(k, v)
        model = ORTModelForSeq2SeqLM.from_pretrained(
            spec["model"], local_files_only=True, provider="CUDAExecutionProvider" if cuda else "CPUExecutionProvider",
            session_options=so,
            use_io_binding=engine == "optimum-iobinding", use_merged=spec.get("decoder_graphs") == "merged")
    pad = model.generation_config.pad_token_id
    pad = 0 if pad is None else pad

    def gen(batch, case):
        ids, mask = _padded(batch, pad)
        if cuda:
            ids, mask = ids.to(model.device), mask.to(model.device)
        with torch.inference_mode():
            out = model.generate(input_ids=ids, attention_mask=mask, do_sample=False, num_beams=case["beams"],
                                 num_return_sequences=1, min_new_tokens=case["new_tokens"],
                                 max_new_tokens=case["new_tokens"])
        return [row[1:].tolist() for row in out]  # without the decoder start token

    return gen


def g2p_generator(spec: dict):
    """g2p_generator returns a function generating one batch with the PyTorch
    G2P model rebuilt from the directory's graphs (export.load_model), through
    search.HFG2P, transformers' generate() on the LSTM state: the same search
    as g2p-eval / g2p-reference, with min_new_tokens = max_new_tokens."""
    import torch
    from s2s_export.rnn import export, search

    torch.set_num_threads(spec["intra_op_threads"])
    try:
        torch.set_num_interop_threads(spec["inter_op_threads"])
    except RuntimeError:
        pass
    model, _, _ = export.load_model(Path(spec["checkpoint"]))
    wrapped = search.HFG2P(model)
    pad = model.cfg.pad_token_id

    def gen(batch, case):
        n = case["new_tokens"]
        gc = search.generation_config(model, case["beams"], max_length=n + 1)
        gc.min_new_tokens = gc.max_new_tokens = n
        ids, mask = _padded(batch, pad)
        with torch.inference_mode():
            out = wrapped.generate(input_ids=ids, attention_mask=mask, generation_config=gc, num_return_sequences=1)
        return [row[1:].tolist() for row in out]  # without the decoder start token

    return gen


def ct2_generator(engine: str, spec: dict):
    """ct2_generator returns a function generating one batch with CTranslate2."""
    import ctranslate2
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(spec["tokenizer"], local_files_only=True)
    compute = engine.removeprefix("ct2-")
    # On CUDA, CTranslate2's wheel links CUDA 12's cuBLAS: the one torch's
    # nvidia packages bring (transformers has imported torch by now).
    device = "cuda" if spec.get("provider") == "cuda" else "cpu"
    tr = ctranslate2.Translator(spec["ct2"], device=device, compute_type=compute,
                                inter_threads=spec["inter_op_threads"], intra_threads=spec["intra_op_threads"])

    def gen(batch, case):
        src = [tok.convert_ids_to_tokens(x) for x in batch]
        res = tr.translate_batch(src, beam_size=case["beams"], num_hypotheses=1, max_batch_size=0,
                                 min_decoding_length=case["new_tokens"], max_decoding_length=case["new_tokens"])
        return [tok.convert_tokens_to_ids(r.hypotheses[0]) for r in res]

    return gen


def run(engine: str, spec: dict) -> dict:
    """run times every case of spec with engine; see cmd/s2s-bench for the format."""
    if engine not in ENGINES:
        raise SystemExit(f"bench.engines: unknown engine {engine!r}; use one of {', '.join(ENGINES)}")
    if spec.get("kind") == "g2p":
        if engine != "pytorch":
            raise SystemExit(f"bench.engines: {engine} cannot run the g2p model; only pytorch (and the Go host) can")
        gen = g2p_generator(spec)
    elif engine.startswith("ct2"):
        gen = ct2_generator(engine, spec)
    else:
        gen = hf_generator(engine, spec)
    results = []
    for case in spec["cases"]:
        bs = batches(case["inputs"], case["batch"])
        gen(bs[0], case)  # warm up
        reset_peak_rss()
        res = {"name": case["name"], "gen_ms": [], "outputs": []}
        for rep in range(case["reps"]):
            times = []
            for b in bs:
                start = time.perf_counter()
                outs = gen(b, case)
                times.append((time.perf_counter() - start) * 1e3)
                if rep == 0:
                    res["outputs"].extend(outs)
            res["gen_ms"].append(times)
        res["peak_rss_kb"] = peak_rss_kb()
        results.append(res)
    return {"engine": engine, "results": results}


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 3:
        print(__doc__.strip().splitlines()[3].strip(), file=sys.stderr)
        return 2
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    engine, spec_path, out_path = argv
    spec = json.loads(Path(spec_path).read_text())
    out = run(engine, spec)
    Path(out_path).write_text(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
