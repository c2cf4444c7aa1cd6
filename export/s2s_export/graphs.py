"""graphs reads the inputs and outputs of exported ONNX graphs without loading their weights."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .errors import ExportError

# File names of Optimum's ONNX layout for an encoder-decoder with past.
ENCODER = "encoder_model.onnx"
DECODER = "decoder_model.onnx"
DECODER_WITH_PAST = "decoder_with_past_model.onnx"
DECODER_MERGED = "decoder_model_merged.onnx"
GRAPHS = (ENCODER, DECODER, DECODER_WITH_PAST, DECODER_MERGED)


@dataclass(frozen=True)
class Value:
    """Value is one graph input or output: its name, element type (ONNX name,
    e.g. FLOAT, INT64, BOOL) and shape (ints for fixed axes, strings for
    named dynamic axes)."""

    name: str
    dtype: str
    shape: tuple[int | str, ...]


@dataclass(frozen=True)
class Signature:
    """Signature lists a graph's inputs and outputs in graph order."""

    inputs: tuple[Value, ...]
    outputs: tuple[Value, ...]

    def input_names(self) -> list[str]:
        """input_names returns the names of the inputs in graph order."""
        return [v.name for v in self.inputs]

    def output_names(self) -> list[str]:
        """output_names returns the names of the outputs in graph order."""
        return [v.name for v in self.outputs]

    def output(self, name: str) -> Value:
        """output returns the output called name; it raises ExportError when there is none."""
        for v in self.outputs:
            if v.name == name:
                return v
        raise ExportError(f"the graph has no output {name!r}; re-export the model")


def signature(path: Path) -> Signature:
    """signature reads the inputs and outputs of the ONNX graph at path."""
    import onnx
    from onnx import TensorProto

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as e:
        raise ExportError(f"{path}: not a readable ONNX graph ({e}); re-export the model") from e

    def value(v) -> Value:
        t = v.type.tensor_type
        dims = tuple(d.dim_param if d.dim_param else d.dim_value for d in t.shape.dim)
        return Value(v.name, TensorProto.DataType.Name(t.elem_type), dims)

    init = {i.name for i in model.graph.initializer}
    return Signature(
        inputs=tuple(value(v) for v in model.graph.input if v.name not in init),
        outputs=tuple(value(v) for v in model.graph.output),
    )
