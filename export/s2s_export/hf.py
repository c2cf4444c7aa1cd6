"""hf exports a local Hugging Face encoder-decoder checkpoint (T5/mT5,
BART/mBART, Marian) into an s2s model directory:

    encoder_model.onnx          the encoder, written by Optimum
    decoder_cross.onnx,         the decoder in the "inplace" layout (the default;
    decoder_step.onnx           inplace.py): our own graphs, built from the
                                PyTorch weights
    decoder_model.onnx, decoder_with_past_model.onnx,
    decoder_model_merged.onnx   instead, with --layout optimum: Optimum's decoders
    tokenizer.json              source-side tokenizer (tokenizers library)
    tokenizer_target.json       target-side tokenizer, Marian only
    config.json                 the checkpoint's Hugging Face config
    generation_config.json      the checkpoint's (or the one derived from config)
    s2s.json                    the manifest the Go host reads

docs/model-format.md documents every file and every graph input and output.
The export is written to a staging directory beside OUT_DIR, self-checked
against the PyTorch model there, and only then moved into place.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from . import families, graphs, inplace
from .errors import ExportError

MANIFEST = "s2s.json"
TASK = "text2text-generation-with-past"
DEFAULT_ATOL = 1e-4
LAYOUT_OPTIMUM = "optimum"
LAYOUTS = (inplace.LAYOUT, LAYOUT_OPTIMUM)
DEFAULT_LAYOUT = inplace.LAYOUT


def add_arguments(p: argparse.ArgumentParser) -> None:
    """add_arguments declares the arguments of `hf`."""
    p.add_argument("src", metavar="SRC_DIR", help="local Hugging Face checkpoint (a save_pretrained directory)")
    p.add_argument("out", metavar="OUT_DIR", help="model directory to write (with --single-file: the .onnx file)")
    p.add_argument("--force", action="store_true", help="replace OUT_DIR if it exists and is not empty")
    p.add_argument("--opset", type=int, default=None, help="ONNX opset (default: Optimum's for the family)")
    p.add_argument("--no-check", dest="check", action="store_false", help="skip the self-check against PyTorch")
    p.add_argument("--atol", type=float, default=DEFAULT_ATOL, help=f"self-check tolerance on logits (default {DEFAULT_ATOL:g})")
    p.add_argument("--layout", choices=LAYOUTS, default=None,
                   help=f"decoder graphs: {inplace.LAYOUT} (ours: the self-attention cache written in place, beams by "
                        f"cache indirection, rows at different steps) or {LAYOUT_OPTIMUM} (Optimum's past/present graphs); "
                        f"default {DEFAULT_LAYOUT}, and {LAYOUT_OPTIMUM} with --single-file (a packed file holds that layout only)")
    p.add_argument("--quantize", choices=("int8",), default=None,
                   help="also quantize the graphs (int8 dynamic, `quantize`'s defaults) after the float32 self-check; "
                        "the int8 graphs' difference from PyTorch is reported, not checked")
    p.add_argument("--single-file", action="store_true",
                   help="write the checked model as one packed ONNX file at OUT (`pack`'s format) instead of a directory")


def run(args: argparse.Namespace) -> int:
    """run exports a local Hugging Face checkpoint (T5, BART, Marian) to an s2s model directory."""
    manifest = export(Path(args.src), Path(args.out), force=args.force, opset=args.opset, check=args.check, atol=args.atol,
                      quantize=args.quantize, single_file=args.single_file,
                      layout=args.layout or (LAYOUT_OPTIMUM if args.single_file else DEFAULT_LAYOUT))
    q = f", {args.quantize} weights" if args.quantize else ""
    print(f"wrote {args.out} ({manifest['model_type']}, {manifest.get('layout', LAYOUT_OPTIMUM)} layout, "
          f"{manifest['num_layers']} decoder layers, vocab {manifest['vocab_size']}{q})")
    return 0


def load_config(src: Path) -> Any:
    """load_config reads src/config.json with transformers, offline."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoConfig

    if not src.is_dir():
        raise ExportError(f"{src} is not a directory; pass a checkpoint written by save_pretrained")
    if not (src / "config.json").is_file():
        raise ExportError(f"{src} has no config.json; pass a checkpoint written by save_pretrained")
    try:
        return AutoConfig.from_pretrained(str(src), local_files_only=True)
    except Exception as e:
        raise ExportError(f"{src}/config.json: transformers cannot read it ({e}); fix the config") from e


