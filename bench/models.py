"""models makes the benchmark's checkpoints: random-weight models built from
the configs of real ones (no download), their ONNX export in the s2s layout,
and their CTranslate2 conversions. Everything is cached under the work
directory, keyed by name, and remade only when missing.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# G2P_DIR is the seed model, trained here (docs/g2p.md): an LSTM
# encoder-decoder with attention, in the s2s "rnn" layout.
G2P_DIR = ROOT / "models" / "g2p-en"
G2P_NOT_APPLICABLE = {
    "optimum": "n/a: Optimum's ORTModelForSeq2SeqLM loads transformers architectures only; g2p is our LSTM (s2s rnn layout: encoder + one recurrent step graph)",
    "ct2": "n/a: CTranslate2 converts Transformer checkpoints only; g2p is an LSTM with attention",
}

# SHAPES are the benchmark models: family, the config of the real model they
# copy, and the vocabulary layout (special ids) of its tokenizer.
SHAPES = {
    # Helsinki-NLP/opus-mt-en-de
    "marian": dict(family="marian", config=dict(
        vocab_size=58101, decoder_vocab_size=58101, d_model=512, encoder_layers=6, decoder_layers=6,
        encoder_attention_heads=8, decoder_attention_heads=8, encoder_ffn_dim=2048, decoder_ffn_dim=2048,
        max_position_embeddings=512, activation_function="swish", scale_embedding=True,
        pad_token_id=58100, eos_token_id=0, decoder_start_token_id=58100, forced_eos_token_id=0,
        share_encoder_decoder_embeddings=True)),
    # google-t5/t5-small
    "t5": dict(family="t5", config=dict(
        vocab_size=32128, d_model=512, d_kv=64, d_ff=2048, num_layers=6, num_decoder_layers=6, num_heads=8,
        relative_attention_num_buckets=32, feed_forward_proj="relu", tie_word_embeddings=True,
        pad_token_id=0, eos_token_id=1, decoder_start_token_id=0)),
}


# SERVE_SHAPES are the server runs' models: tiny.make_tiny's shaped random
# weights (cross-attention sharpened, EOS calibrated, the committed test
# tokenizer) at a real model's layer sizes, so that greedy outputs end with
# EOS at varied lengths, as a trained model's do (a plain random-weight
# model repeats one token, or ends at once). t5-serve: t5-small's layers
# (6+6 x 512, 8 heads, FFN 2048, gated GELU), the 824-token test
# vocabulary.
SERVE_SHAPES = {"t5-serve": dict(family="t5", seed=3, d_model=512, layers=6, heads=8, ffn=2048)}


@dataclass
class Model:
    """Model is one benchmark model: its ONNX directory, and when known the
    PyTorch checkpoint it came from."""

    name: str
    onnx: Path  # Optimum's decoder graphs (--layout optimum)
    checkpoint: Path | None
    eos: int
    vocab: int
    inplace: Path | None = None  # the same checkpoint in the inplace layout (the exporter's default)
    # kind is "hf" (a transformers checkpoint), "g2p" (our LSTM model,
    # models/g2p-en, whose PyTorch module is rebuilt from its graphs) or
    # "text" (a checkpoint with a real tokenizer: inputs are texts).
    kind: str = "hf"
    # not_applicable maps an engine to why it cannot run this model.
    not_applicable: dict[str, str] = field(default_factory=dict)


def _specials(family: str, vocab: int) -> dict[int, str]:
    if family == "marian":
        return {0: "</s>", 1: "<unk>", vocab - 1: "<pad>"}
    return {0: "<pad>", 1: "</s>", 2: "<unk>"}


def _tokenizer(family: str, vocab: int):
    """_tokenizer returns a fast tokenizer whose pieces are ▁t<id>: every id
    is one word, so ids go straight in and out (the Go host reads it, CTranslate2
    takes its vocabulary)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    special = _specials(family, vocab)
    pieces = [(special.get(i, f"▁t{i}"), 0.0 if i in special else -10.0) for i in range(vocab)]
    unk = next(i for i, s in special.items() if s == "<unk>")
    tok = Tokenizer(models.Unigram(pieces, unk_id=unk, byte_fallback=False))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    inv = {v: k for k, v in special.items()}
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="</s>", unk_token="<unk>", pad_token="<pad>",
                                   model_max_length=512, **({} if family == "marian" else {}))


def random_checkpoint(name: str, out: Path, seed: int = 1) -> Path:
    """random_checkpoint writes the random-weight checkpoint SHAPES[name]
    (save_pretrained: model, generation config, tokenizer) to out."""
    import torch
    from transformers import GenerationConfig, MarianConfig, MarianMTModel, T5Config, T5ForConditionalGeneration

    shape = SHAPES[name]
    family = shape["family"]
    if family == "marian":
        config, cls = MarianConfig(**shape["config"]), MarianMTModel
    else:
        config, cls = T5Config(**shape["config"]), T5ForConditionalGeneration
    torch.manual_seed(seed)
    model = cls(config).eval()
    gen = GenerationConfig.from_model_config(config)
    if family == "marian":
        gen.bad_words_ids = [[config.pad_token_id]]  # as opus-mt's generation config
    model.generation_config = gen
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out))
    _tokenizer(family, config.vocab_size).save_pretrained(str(out))
    return out


