"""families holds one exporter per architecture family, registered by the
Hugging Face config class name it handles (CTranslate2's converters do the
same with @register_loader).

An exporter knows what differs between families: where the decoder sizes
live in the config, and how the tokenizer files are written. Everything else
(the ONNX export through Optimum, the manifest, the self-check) is shared in
hf.py and check.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from .errors import ExportError

_EXPORTERS: dict[str, "Exporter"] = {}


def register(config_class: str) -> Callable[[type["Exporter"]], type["Exporter"]]:
    """register makes the decorated Exporter class handle configs of class config_class."""

    def wrap(cls: type[Exporter]) -> type[Exporter]:
        if config_class in _EXPORTERS:
            raise ValueError(f"an exporter for {config_class} is already registered")
        _EXPORTERS[config_class] = cls(config_class)
        return cls

    return wrap


def supported() -> list[str]:
    """supported returns the config class names that have an exporter, sorted."""
    return sorted(_EXPORTERS)


def exporter_for(config: Any) -> "Exporter":
    """exporter_for returns the exporter for a transformers config object.

    It raises ExportError naming the supported classes when none is registered.
    """
    name = type(config).__name__
    exp = _EXPORTERS.get(name)
    if exp is None:
        raise ExportError(
            f"unsupported model: config class {name} (model_type {getattr(config, 'model_type', '?')!r}) "
            f"has no exporter; supported config classes: {', '.join(supported())}"
        )
    return exp


@dataclass(frozen=True)
class Dims:
    """Dims are the decoder sizes the Go host needs to shape the attention cache."""

    num_layers: int
    num_heads: int
    head_dim: int
    hidden_size: int


class Exporter:
    """Exporter is the base of the family exporters; subclasses override dims
    and, where the family has no fast tokenizer, write_tokenizers."""

    def __init__(self, config_class: str):
        self.config_class = config_class

    def dims(self, config: Any) -> Dims:
        """dims returns the decoder's layer count, heads, head size and hidden size."""
        raise NotImplementedError

    def validate(self, config: Any, src: Path) -> None:
        """validate checks the config before anything is written; it raises ExportError."""
        d = self.dims(config)
        for field, v in vars(d).items():
            if not isinstance(v, int) or v <= 0:
                raise ExportError(f"{src}/config.json: {field} is {v!r}; the config must give a positive size")

    def write_tokenizers(self, src: Path, out: Path) -> tuple[str, str]:
        """write_tokenizers writes the tokenizer file(s) into out and returns
        their names (source, target); the target equals the source when both
        sides share one vocabulary.

        The base writes the fast tokenizer's backend as tokenizer.json, as
        transformers loads it from src (added tokens included), without
        padding or truncation.
        """
        from transformers import AutoTokenizer

        try:
            tok = AutoTokenizer.from_pretrained(str(src), use_fast=True, local_files_only=True)
        except Exception as e:  # transformers raises many kinds here
            raise ExportError(
                f"{src}: cannot load the tokenizer ({type(e).__name__}: {e}); "
                "save the tokenizer into the checkpoint with tokenizer.save_pretrained(SRC_DIR)"
            ) from e
        if not getattr(tok, "is_fast", False):
            raise ExportError(
                f"{src}: {type(tok).__name__} is not a fast tokenizer; the Go host reads tokenizer.json, "
                "so save a fast tokenizer (or its tokenizer.json) into the checkpoint"
            )
        backend = tok.backend_tokenizer
        backend.no_padding()
        backend.no_truncation()
        backend.save(str(out / "tokenizer.json"))
        return "tokenizer.json", "tokenizer.json"


class _T5Family(Exporter):
    """_T5Family reads T5's names: num_decoder_layers, num_heads, d_kv, d_model."""

    def dims(self, config: Any) -> Dims:
        layers = getattr(config, "num_decoder_layers", None) or config.num_layers
        return Dims(num_layers=layers, num_heads=config.num_heads, head_dim=config.d_kv, hidden_size=config.d_model)


@register("T5Config")
class T5Exporter(_T5Family):
    """T5Exporter exports T5 checkpoints (T5ForConditionalGeneration)."""


@register("MT5Config")
class MT5Exporter(_T5Family):
    """MT5Exporter exports mT5 checkpoints (MT5ForConditionalGeneration)."""


class _BartFamily(Exporter):
    """_BartFamily reads BART's names: decoder_layers, decoder_attention_heads, d_model."""

    def dims(self, config: Any) -> Dims:
        heads = config.decoder_attention_heads
        return Dims(
            num_layers=config.decoder_layers,
            num_heads=heads,
            head_dim=config.d_model // heads if heads else 0,
            hidden_size=config.d_model,
        )

    def validate(self, config: Any, src: Path) -> None:
        """validate also checks that d_model splits evenly over the decoder heads."""
        super().validate(config, src)
        if config.d_model % config.decoder_attention_heads:
            raise ExportError(
                f"{src}/config.json: d_model {config.d_model} is not a multiple of "
                f"decoder_attention_heads {config.decoder_attention_heads}; fix the config"
            )


@register("BartConfig")
class BartExporter(_BartFamily):
    """BartExporter exports BART checkpoints (BartForConditionalGeneration)."""


@register("MBartConfig")
class MBartExporter(_BartFamily):
    """MBartExporter exports mBART checkpoints (MBartForConditionalGeneration)."""


@register("MarianConfig")
class MarianExporter(_BartFamily):
    """MarianExporter exports Marian checkpoints (MarianMTModel).

    Marian ships SentencePiece models and no tokenizer.json; s2s_export.marian
    converts them into tokenizer.json (source side) and tokenizer_target.json
    (target side).
    """

    def validate(self, config: Any, src: Path) -> None:
        """validate also checks for the SentencePiece files the conversion needs."""
        super().validate(config, src)
        missing = [n for n in ("source.spm", "target.spm", "vocab.json") if not (src / n).is_file()]
        if missing:
            raise ExportError(
                f"{src}: a Marian checkpoint needs {', '.join(missing)}; "
                "save the MarianTokenizer into it with tokenizer.save_pretrained(SRC_DIR)"
            )

    def write_tokenizers(self, src: Path, out: Path) -> tuple[str, str]:
        """write_tokenizers converts Marian's SentencePiece models with s2s_export.marian."""
        try:
            from . import marian
        except ImportError as e:
            raise ExportError(f"the Marian tokenizer converter is unavailable ({e}); update s2s_export") from e
        try:
            source, target = marian.convert(src, out)
        except ValueError as e:  # marian.MarianTokenizerError says what to do
            raise ExportError(f"{src}: cannot convert the Marian tokenizer: {e}") from e
        return source, target or source
