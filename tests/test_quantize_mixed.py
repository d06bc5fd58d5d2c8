"""Quantization that meets its gate by itself: per-layer mixed precision, int8 stream models,
inputs of the model's own dtype (token ids), and no litter."""

import json
import os

import numpy as np
import pytest

pytest.importorskip("tf2onnx")

import onnx  # noqa: E402
from quantize_cases import case, workdir  # noqa: E402

import runtime  # noqa: E402
from exporters.errors import InputShapeError, ModelFormatError, QuantizationError  # noqa: E402
from exporters.quantize import quantize_model  # noqa: E402
from exporters.quantize import workspace  # noqa: E402
from runtime.errors import InputValueError  # noqa: E402


def _meta(path) -> dict:
    return json.loads({p.key: p.value for p in onnx.load(str(path)).metadata_props}["rnnx"])


def _damaged(c, tmp_path):
    path = tmp_path / "damaged.npz"
    np.savez(path, x=np.load(c.calibration)["x"] * 50.0)   # input scales 50x too coarse
    return path


def test_mixed_keeps_the_sensitive_layer_float_and_meets_the_gate(fashion, tmp_path):
    c = case("lstm", fashion)
    damaged = _damaged(c, tmp_path)
    with pytest.raises(QuantizationError, match="accuracy dropped"):
        quantize_model(c.paths["unrolled"], tmp_path / "off.onnx", "int8-static", calibration=damaged,
                       evaluation=c.evaluation, max_drop=1.0, mixed="off")
    assert not (tmp_path / "off.onnx").exists()
    out = tmp_path / "mixed.onnx"
    rep = quantize_model(c.paths["unrolled"], out, "int8-static", calibration=damaged,
                         evaluation=c.evaluation, max_drop=1.0)
    search = rep["mixed"]["search"]
    assert search["all_quantized"]["drop_points"] > 5            # all int8: the gate is missed
    assert set(search["sensitivity"]) == set(rep["layers"]) == {"lstm", "dense"} or len(rep["layers"]) == 2
    assert rep["precision"] == "mixed" and rep["kept_float"] == search["order"][:len(rep["kept_float"])]
    assert rep["accuracy"]["drop_points"] <= 1.0
    assert sorted(rep["layers"].values()) == ["fp32", "int8"]
    meta = _meta(out)
    assert meta["precision"] == "mixed" and meta["quantization"]["layers"] == rep["layers"]
    assert meta["quantization"]["size_ratio"] == rep["size"]["ratio"] < 1
    assert rep["size"]["bytes"] == out.stat().st_size
    assert rep["latency"]["fp32_ms"] > 0 and rep["latency"]["ms"] > 0
    assert runtime.load(out).contract.precision == "mixed"
    assert "latency" not in meta["quantization"]                 # a timing would change the bytes each run
    # deterministic: the same inputs give the same choice and the same file, byte for byte
    again = quantize_model(c.paths["unrolled"], tmp_path / "again.onnx", "int8-static", calibration=damaged,
                           evaluation=c.evaluation, max_drop=1.0)
    assert again["kept_float"] == rep["kept_float"] and again["layers"] == rep["layers"]
    assert out.read_bytes() == (tmp_path / "again.onnx").read_bytes()


def test_int8_stream_gru_streams_with_the_runtime(fashion, tmp_path):
    c = case("gru", fashion)
    out = tmp_path / "stream.int8-dynamic.onnx"
    rep = quantize_model(c.paths["stream"], out, "int8-dynamic", evaluation=c.evaluation, max_drop=3.0)
    ops = rep["op_counts"]["quantized"]
    assert "GRU" not in ops and ops["MatMulInteger"] >= 2 and rep["recurrent_weights"] == "int8"  # [x, h] and head
    # one GEMM of [x, h] per step: its matrix keeps x and h apart with zero blocks, which int8 stores too
    assert rep["unrolled"]["unrolled"] and rep["unrolled"]["zero_weights"] > 0
    assert rep["size"]["ratio"] <= 0.40, rep["size"]
    if rep["size"]["ratio"] > 0.30:
        assert any("zero weights" in note for note in rep["notes"]), rep["notes"]
    graph = onnx.load(str(out)).graph
    assert [(t.name, t.type.tensor_type.elem_type) for t in graph.input] == [("x", 1), ("h_in_0", 1)]
    assert [(t.name, t.type.tensor_type.elem_type) for t in graph.output] == [("y", 1), ("h_out_0", 1)]
    q, ref = runtime.load(out, providers=["cpu"]), runtime.load(c.paths["stream"], providers=["cpu"])
    assert isinstance(q, runtime.StreamingModel)
    seq = np.load(c.evaluation)["x"][:1]
    got, want = q.feed(seq[0]), ref.feed(seq[0])
    assert np.abs(got - want).max() < 0.1 and got.argmax() == want.argmax()