def export_onnx(ckpt: Path, out: Path, layout: str = "optimum") -> Path:
    """export_onnx writes the s2s model directory of ckpt to out with the
    exporter's own steps (Optimum's graphs, or with layout "inplace"
    Optimum's encoder and our decoder graphs; s2s.json), taking
    tokenizer.json from the checkpoint's fast tokenizer. The self-check
    against PyTorch is left to the benchmark, which compares the outputs of
    every engine."""
    from s2s_export import families, graphs, hf, inplace
    from transformers import AutoTokenizer

    config = hf.load_config(ckpt)
    exporter = families.exporter_for(config)
    gen = hf.load_generation_config(ckpt, config)
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    hf._optimum_export(ckpt, tmp / "optimum", None)
    model_dir = tmp / "model"
    model_dir.mkdir()
    extra = None
    for f in (tmp / "optimum").iterdir():
        if ".onnx" in f.name and (layout == "optimum" or f.name.startswith(graphs.ENCODER)):
            shutil.move(str(f), model_dir / f.name)
    if layout == inplace.LAYOUT:
        extra = hf.write_inplace(ckpt, model_dir)
    tok = AutoTokenizer.from_pretrained(str(ckpt), local_files_only=True)
    backend = tok.backend_tokenizer
    backend.no_padding()
    backend.no_truncation()
    backend.save(str(model_dir / "tokenizer.json"))
    shutil.copyfile(ckpt / "config.json", model_dir / "config.json")
    shutil.copyfile(ckpt / "generation_config.json", model_dir / "generation_config.json")
    manifest = hf.build_manifest(config, gen, exporter, model_dir, ckpt, ("tokenizer.json", "tokenizer.json"),
                                 layout=layout, extra=extra)
    hf.validate_manifest(manifest, model_dir)
    (model_dir / "s2s.json").write_text(json.dumps(manifest, indent=2) + "\n")
    shutil.rmtree(out, ignore_errors=True)
    shutil.move(str(model_dir), out)
    shutil.rmtree(tmp, ignore_errors=True)
    return out


def convert_ct2(ckpt: Path, out: Path, quantization: str) -> Path:
    """convert_ct2 converts ckpt with CTranslate2's Transformers converter."""
    import ctranslate2

    ctranslate2.converters.TransformersConverter(str(ckpt)).convert(str(out), quantization=quantization, force=True)
    return out


