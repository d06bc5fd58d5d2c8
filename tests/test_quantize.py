"""Quantization of real exports of small models trained on real Fashion-MNIST.

Every mode on lstm, gru and cnn_lstm, with onnxruntime's own quantizer; the
accuracy gate against an honestly damaged calibration set; metadata and state
I/O preserved; a quantized stream model streaming through the runtime.
"""

import json

import numpy as np
import pytest

pytest.importorskip("tf2onnx")

import onnx  # noqa: E402
from quantize_cases import case, workdir  # noqa: E402

import runtime  # noqa: E402
from exporters.errors import QuantizationError  # noqa: E402
from exporters.quantize import applicable, quantize_model  # noqa: E402

MODELS = ("lstm", "gru", "cnn_lstm")
TOLERATED_DROP = 3.0  # points, on 300 test samples (one sample is 0.33 points)


def _int8_ops(ops: dict) -> set:
    return {op for op in ops if op in ("DynamicQuantizeLSTM", "MatMulInteger", "ConvInteger",
                                       "DynamicQuantizeLinear", "QuantizeLinear", "DequantizeLinear")}


def _initializer_types(path) -> set:
    return {onnx.TensorProto.DataType.Name(i.data_type) for i in onnx.load(str(path)).graph.initializer
            if np.prod(i.dims) > 64}  # the weights, not scalars and shapes


@pytest.mark.parametrize("name", MODELS)
def test_int8_dynamic(name, fashion, tmp_path):
    c = case(name, fashion)
    # the variant whose recurrence becomes int8: the native LSTM op, or the unrolled GRU's MatMuls
    variant = "unrolled" if name == "gru" else "full"
    out = tmp_path / f"{variant}.int8-dynamic.onnx"
    rep = quantize_model(c.paths[variant], out, "int8-dynamic", evaluation=c.evaluation,
                         max_drop=TOLERATED_DROP)
    ops = rep["op_counts"]["quantized"]
    assert rep["recurrent_weights"] == "int8" and not {"LSTM", "GRU"} & set(ops)
    if name == "gru":
        assert ops["MatMulInteger"] >= 3                       # input, recurrent and dense matmuls
    else:
        assert ops["DynamicQuantizeLSTM"] == 1
    if name == "cnn_lstm":
        assert ops["ConvInteger"] == 1
    assert "INT8" in _initializer_types(out)
    assert rep["size"]["bytes"] == out.stat().st_size
    assert rep["size"]["ratio"] <= 0.30, rep["size"]
    acc = rep["accuracy"]
    assert acc["samples"] == 300 and acc["fp32"] == pytest.approx(c.fp32_accuracy, abs=0.01)
    assert acc["fp32"] > 0.4 and acc["drop_points"] <= TOLERATED_DROP
    assert rep["agreement"]["argmax_agreement"] >= 0.95 and rep["agreement"]["max_abs_diff"] < 0.2


def _int8_weight_range(path) -> tuple[int, int]:
    from onnx import numpy_helper

    weights = [numpy_helper.to_array(i) for i in onnx.load(str(path)).graph.initializer
               if i.data_type == onnx.TensorProto.INT8 and np.prod(i.dims) > 64]
    return min(int(w.min()) for w in weights), max(int(w.max()) for w in weights)


def test_int8_weights_are_7_bit_unless_full_range_is_asked(fashion, tmp_path):
    """7-bit weights cannot saturate the int16 pair sums of x86 CPUs without VNNI; --full-range uses 8."""
    c = case("lstm", fashion)
    reduced, full = tmp_path / "reduced.onnx", tmp_path / "full.onnx"
    rep = quantize_model(c.paths["full"], reduced, "int8-dynamic", latency_reps=0)
    assert rep["reduce_range"] is True
    assert json.loads({p.key: p.value for p in onnx.load(str(reduced)).metadata_props}["rnnx"])[
        "quantization"]["reduce_range"] is True
    lo, hi = _int8_weight_range(reduced)
    assert -64 <= lo and hi <= 63 and hi - lo > 100                       # 7 bits, and used
    rep = quantize_model(c.paths["full"], full, "int8-dynamic", latency_reps=0, reduce_range=False)
    assert rep["reduce_range"] is False
    lo, hi = _int8_weight_range(full)
    assert lo < -64 or hi > 63
    with pytest.raises(Exception, match="reduce_range must be True or False"):
        quantize_model(c.paths["full"], tmp_path / "x.onnx", "int8-dynamic", reduce_range="yes")


def test_int8_dynamic_gru_full_says_the_gru_stays_float(fashion, tmp_path):
    c = case("gru", fashion)
    assert applicable("int8-dynamic", {"GRU": 1, "MatMul": 1}) is not None
    rep = quantize_model(c.paths["full"], tmp_path / "full.int8-dynamic.onnx", "int8-dynamic")
    assert rep["recurrent_weights"] == "float32" and rep["float_recurrent_ops"] == ["GRU"]
    assert any("no quantized GRU op" in n and "unrolled" in n for n in rep["notes"])
    assert rep["op_counts"]["quantized"]["GRU"] == 1
    assert rep["size"]["ratio"] > 0.9          # only the dense layer shrank
    assert rep["agreement"]["data"] == "random"


