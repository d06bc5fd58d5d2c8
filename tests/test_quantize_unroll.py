"""Native ONNX GRU/LSTM nodes over a fixed chunk, rewritten into plain per-step ops, must
compute what onnxruntime's own GRU/LSTM kernels compute (every output, several steps)."""

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from exporters.quantize.unroll import unroll_recurrent  # noqa: E402

T, I, H = 3, 5, 4


def _model(op: str, gates: int, steps=T, **attrs):
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.normal(0, 0.6, (1, gates * H, I)).astype(np.float32), "cell_W"),
             numpy_helper.from_array(rng.normal(0, 0.6, (1, gates * H, H)).astype(np.float32), "cell_R"),
             numpy_helper.from_array(rng.normal(0, 0.3, (1, 2 * gates * H)).astype(np.float32), "cell_B")]
    ins = ["x", "cell_W", "cell_R", "cell_B", "", "h0"] + (["c0"] if op == "LSTM" else [])
    outs = ["y", "h_out"] + (["c_out"] if op == "LSTM" else [])
    node = helper.make_node(op, ins, outs, name="cell", hidden_size=H, **attrs)
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [steps, "b", I]),
              helper.make_tensor_value_info("h0", TensorProto.FLOAT, [1, "b", H])]
    if op == "LSTM":
        inputs.append(helper.make_tensor_value_info("c0", TensorProto.FLOAT, [1, "b", H]))
    outputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [steps, 1, "b", H] if n == "y" else [1, "b", H])
               for n in outs]
    graph = helper.make_graph([node], "g", inputs, outputs, inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _run(model, feed):
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, feed)


@pytest.mark.parametrize("op, gates, attrs", [
    ("GRU", 3, {"linear_before_reset": 1}),
    ("GRU", 3, {"linear_before_reset": 0}),
    ("LSTM", 4, {}),
    ("LSTM", 4, {"activations": ["HardSigmoid", "Tanh", "Tanh"], "activation_alpha": [1 / 6],
                 "activation_beta": [0.5]}),
])
def test_unrolled_cell_equals_the_native_op(op, gates, attrs):
    model = _model(op, gates, **attrs)
    rng = np.random.default_rng(1)
    feed = {"x": rng.normal(size=(T, 2, I)).astype(np.float32), "h0": rng.normal(size=(1, 2, H)).astype(np.float32)}
    if op == "LSTM":
        feed["c0"] = rng.normal(size=(1, 2, H)).astype(np.float32)
    want = _run(model, feed)
    report = unroll_recurrent(model)
    assert report == {"unrolled": ["cell"], "kept": {}}
    ops = {n.op_type for n in model.graph.node}
    assert op not in ops and "MatMul" in ops
    onnx.checker.check_model(model)
    got = _run(model, feed)
    for w, g in zip(want, got):
        assert w.shape == g.shape
        np.testing.assert_allclose(g, w, atol=2e-6)
    # one copy of each weight, read by every step
    assert {i.name for i in model.graph.initializer} >= {"cell_Wt", "cell_bx"}
    assert not {"cell_W", "cell_R"} & {i.name for i in model.graph.initializer}


def test_a_node_without_a_fixed_chunk_is_kept_with_the_reason():
    model = _model("GRU", 3, steps="T", linear_before_reset=1)
    report = unroll_recurrent(model)
    assert report["unrolled"] == [] and "not fixed" in report["kept"]["cell"]
    assert [n.op_type for n in model.graph.node] == ["GRU"]
    reverse = _model("GRU", 3, direction="reverse")
    assert "direction" in unroll_recurrent(reverse)["kept"]["cell"]