def test_int8_static_stream_lstm_unrolls_its_chunk(fashion, tmp_path):
    c = case("lstm", fashion)
    rep = quantize_model(c.paths["stream"], tmp_path / "s.onnx", "int8-static", calibration=c.calibration,
                         evaluation=c.evaluation, max_drop=3.0)
    assert rep["recurrent_weights"] == "int8" and "LSTM" not in rep["op_counts"]["quantized"]
    assert rep["op_counts"]["quantized"]["QuantizeLinear"] >= 3


# -- an Embedding model with int32 token ids ------------------------------------------------------

VOCAB, CLASSES = 40, 3


@pytest.fixture(scope="module")
def token_model():
    import keras

    from exporters.export import export_model

    keras.utils.set_random_seed(3)
    inp = keras.Input((None,), dtype="int32", name="x")
    h = keras.layers.Embedding(VOCAB, 8, name="embed")(inp)
    h = keras.layers.GRU(12, name="gru")(h)
    out = keras.layers.Dense(CLASSES, activation="softmax", name="dense")(h)
    model = keras.Model(inp, out)
    rng = np.random.default_rng(0)
    ids = rng.integers(0, VOCAB, (64, 6)).astype(np.int32)
    res = export_model(model, workdir() / "tokens", samples=ids[:8])
    return res.paths, ids, model


@pytest.mark.parametrize("mode", ["int8-dynamic", "int8-static", "fp16"])
def test_token_id_model_quantizes_without_eval_on_real_token_ids(token_model, mode, tmp_path):
    from exporters.quantize import applicable, model_info

    paths, ids, _ = token_model
    for variant, path in paths.items():
        info = model_info(path)
        if applicable(mode, info.op_counts, chunk=info.chunk):
            continue                                          # e.g. the full variant's GRU op under int8
        if mode == "int8-static":
            cal = tmp_path / "cal.npz"
            np.savez(cal, x=ids)                              # int32 ids, the input's own dtype
            kwargs = {"calibration": cal}
        else:
            kwargs = {}
        # a model this tiny is mostly graph: QDQ nodes may outweigh what int8 weights save
        rep = quantize_model(path, tmp_path / f"{variant}.onnx", mode, allow_larger=True, **kwargs)
        agree = rep["agreement"]
        assert agree["samples"] > 0 and agree["max_abs_diff"] > 0      # the outputs really differ a little
        assert agree["argmax_agreement"] >= 0.75


def test_random_token_ids_span_the_vocabulary(token_model):
    from exporters.quantize import model_info
    from exporters.quantize.data import random_x

    paths, _, _ = token_model
    info = model_info(paths["full"])
    assert info.specs[0].vocab_size == VOCAB and info.specs[0].integer
    x = random_x(info, n=64)["x"]
    assert x.dtype == np.int32 and x.min() >= 0 and x.max() < VOCAB and len(np.unique(x)) > VOCAB // 2


def test_token_ids_and_labels_are_checked(token_model, tmp_path):
    paths, ids, model = token_model
    labels = model.predict(ids, verbose=0).argmax(-1)
    rep = quantize_model(paths["full"], tmp_path / "ok.onnx", "int8-dynamic", evaluation=(ids, labels),
                         max_drop=100)
    assert rep["accuracy"]["fp32"] == 1.0 and rep["agreement"]["data"] == "evaluation"
    with pytest.raises(InputValueError, match=r"token ids in \[1, 40\]; expected ids in \[0, 40\)"):
        quantize_model(paths["full"], tmp_path / "o.onnx", "fp16", evaluation=(ids + 1, labels))
    with pytest.raises(InputShapeError, match="expected integer token ids"):
        quantize_model(paths["full"], tmp_path / "o.onnx", "fp16", evaluation=(ids * 0.5, labels))
    for bad in (7, -1):
        wrong = labels.copy()
        wrong[0] = bad
        with pytest.raises(InputValueError, match=r"expected class indices in \[0, 3\)"):
            quantize_model(paths["full"], tmp_path / "o.onnx", "fp16", evaluation=(ids, wrong))
    with pytest.raises(InputShapeError, match="0 time steps"):
        quantize_model(paths["full"], tmp_path / "o.onnx", "fp16", evaluation=(ids[:, :0], labels))
    assert not (tmp_path / "o.onnx").exists()