@pytest.mark.parametrize("name", MODELS)
def test_int8_static_unrolled_carries_states_while_calibrating(name, fashion, tmp_path):
    c = case(name, fashion)
    out = tmp_path / "unrolled.int8-static.onnx"
    rep = quantize_model(c.paths["unrolled"], out, "int8-static", calibration=c.calibration,
                         evaluation=c.evaluation, max_drop=TOLERATED_DROP)
    cal = rep["calibration"]
    assert cal["method"] == "minmax" and cal["samples"] == 128
    assert cal["batches"] == 4 * c.keras_model.input_shape[1]  # 128/32 batches x one call per step
    assert cal["states"].startswith("carried")
    ops = rep["op_counts"]["quantized"]
    assert ops["QuantizeLinear"] >= 3 and ops["DequantizeLinear"] >= 3
    assert rep["recurrent_weights"] == "int8"
    assert rep["size"]["ratio"] <= 0.31, rep["size"]
    assert rep["accuracy"]["drop_points"] <= TOLERATED_DROP


def test_int8_static_entropy_and_percentile(fashion, tmp_path):
    c = case("gru", fashion)
    for method in ("entropy", "percentile"):
        rep = quantize_model(c.paths["unrolled"], tmp_path / f"{method}.onnx", "int8-static",
                             calibration=c.calibration, method=method, per_channel=True,
                             evaluation=c.evaluation, max_drop=TOLERATED_DROP)
        assert rep["calibration"]["method"] == method and rep["per_channel"] is True
        meta = runtime.load(tmp_path / f"{method}.onnx").contract.raw["quantization"]
        assert meta["method"] == method and meta["per_channel"] is True


def test_int8_static_on_native_lstm_is_reported_as_float(fashion, tmp_path):
    c = case("lstm", fashion)   # full: T is dynamic, so the LSTM op cannot be unrolled
    rep = quantize_model(c.paths["full"], tmp_path / "s.onnx", "int8-static", calibration=c.calibration)
    assert rep["recurrent_weights"] == "float32" and rep["op_counts"]["quantized"]["LSTM"] == 1
    assert any("leaves the LSTM op in float32" in n for n in rep["notes"])


@pytest.mark.parametrize("name", MODELS)
def test_fp16_keeps_float32_io(name, fashion, tmp_path):
    c = case(name, fashion)
    for variant in ("full", "stream"):
        out = tmp_path / f"{variant}.fp16.onnx"
        rep = quantize_model(c.paths[variant], out, "fp16", evaluation=c.evaluation, max_drop=0.5)
        assert "FLOAT16" in _initializer_types(out) and "FLOAT" not in _initializer_types(out)
        graph = onnx.load(str(out)).graph
        assert {t.type.tensor_type.elem_type for t in list(graph.input) + list(graph.output)} == {1}
        assert 0.45 < rep["size"]["ratio"] < 0.56
        assert rep["agreement"]["max_abs_diff"] < 5e-3 and rep["agreement"]["argmax_agreement"] >= 0.99
        assert rep["recurrent_weights"] == "float16"


def test_gate_refuses_a_model_calibrated_on_damaged_data(fashion, tmp_path):
    """Calibration samples 50x out of range make the input scales so coarse that real
    inputs mostly quantize to zero: the gate must catch it and write nothing."""
    c = case("lstm", fashion)
    x = np.load(c.calibration)["x"]
    damaged = tmp_path / "damaged.npz"
    np.savez(damaged, x=x * 50.0)
    out = tmp_path / "out" / "unrolled.int8-static.onnx"
    with pytest.raises(QuantizationError) as err:
        quantize_model(c.paths["unrolled"], out, "int8-static", calibration=damaged,
                       evaluation=c.evaluation, max_drop=1.0, mixed="off")
    text = str(err.value)
    assert "accuracy dropped" in text and "max_drop 1" in text and "nothing written" in text
    rep = err.value.report
    assert rep["accuracy"]["drop_points"] > 5 and any("outside the model's declared input range" in w
                                                      for w in rep["warnings"])
    assert not out.exists() and not out.parent.exists()
    # the same model calibrated on the real data passes
    quantize_model(c.paths["unrolled"], out, "int8-static", calibration=c.calibration,
                   evaluation=c.evaluation, max_drop=TOLERATED_DROP)
    assert out.exists() and [p.name for p in out.parent.iterdir()] == [out.name]


