"""Models the pipeline does not train: other sizes and layer settings.

Stacked LSTM+GRU, SimpleRNN, GRU reset_after=False, LSTM use_bias=False, a
functional model with relu cells, an Embedding front end; longer chunks; the
unrolled variant's shared weights.
"""

import numpy as np
import pytest

pytest.importorskip("tf2onnx")

from export_cases import (EXTRA, FORBIDDEN_IN_UNROLLED, VARIANTS, extra_export, extra_model,  # noqa: E402
                          op_types, session, stream_through)

NATIVE_OP = {"stacked_lstm_gru": {"LSTM", "GRU"}, "simple_rnn": {"RNN"}, "gru_reset_before": {"GRU"},
             "lstm_no_bias": {"LSTM"}, "wide_lstm_relu": {"LSTM"}, "embedding_gru": {"GRU"}}


def _x(name, n=3, steps=None, seed=2):
    model = extra_model(name)
    steps = steps or model.input_shape[1] or 6
    rng = np.random.default_rng(seed)
    if name == "embedding_gru":
        return rng.integers(0, 20, size=(n, steps)).astype(np.int32)
    return rng.random((n, steps, *model.input_shape[2:]), dtype=np.float32)


def _keras(name, x):
    return np.asarray(extra_model(name)(x, training=False))


@pytest.mark.parametrize("name", EXTRA)
def test_parity_and_ops(name):
    res = extra_export(name)
    for variant in VARIANTS:
        parity = res.report["variants"][variant]["parity"]
        assert parity["max_abs_diff"] <= 1e-5, (variant, parity)
    assert NATIVE_OP[name] <= op_types(res.paths["full"])
    assert NATIVE_OP[name] <= op_types(res.paths["stream"])
    assert not op_types(res.paths["unrolled"]) & FORBIDDEN_IN_UNROLLED


@pytest.mark.parametrize("name", EXTRA)
@pytest.mark.parametrize("variant", ["stream", "unrolled"])
def test_streamed_equals_full_and_keras(name, variant):
    res = extra_export(name)
    x = _x(name)
    full = session(res.paths["full"]).run(["y"], {"x": x})[0]
    streamed, _ = stream_through(res.paths[variant], x, chunk=1)
    np.testing.assert_allclose(streamed, full, atol=1e-5)
    np.testing.assert_allclose(full, _keras(name, x), atol=1e-5)


@pytest.mark.parametrize("name", ["stacked_lstm_gru", "gru_reset_before", "simple_rnn"])
def test_chunk_of_three_steps(name):
    res = extra_export(name, chunk=3)
    x = _x(name, steps=6)
    for variant in ("stream", "unrolled"):
        sess = session(res.paths[variant])
        assert sess.get_inputs()[0].shape[1] == 3
        streamed, _ = stream_through(res.paths[variant], x, chunk=3)
        np.testing.assert_allclose(streamed, _keras(name, x), atol=1e-5)
    assert res.report["chunk"] == 3


def _initializers(path):
    import onnx
    from onnx import numpy_helper

    return [numpy_helper.to_array(t) for t in onnx.load(str(path)).graph.initializer]


@pytest.mark.parametrize("name", ["stacked_lstm_gru", "lstm_no_bias", "gru_reset_before"])
def test_unrolled_stores_each_weight_once(name):
    path = extra_export(name, chunk=3).paths["unrolled"]
    inits = _initializers(path)
    big = [a for a in inits if a.size > 16]
    assert len({a.tobytes() for a in big}) == len(big)  # no weight copied per step
    model = extra_model(name)
    for w in model.get_weights():
        if w.ndim == 2 and w.shape[0] != 2:  # kernels (GRU reset_before splits its recurrent kernel once)
            hits = sum(1 for a in inits if a.shape == w.shape and np.array_equal(a, w))
            assert hits <= 1
    # every step reads the same recurrent-kernel initializer
    import onnx

    graph = onnx.load(str(path)).graph
    names = {t.name for t in graph.initializer}
    matmul_weights = [n.input[1] for n in graph.node if n.op_type == "MatMul" and n.input[1] in names]
    assert len(matmul_weights) > len(set(matmul_weights))


def test_unrolled_weights_weigh_no_more_than_full():
    res = extra_export("stacked_lstm_gru", chunk=3)
    weight_bytes = {v: sum(a.nbytes for a in _initializers(res.paths[v])) for v in ("full", "unrolled")}
    assert weight_bytes["unrolled"] <= weight_bytes["full"] + 256  # + step indices and split sizes


def test_embedding_input_is_integer():
    res = extra_export("embedding_gru")
    sess = session(res.paths["stream"])
    assert sess.get_inputs()[0].type == "tensor(int32)"
    assert res.report["input"]["dtype"] == "int32"


def test_samples_array_and_npz(tmp_path):
    from exporters.export import export_model

    model = extra_model("lstm_no_bias")
    x = _x("lstm_no_bias", n=5, steps=4)
    res = export_model(model, tmp_path / "a", variants=("full",), samples=x)
    assert res.report["samples"] == {"source": "array", "n": 5, "steps": 4}
    np.savez(tmp_path / "s.npz", x=x, y=np.zeros(5))
    res = export_model(model, tmp_path / "b", variants=("stream",), samples=tmp_path / "s.npz")
    assert res.report["samples"] == {"source": "file:s.npz", "n": 5, "steps": 4}
    assert set(res.paths) == {"stream"}


def test_metadata_labels_and_uint8_scale(tmp_path):
    from exporters.export import export_model
    from runtime.contract import Contract

    res = export_model(extra_model("stacked_lstm_gru"), tmp_path, variants=("stream",),
                       labels="cat,dog,owl", uint8_scale=True, name="animals")
    import onnx

    meta = {p.key: p.value for p in onnx.load(str(res.paths["stream"])).metadata_props}
    c = Contract.from_json(meta["rnnx"])
    assert c.labels == ("cat", "dog", "owl")
    assert c.uint8_scale == pytest.approx(1 / 255)
    assert c.source["name"] == "animals" and c.source["sha256_of"] == "weights"
    assert [(s.input, s.kind, s.units) for s in c.states] == [("h_in_0", "h", 9), ("c_in_0", "c", 9),
                                                              ("h_in_1", "h", 7)]


def test_every_sample_given_is_validated_in_batches(tmp_path):
    from exporters.export import export_model
    from exporters.validation.parity import BATCH

    x = _x("simple_rnn", n=BATCH + 44, steps=4)
    res = export_model(extra_model("simple_rnn"), tmp_path, variants=("full", "stream"), samples=x)
    for variant in ("full", "stream"):
        assert res.report["variants"][variant]["parity"]["n_samples"] == BATCH + 44
        assert res.report["variants"][variant]["parity"]["max_abs_diff"] <= 1e-5