def prepare(name: str, work: Path, log=print) -> Model:
    """prepare returns the benchmark model name, making what is missing under work.

    "t5-tiny" is the committed testdata/t5-tiny, with its checkpoint remade
    by make_tiny from the seed that made it; "marian" and "t5" are SHAPES.
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    base = work / name
    ckpt = base / "checkpoint"
    inplace = None
    if name == "t5-tiny":
        onnx = ROOT / "testdata" / "t5-tiny"
        inplace = ROOT / "testdata" / "t5-tiny-inplace"
        if not (ckpt / "config.json").is_file():
            from s2s_export.tiny import make_tiny

            log(f"bench: remaking the t5-tiny checkpoint (make_tiny seed 2) in {ckpt}")
            shutil.rmtree(ckpt, ignore_errors=True)
            make_tiny("t5", ckpt, 2)
    elif name in SHAPES:
        onnx = base / "onnx"
        if not (ckpt / "config.json").is_file():
            log(f"bench: building the random {name} checkpoint in {ckpt}")
            random_checkpoint(name, ckpt)
        if not (onnx / "s2s.json").is_file():
            log(f"bench: exporting {name} to ONNX in {onnx}")
            export_onnx(ckpt, onnx)
        inplace = base / "onnx-inplace"
        if not (inplace / "s2s.json").is_file():
            log(f"bench: exporting {name} to ONNX in the inplace layout in {inplace}")
            export_onnx(ckpt, inplace, "inplace")
    elif name in SERVE_SHAPES:
        shape = SERVE_SHAPES[name]
        onnx = inplace = base / "onnx-inplace"
        if not (ckpt / "config.json").is_file():
            from s2s_export.tiny import make_tiny

            log(f"bench: building the shaped random {name} checkpoint in {ckpt} (make_tiny, EOS calibrated)")
            shutil.rmtree(ckpt, ignore_errors=True)
            make_tiny(shape["family"], ckpt, shape["seed"], d_model=shape["d_model"], layers=shape["layers"],
                      heads=shape["heads"], ffn=shape["ffn"])
        if not (inplace / "s2s.json").is_file():
            log(f"bench: exporting {name} in the inplace layout in {inplace}")
            from s2s_export import hf

            hf.export(ckpt, inplace, force=True, check=False, log=lambda s: None)
        man = json.loads((inplace / "s2s.json").read_text())
        return Model(name=name, onnx=inplace, checkpoint=ckpt, eos=man["eos_token_id"][0], vocab=man["vocab_size"],
                     inplace=inplace, kind="text")
    elif name == "g2p":
        man = json.loads((G2P_DIR / "s2s.json").read_text())
        na = {e: G2P_NOT_APPLICABLE["optimum" if e.startswith("optimum") else "ct2"]
              for e in ("optimum", "optimum-iobinding", "ct2-float32", "ct2-int8")}
        # The PyTorch module is rebuilt from the graphs' weights (s2s_export.rnn.export.load_model).
        return Model(name=name, onnx=G2P_DIR, checkpoint=G2P_DIR, eos=man["eos_token_id"][0], vocab=man["vocab_size"],
                     kind="g2p", not_applicable=na)
    else:
        raise ValueError(f"unknown model {name!r}; use t5-tiny, g2p, {', '.join([*SHAPES, *SERVE_SHAPES])}")
    man = json.loads((onnx / "s2s.json").read_text())
    return Model(name=name, onnx=onnx, checkpoint=ckpt, eos=man["eos_token_id"][0], vocab=man["vocab_size"], inplace=inplace)


def g2p_words(model: Model, n: int, seed: int) -> list[list[int]]:
    """g2p_words returns n words of the g2p model's test split (test.tsv),
    drawn with seed, as source ids (letters, then </s>) from its tokenizer.json."""
    import random

    from tokenizers import Tokenizer

    words = [line.split("\t", 1)[0] for line in (model.onnx / "test.tsv").read_text().splitlines() if line.strip()]
    tok = Tokenizer.from_file(str(model.onnx / "tokenizer.json"))
    return [tok.encode(w).ids for w in random.Random(seed).sample(words, n)]


def text_inputs(model: Model, n: int, seed: int) -> list[list[int]]:
    """text_inputs returns n fortunes (the goldens' sources) drawn with seed,
    as source ids from the model's tokenizer.json."""
    import random

    from s2s_export.goldens import golden_inputs
    from tokenizers import Tokenizer

    texts = [t for t in golden_inputs(0) if 10 <= len(t) < 300]
    tok = Tokenizer.from_file(str(model.onnx / "tokenizer.json"))
    rng = random.Random(seed)
    return [tok.encode(rng.choice(texts)).ids for _ in range(n)]


class QuantizeUnavailable(RuntimeError):
    """QuantizeUnavailable: this checkout's exporter has no quantize command."""


def int8_dir(model: Model, work: Path, log=print, src: Path | None = None) -> Path:
    """int8_dir returns the int8 copy of model's ONNX directory, made (once,
    cached in WORK/NAME/onnx-int8) by the exporter's own
    `python -m s2s_export quantize SRC_DIR OUT_DIR` (dynamic int8
    quantization of every graph), remade when a source graph is newer than
    the copy (delete the folder after changing the quantizer);
    QuantizeUnavailable when the exporter has no such command, RuntimeError
    when it fails."""
    src = src or model.onnx
    out = work / model.name / ("onnx-int8" if src == model.onnx else "onnx-inplace-int8")
    done = out / ".bench-quantized"  # written once the copy is complete
    if done.is_file() and all(f.stat().st_mtime <= done.stat().st_mtime for f in src.glob("*.onnx")):
        return out
    helptext = subprocess.run([sys.executable, "-m", "s2s_export", "-h"], cwd=ROOT, capture_output=True, text=True).stdout
    if not any(line.split()[:1] == ["quantize"] for line in helptext.splitlines()):
        raise QuantizeUnavailable("`python -m s2s_export quantize` does not exist in this checkout (the int8 export is not there yet)")
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    log(f"bench: quantizing {model.name} to int8 in {out} (s2s_export quantize)")
    p = subprocess.run([sys.executable, "-m", "s2s_export", "quantize", str(src), str(tmp)], cwd=ROOT,
                       capture_output=True, text=True)
    if p.returncode != 0 or not (tmp / "s2s.json").is_file():
        last = (p.stderr.strip() or p.stdout.strip() or f"exit status {p.returncode}").splitlines()[-1]
        shutil.rmtree(tmp, ignore_errors=True)
        raise RuntimeError(f"s2s_export quantize failed: {last}")
    shutil.rmtree(out, ignore_errors=True)
    shutil.move(str(tmp), out)
    done.write_text(" ".join(p.args) + "\n")
    return out


def ct2_dir(model: Model, work: Path, quantization: str, log=print) -> Path:
    """ct2_dir returns model's CTranslate2 conversion at quantization, converting when missing."""
    out = work / model.name / f"ct2-{quantization}"
    if not (out / "model.bin").is_file():
        log(f"bench: converting {model.name} to CTranslate2 ({quantization})")
        convert_ct2(model.checkpoint, out, quantization)
    return out