@pytest.mark.parametrize("mode", ("int8-dynamic", "int8-static", "fp16"))
def test_metadata_and_state_io_preserved(mode, fashion, tmp_path):
    c = case("lstm", fashion)
    for variant in ("stream", "unrolled"):
        out = tmp_path / f"{variant}.{mode}.onnx"
        quantize_model(c.paths[variant], out, mode, calibration=c.calibration)
        src, got = onnx.load(str(c.paths[variant])), onnx.load(str(out))
        before = json.loads({p.key: p.value for p in src.metadata_props}["rnnx"])
        after = json.loads({p.key: p.value for p in got.metadata_props}["rnnx"])
        assert before["precision"] == "fp32" and after["precision"] == mode
        assert after["quantization"]["mode"] == mode
        for key in set(before) - {"precision", "quantization"}:   # inputs, outputs, states, source...
            assert after[key] == before[key], key
        for a, b in ((src.graph.input, got.graph.input), (src.graph.output, got.graph.output)):
            assert [(t.name, t.type.tensor_type.elem_type) for t in a] == \
                   [(t.name, t.type.tensor_type.elem_type) for t in b]
        assert [t.name for t in got.graph.input] == ["x", "h_in_0", "c_in_0"]


def test_quantized_stream_model_streams_with_the_runtime(fashion, tmp_path):
    c = case("lstm", fashion)
    out = tmp_path / "stream.int8-dynamic.onnx"
    quantize_model(c.paths["stream"], out, "int8-dynamic")
    ev = np.load(c.evaluation)
    seq = ev["x"][0]                                    # (28, 28): one image, row by row
    q, ref = runtime.load(out, providers=["cpu"]), runtime.load(c.paths["stream"], providers=["cpu"])
    assert isinstance(q, runtime.StreamingModel) and q.contract.precision == "int8-dynamic"
    assert q.state_names == ("h_in_0", "c_in_0")
    outs = [q.step(row) for row in seq]
    state = q.state
    assert np.abs(state["h_in_0"]).max() > 0.01          # the state moved
    assert not np.allclose(outs[5], outs[-1])            # later rows see earlier ones
    ref_out = ref.feed(seq)
    assert np.abs(outs[-1] - ref_out).max() < 0.1
    assert outs[-1].argmax() == ref_out.argmax() == q.labels.index(q.labels[int(ref_out.argmax())])
    q.reset()
    assert np.allclose(q.feed(seq), outs[-1], atol=1e-6)  # reset + feed == step by step


def test_unrolled_steps_share_one_int8_copy_of_each_weight(fashion):
    """A chunk of 4 steps reuses the recurrent kernel 4 times; the int8 file holds it once."""
    from exporters.export import export_model

    c = case("lstm", fashion)
    res = export_model(c.keras_model, workdir() / "lstm_chunk4", variants=("unrolled",), chunk=4)
    src = res.paths["unrolled"]
    out = src.with_name("unrolled.int8-dynamic.onnx")
    rep = quantize_model(src, out, "int8-dynamic")
    model = onnx.load(str(out))
    int8 = [i for i in model.graph.initializer if i.data_type == onnx.TensorProto.INT8 and len(i.dims) == 2]
    assert len(int8) == 3                                # input kernel, recurrent kernel, dense
    users = {i.name: 0 for i in int8}
    for node in model.graph.node:
        for name in node.input:
            if name in users:
                users[name] += 1
    # the recurrent kernel is read once per step; the input kernel once for the chunk, the dense once
    assert users == {i.name: (4 if "rec_kernel" in i.name else 1) for i in int8}
    assert rep["size"]["ratio"] <= 0.30
    chunk1 = quantize_model(c.paths["unrolled"], out.with_name("c1.onnx"), "int8-dynamic")
    assert rep["size"]["bytes"] - chunk1["size"]["bytes"] < 0.1 * rep["size"]["fp32_bytes"]


def test_fp16_stacked_gru_char_model_loads_and_streams(tmp_path):
    """Seed 003's two stacked GRUs (stateful deploy copy, batch 1): onnxruntime 1.32 segfaulted
    loading the float16 graph until Transposes stayed float32; it must load and stream."""
    from export_cases import pipeline_model

    from exporters.export import export_model

    res = export_model(pipeline_model("char_gru_stateful"), tmp_path / "cg", variants=("full", "stream"))
    onehot = np.eye(7, dtype=np.float32)[np.random.default_rng(0).integers(0, 7, (1, 9))]
    for variant, path in res.paths.items():
        out = tmp_path / f"{variant}.fp16.onnx"
        rep = quantize_model(path, out, "fp16", evaluation=(onehot, onehot[0].argmax(-1)[None]), max_drop=0)
        assert rep["accuracy"]["drop_points"] == 0 and rep["agreement"]["max_abs_diff"] < 1e-3
        model = runtime.load(out, providers=["cpu"])
        if variant == "stream":
            first = model.step(onehot[0, 0])
            assert first.shape == (7,) and model.feed(onehot[0, 1:]).shape == (8, 7)
