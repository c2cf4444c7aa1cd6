"""slow.py writes slow.onnx, a graph that takes long to run, for the tests of
cancellation: 400 nodes in a chain, y = tanh(y @ W), over an input x of
shape [N, 256]. Every MatMul reads the same initializer W, so the file is
small (256 KB), and ONNX Runtime checks its terminate flag between two
nodes, so a run stopped midway returns long before one left to finish.

Run from the repository root:

    .venv/bin/python runtime/testdata/slow.py
"""

import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

NODES = 400
WIDTH = 256


def main():
    rng = np.random.default_rng(0)
    w = (rng.standard_normal((WIDTH, WIDTH)) / np.sqrt(WIDTH)).astype(np.float32)
    nodes, prev = [], "x"
    for i in range(NODES // 2):
        nodes.append(helper.make_node("MatMul", [prev, "W"], [f"m{i}"]))
        nodes.append(helper.make_node("Tanh", [f"m{i}"], [f"t{i}"]))
        prev = f"t{i}"
    nodes.append(helper.make_node("Identity", [prev], ["y"]))
    graph = helper.make_graph(
        nodes, "slow",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", WIDTH])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", WIDTH])],
        initializer=[numpy_helper.from_array(w, "W")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.checker.check_model(model)
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "slow.onnx")
    onnx.save(model, out)
    print(f"wrote {out} ({os.path.getsize(out)} bytes)")


if __name__ == "__main__":
    main()