def load_generation_config(src: Path, config: Any) -> Any:
    """load_generation_config reads src/generation_config.json, or derives one
    from config as transformers does when the file is missing."""
    from transformers import GenerationConfig

    if (src / "generation_config.json").is_file():
        try:
            return GenerationConfig.from_pretrained(str(src), local_files_only=True)
        except Exception as e:
            raise ExportError(f"{src}/generation_config.json: transformers cannot read it ({e}); fix or delete it") from e
    return GenerationConfig.from_model_config(config)


def _ids(v: Any) -> list[int]:
    """_ids turns a token id given as None, an int or a list into a list."""
    if v is None:
        return []
    if isinstance(v, (list, tuple)):
        return [int(x) for x in v]
    return [int(v)]


def special_ids(config: Any, gen: Any, src: Path) -> dict[str, Any]:
    """special_ids returns the manifest's special token ids.

    The generation config wins over config.json, as in transformers'
    generate(); decoder_start_token_id falls back to bos_token_id as
    generate() does (mBART). eos_token_id is always a list; a missing bos or
    pad id is -1. A missing eos or decoder start id is an ExportError.
    """

    def pick(name: str) -> list[int]:
        return _ids(getattr(gen, name, None)) or _ids(getattr(config, name, None))

    eos = pick("eos_token_id")
    if not eos:
        raise ExportError(f"{src}: no eos_token_id in config.json or generation_config.json; set one")
    bos = pick("bos_token_id")
    pad = pick("pad_token_id")
    start = pick("decoder_start_token_id") or bos
    if not start:
        raise ExportError(
            f"{src}: no decoder_start_token_id (nor bos_token_id) in config.json or generation_config.json; set one"
        )
    return {
        "pad_token_id": pad[0] if pad else -1,
        "eos_token_id": eos,
        "bos_token_id": bos[0] if bos else -1,
        "decoder_start_token_id": start[0],
    }