# -- no litter -------------------------------------------------------------------------------------

def _loop_model():
    """A plain ONNX model whose recurrence is a Loop (h = tanh(h W) three times)."""
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.random.default_rng(0).normal(0, 0.3, (16, 16)).astype(np.float32), "w")
    body = helper.make_graph(
        [helper.make_node("MatMul", ["h", "w"], ["hw"]), helper.make_node("Tanh", ["hw"], ["h2"]),
         helper.make_node("Identity", ["cond"], ["cond_out"])],
        "body",
        [helper.make_tensor_value_info("i", TensorProto.INT64, []),
         helper.make_tensor_value_info("cond", TensorProto.BOOL, []),
         helper.make_tensor_value_info("h", TensorProto.FLOAT, ["n", 16])],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
         helper.make_tensor_value_info("h2", TensorProto.FLOAT, ["n", 16])])
    trip = numpy_helper.from_array(np.array(3, np.int64), "trip")
    keep = numpy_helper.from_array(np.array(True), "keep")
    graph = helper.make_graph([helper.make_node("Loop", ["trip", "keep", "x"], ["y"], body=body)], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 16])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 16])], [w, trip, keep])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_loop_model_leaves_nothing_in_the_working_directory(tmp_path, monkeypatch):
    src = tmp_path / "loop.onnx"
    onnx.save(_loop_model(), str(src))
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    out = tmp_path / "loop.int8.onnx"
    with pytest.warns(Warning):
        try:
            rep = quantize_model(src, out, "int8-dynamic", allow_larger=True)
            assert rep["size"]["bytes"] == out.stat().st_size
        except QuantizationError:
            pass
    assert list(cwd.iterdir()) == [] and os.getcwd() == str(cwd)


def test_larger_result_is_an_error_unless_allowed(tmp_path):
    src = tmp_path / "loop.onnx"
    onnx.save(_loop_model(), str(src))
    with pytest.warns(Warning):
        try:
            rep = quantize_model(src, tmp_path / "a.onnx", "int8-dynamic", allow_larger=True)
        except QuantizationError:
            pytest.skip("onnxruntime refuses this Loop graph")
    if rep["size"]["ratio"] <= 1:
        pytest.skip("this onnxruntime shrinks the Loop graph")
    with pytest.warns(Warning), pytest.raises(QuantizationError, match=r"of the fp32 one .*allow-larger"):
        quantize_model(src, tmp_path / "b.onnx", "int8-dynamic")
    assert not (tmp_path / "b.onnx").exists()


def test_stale_workspaces_of_dead_processes_are_swept(tmp_path):
    dead = tmp_path / f"{workspace.PREFIX}999999999-abc"
    mine = tmp_path / f"{workspace.PREFIX}{os.getpid()}-abc"
    other = tmp_path / "unrelated"
    for d in (dead, mine, other):
        d.mkdir()
    assert workspace.sweep_stale(tmp_path) == [dead]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([mine.name, other.name])


def test_external_data_outside_the_folder_is_a_typed_error(fashion, tmp_path):
    c = case("lstm", fashion)
    model = onnx.load(str(c.paths["full"]))
    folder = tmp_path / "model"
    folder.mkdir()
    onnx.save(model, str(folder / "full.onnx"), save_as_external_data=True, location="weights.bin",
              size_threshold=0)
    (folder / "weights.bin").rename(tmp_path / "weights.bin")
    model = onnx.load(str(folder / "full.onnx"), load_external_data=False)
    for init in model.graph.initializer:
        for entry in init.external_data:
            if entry.key == "location":
                entry.value = "../weights.bin"
    onnx.save(model, str(folder / "full.onnx"))
    with pytest.raises(ModelFormatError, match="external data files must lie in the model's folder"):
        quantize_model(folder / "full.onnx", tmp_path / "o.onnx", "fp16")
