"""make.py writes escape.onnx: a one-MatMul graph whose initializer W is
external data at "../secret.bin", outside the model's directory. ONNX
Runtime must refuse to read it (it checks external data paths since 1.2x);
the Go test TestBadONNXFiles keeps that refusal tested through s2s.Open.

Run from the repository root:

    .venv/bin/python testdata/bad-onnx/make.py
"""

import os

import numpy as np
from onnx import TensorProto, helper, numpy_helper


def main():
    w = numpy_helper.from_array(np.ones((4, 4), np.float32), "W")
    w.data_location = TensorProto.EXTERNAL
    w.ClearField("raw_data")
    for key, value in (("location", "../secret.bin"), ("offset", "0"), ("length", "64")):
        entry = w.external_data.add()
        entry.key, entry.value = key, value
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["input_ids_f", "W"], ["last_hidden_state"])], "escape",
        [helper.make_tensor_value_info("input_ids_f", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, [1, 4])],
        initializer=[w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "escape.onnx")
    with open(out, "wb") as f:
        f.write(model.SerializeToString())
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