def build_manifest(config: Any, gen: Any, exporter: families.Exporter, out: Path, src: Path,
                   tokenizers: tuple[str, str], layout: str = LAYOUT_OPTIMUM,
                   extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """build_manifest returns s2s.json's content for the graphs in out.

    vocab_size is the logits width read from the step decoder
    (decoder_with_past_model.onnx, or decoder_step.onnx in the inplace
    layout); it must equal the config's (decoder) vocabulary size. extra
    holds the layout's own fields (inplace.manifest_fields).
    """
    enc = graphs.signature(out / graphs.ENCODER)
    step = inplace.STEP if layout == inplace.LAYOUT else graphs.DECODER_WITH_PAST
    dec = graphs.signature(out / step)
    width = dec.output("logits").shape[-1]
    want = getattr(config, "decoder_vocab_size", None) or config.vocab_size
    if not isinstance(width, int) or width <= 0:
        width = want
    if width != want:
        raise ExportError(f"the exported logits are {width} wide but the config's vocabulary has {want} tokens; re-export")
    d = exporter.dims(config)
    if layout == inplace.LAYOUT:
        files = {"encoder": graphs.ENCODER, "decoder_cross": inplace.CROSS, "decoder_step": inplace.STEP}
    else:
        files = {
            "encoder": graphs.ENCODER,
            "decoder": graphs.DECODER,
            "decoder_with_past": graphs.DECODER_WITH_PAST,
            "decoder_merged": graphs.DECODER_MERGED,
        }
    m: dict[str, Any] = {
        "format": "s2s-model",
        "version": 1,
        "architecture": "transformer",
        "model_type": config.model_type,
        **({"layout": layout} if layout != LAYOUT_OPTIMUM else {}),
        "files": files,
        "tokenizer": {"source": tokenizers[0], "target": tokenizers[1]},
        "num_layers": d.num_layers,
        "num_heads": d.num_heads,
        "head_dim": d.head_dim,
        "hidden_size": d.hidden_size,
        "vocab_size": width,
    }
    m.update(special_ids(config, gen, src))
    m.update(extra or {})
    m["encoder_inputs"] = enc.input_names()
    m["encoder_outputs"] = enc.output_names()
    m["decoder_inputs"] = dec.input_names()
    m["decoder_outputs"] = dec.output_names()
    return m


def validate_manifest(m: dict[str, Any], out: Path) -> None:
    """validate_manifest checks what the Go host's models.Validate checks, and
    that the cache names match num_layers, before the manifest is saved."""
    for f in list(m["files"].values()) + list(m["tokenizer"].values()):
        if not (out / f).is_file():
            raise ExportError(f"{f} was not written; re-run the export")
    if m["vocab_size"] <= 0 or not m["eos_token_id"] or m["decoder_start_token_id"] < 0:
        raise ExportError("the manifest lacks vocab_size, eos_token_id or decoder_start_token_id; fix the config")
    if m.get("layout") == inplace.LAYOUT:
        past = [n for n in m["decoder_inputs"] if n.startswith("past.")]
        cross = [n for n in m["decoder_inputs"] if n.startswith("cross.")]
        if len(past) != 2 * m["num_layers"] or len(cross) != 2 * m["num_layers"]:
            raise ExportError(
                f"{inplace.STEP} has {len(past)} past and {len(cross)} cross inputs but num_layers is "
                f"{m['num_layers']} (2 each per layer expected); the config and the graph disagree"
            )
    else:
        past = [n for n in m["decoder_inputs"] if n.startswith("past_key_values.")]
        if len(past) != 4 * m["num_layers"]:
            raise ExportError(
                f"{graphs.DECODER_WITH_PAST} has {len(past)} past inputs but num_layers is {m['num_layers']} "
                "(4 per layer expected); the config and the graph disagree"
            )
    if "logits" not in m["decoder_outputs"] or "last_hidden_state" not in m["encoder_outputs"]:
        raise ExportError("the graphs lack logits or last_hidden_state; re-export with Optimum's layout")


def _check_out(out: Path, src: Path, force: bool) -> None:
    """_check_out refuses an existing non-empty OUT_DIR unless force, and never
    lets --force remove the checkpoint itself or a directory above it."""
    if out.exists() and not out.is_dir():
        raise ExportError(f"{out} exists and is a file; pass a directory path")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise ExportError(f"{out} exists and is not empty; pass --force to replace it")
    o, s = out.resolve(), src.resolve()
    if o == s or o in s.parents or o == Path(o.anchor) or o == Path.home().resolve():
        raise ExportError(f"refusing to write into {out}: it holds the checkpoint or is a top directory; pick a new OUT_DIR")


def _optimum_export(src: Path, dest: Path, opset: int | None) -> None:
    """_optimum_export runs Optimum's exporter on src into dest, offline, without its own validation."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import warnings

    from optimum.exporters.onnx import main_export
    from optimum.utils import logging as optimum_logging
    from transformers.utils import logging as hf_logging

    levels = hf_logging.get_verbosity(), optimum_logging.get_verbosity()
    try:
        # The tracer's warnings are about Python branches Optimum's export
        # already handles, and without accelerate Optimum keeps tied weights
        # duplicated (larger files, same results); the self-check is what
        # tells a good export.
        hf_logging.set_verbosity_error()
        optimum_logging.set_verbosity_error()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            main_export(
                str(src), dest, task=TASK, opset=opset, device="cpu", framework="pt", library_name="transformers",
                local_files_only=True, do_validation=False,
            )
    except Exception as e:
        raise ExportError(f"optimum could not export {src} ({type(e).__name__}: {e})") from e
    finally:
        hf_logging.set_verbosity(levels[0])
        optimum_logging.set_verbosity(levels[1])
    missing = [g for g in graphs.GRAPHS if not (dest / g).is_file()]
    if missing:
        raise ExportError(f"optimum did not write {', '.join(missing)}; check the optimum-onnx version (0.1.0 expected)")


def write_inplace(src: Path, model_dir: Path) -> dict[str, Any]:
    """write_inplace writes the inplace layout's decoder graphs of the checkpoint
    src into model_dir and returns the manifest fields they add."""
    import torch
    from transformers import AutoModelForSeq2SeqLM

    try:
        model = AutoModelForSeq2SeqLM.from_pretrained(str(src), local_files_only=True, dtype=torch.float32).eval()
    except Exception as e:
        raise ExportError(f"{src}: transformers cannot load the model ({e}); pass a save_pretrained checkpoint") from e
    spec = inplace.export_graphs(model, model_dir)
    return inplace.manifest_fields(spec)


def export(src: Path, out: Path, *, force: bool = False, opset: int | None = None, check: bool = True,
           atol: float = DEFAULT_ATOL, quantize: str | None = None, single_file: bool = False,
           layout: str = DEFAULT_LAYOUT, log=print) -> dict[str, Any]:
    """export writes the s2s model directory out from the checkpoint src and returns the manifest.

    Everything is validated before out is touched: the config class must have
    an exporter, out must be new or empty (or force given). With check, the
    graphs are run step by step against the PyTorch model (check.py) and a
    mismatch above atol raises CheckError and leaves out untouched.
    With quantize ("int8"), the checked float32 graphs are then quantized
    (quantize.py's defaults) and out gets the int8 directory; their largest
    difference from PyTorch is logged (with check), not held to atol.
    With single_file, out is a file: the checked directory packed into one
    ONNX file (pack.py), the directory itself not kept; layout must then be
    Optimum's.
    """
    src, out = Path(src), Path(out)
    if layout not in LAYOUTS:
        raise ExportError(f"layout {layout!r} is unknown; use one of {', '.join(LAYOUTS)}")
    if single_file and layout != LAYOUT_OPTIMUM:
        # The inplace decoder's cache is bound to the same buffer as input and
        # output, which a branch of pack's If nodes cannot keep.
        raise ExportError(f"a single file holds the {LAYOUT_OPTIMUM} layout only; drop --layout {layout} or --single-file")
    config = load_config(src)
    exporter = families.exporter_for(config)
    exporter.validate(config, src)
    gen = load_generation_config(src, config)
    special_ids(config, gen, src)
    if single_file:
        from . import pack

        pack.check_out_file(out, force)
        if src.resolve() in out.resolve().parents:
            raise ExportError(f"refusing to write {out} inside the checkpoint {src}; pick another path")
    else:
        _check_out(out, src, force)

    out.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        optimum_dir = stage / "optimum"
        _optimum_export(src, optimum_dir, opset)
        model_dir = stage / "model"
        model_dir.mkdir()
        # The graphs (and any external weight files, *.onnx_data) are Optimum's
        # (in the inplace layout its encoder only, with the decoders built by
        # inplace.py); tokenizer and config files are ours, written below.
        extra = None
        for f in optimum_dir.iterdir():
            if ".onnx" in f.name and (layout == LAYOUT_OPTIMUM or f.name.startswith(graphs.ENCODER)):
                shutil.move(str(f), model_dir / f.name)
        if layout == inplace.LAYOUT:
            extra = write_inplace(src, model_dir)
        tokenizers = exporter.write_tokenizers(src, model_dir)
        shutil.copyfile(src / "config.json", model_dir / "config.json")
        if (src / "generation_config.json").is_file():
            shutil.copyfile(src / "generation_config.json", model_dir / "generation_config.json")
        else:
            gen.save_pretrained(str(model_dir))
        manifest = build_manifest(config, gen, exporter, model_dir, src, tokenizers, layout=layout, extra=extra)
        validate_manifest(manifest, model_dir)
        (model_dir / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        if check:
            from . import check as selfcheck

            report = selfcheck.check(src, model_dir, atol=atol)
            log(report.summary())
        if quantize is not None:
            from . import quantize as quant

            if quantize != "int8":
                raise ExportError(f"quantize {quantize!r} is not supported; use int8")
            qdir = stage / "int8"
            for line in quant.quantize_dir(model_dir, qdir):
                log(line)
            if check:
                from . import check as selfcheck

                # Quantization moves logits by far more than atol; a NaN or a
                # graph that fails to run is still an error.
                report = selfcheck.check(src, qdir, atol=float("inf"))
                log("int8 " + report.summary() + "\n(int8: reported, not checked; measure agreement with `agreement`)")
            manifest = json.loads((qdir / MANIFEST).read_text())
            model_dir = qdir
        if single_file:
            from . import pack

            for line in pack.pack_dir(model_dir, out, force=True):
                log(line)
        else:
            if out.exists():
                shutil.rmtree(out)
            shutil.move(str(model_dir), out)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return manifest
