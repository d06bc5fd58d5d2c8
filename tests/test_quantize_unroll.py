"""Native ONNX GRU/LSTM nodes over a fixed chunk, rewritten into plain per-step ops, must
compute what onnxruntime's own GRU/LSTM kernels compute (every output, several steps)."""

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from exporters.quantize import layers as quant_layers  # noqa: E402
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


@pytest.mark.parametrize("steps", [T, 1])
@pytest.mark.parametrize("op, gates, attrs", [
    ("GRU", 3, {"linear_before_reset": 1}),
    ("GRU", 3, {"linear_before_reset": 0}),
    ("LSTM", 4, {}),
    ("LSTM", 4, {"activations": ["HardSigmoid", "Tanh", "Tanh"], "activation_alpha": [1 / 6],
                 "activation_beta": [0.5]}),
])
def test_unrolled_cell_equals_the_native_op(op, gates, attrs, steps):
    model = _model(op, gates, steps=steps, **attrs)
    rng = np.random.default_rng(1)
    feed = {"x": rng.normal(size=(steps, 2, I)).astype(np.float32),
            "h0": rng.normal(size=(1, 2, H)).astype(np.float32)}
    if op == "LSTM":
        feed["c0"] = rng.normal(size=(1, 2, H)).astype(np.float32)
    want = _run(model, feed)
    report = unroll_recurrent(model)
    padded = steps == 1 and op == "GRU"  # the one-step GRU's fused matrix keeps x and h apart with zeros
    lbr = attrs.get("linear_before_reset", 0)
    assert report == {"unrolled": ["cell"], "kept": {},
                      **({"one_step_fused": ["cell"]} if steps == 1 else {}),
                      **({"zero_weights": (I + H) * H if lbr else H * H} if padded else {})}
    ops = {n.op_type for n in model.graph.node}
    assert op not in ops and "MatMul" in ops
    onnx.checker.check_model(model)
    got = _run(model, feed)
    for w, g in zip(want, got):
        assert w.shape == g.shape
        np.testing.assert_allclose(g, w, atol=2e-6)
    # one copy of each weight, read by every step; one step reads [x, h] with both at once
    names = {i.name for i in model.graph.initializer}
    assert names >= ({"cell_Wt", "cell_bx"} if steps > 1 else {"cell_WRt"})
    if steps == 1:
        two = op == "GRU" and not attrs.get("linear_before_reset")  # (r * h) @ R_h needs r first
        assert sum(n.op_type == "MatMul" for n in model.graph.node) == (2 if two else 1)


@pytest.mark.parametrize("op, gates", [("GRU", 3), ("LSTM", 4)])
def test_one_step_without_fusing_keeps_x_and_h_apart(op, gates):
    model = _model(op, gates, steps=1, **({"linear_before_reset": 1} if op == "GRU" else {}))
    rng = np.random.default_rng(3)
    feed = {"x": rng.normal(size=(1, 2, I)).astype(np.float32), "h0": rng.normal(size=(1, 2, H)).astype(np.float32)}
    if op == "LSTM":
        feed["c0"] = rng.normal(size=(1, 2, H)).astype(np.float32)
    want = _run(model, feed)
    assert unroll_recurrent(model, fuse_one_step=False) == {"unrolled": ["cell"], "kept": {}}
    assert sum(n.op_type == "MatMul" for n in model.graph.node) == 2      # x @ W, h @ R
    for w, g in zip(want, _run(model, feed)):
        np.testing.assert_allclose(g, w, atol=2e-6)


def test_a_node_without_a_fixed_chunk_is_kept_with_the_reason():
    model = _model("GRU", 3, steps="T", linear_before_reset=1)
    report = unroll_recurrent(model)
    assert report["unrolled"] == [] and "not fixed" in report["kept"]["cell"]
    assert [n.op_type for n in model.graph.node] == ["GRU"]
    reverse = _model("GRU", 3, direction="reverse")
    assert "direction" in unroll_recurrent(reverse)["kept"]["cell"]


def test_folding_round_trips_keeps_a_one_step_stream_model_exact():
    """The wrappers a native op needed (Transpose/Unsqueeze in, Squeeze out, Identity to the
    outputs) go once the op is unrolled; the model computes the same, with its I/O names."""
    from exporters.quantize.graph import fold_round_trips
    from runtime_fixtures import lstm_exports

    path = lstm_exports()["stream"]
    model = onnx.load(str(path))
    rng = np.random.default_rng(2)
    feed = {}
    for vi in model.graph.input:
        shape = [d.dim_value or 3 for d in vi.type.tensor_type.shape.dim]
        feed[vi.name] = rng.normal(size=shape).astype(np.float32)
    want = _run(model, feed)
    assert len(unroll_recurrent(model)["unrolled"]) == 2
    # every weight of the one-step graph still belongs to its Keras layer (mixed precision keeps layers)
    assert list(quant_layers.layers(model)) == ["lstm_0", "lstm_1", "classes"]
    before = len(model.graph.node)
    removed = fold_round_trips(model)
    onnx.checker.check_model(model)
    ops = [n.op_type for n in model.graph.node]
    assert removed > 0 and len(ops) == before - removed
    assert not {"Transpose", "Unsqueeze", "Identity"} & set(ops)
    assert [o.name for o in model.graph.output] == [o.name for o in onnx.load(str(path)).graph.output]
    for w, g in zip(want, _run(model, feed)):
        assert w.shape == g.shape
        np.testing.assert_allclose(g, w, atol=2e-6)
