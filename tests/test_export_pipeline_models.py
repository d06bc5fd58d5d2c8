"""The pipeline's models (pipeline.models) through all three ONNX variants.

Real Keras, tf2onnx and onnxruntime: parity figures, op types, streamed ==
full, I/O names and the rnnx metadata contract.
"""

import json

import numpy as np
import pytest

pytest.importorskip("tf2onnx")

from export_cases import (FORBIDDEN_IN_UNROLLED, PIPELINE, RNN_OP, VARIANTS, op_types,  # noqa: E402
                          pipeline_export, pipeline_model, session, stream_through)

from runtime.contract import Contract  # noqa: E402

NAMES = tuple(PIPELINE) + ("char_gru_stateful",)


def _inputs(name, n=3, steps=None, seed=1):
    shape = PIPELINE["char_gru" if name == "char_gru_stateful" else name][1]
    steps = steps or shape[0]
    return np.random.default_rng(seed).random((n, steps, *shape[1:]), dtype=np.float32)


def _keras(name, x):
    from exporters.graph.reference import reference_model

    ref, _ = reference_model(pipeline_model(name))
    return np.asarray(ref(x, training=False))


@pytest.mark.parametrize("name", NAMES)
def test_files_and_report(name):
    res = pipeline_export(name)
    assert set(res.paths) == set(VARIANTS)
    out_dir = res.paths["full"].parent
    assert json.loads((out_dir / "export.json").read_text()) == res.report
    assert not [p for p in out_dir.iterdir() if p.name.startswith(".")]  # no temp files left
    for variant in VARIANTS:
        entry = res.report["variants"][variant]
        assert entry["file_bytes"] == res.paths[variant].stat().st_size
        assert entry["parity"]["max_abs_diff"] <= 1e-5
        assert entry["converter"] == "rnnx" and entry["fallback_reason"] is None
        if variant != "full":
            assert entry["parity"]["streamed_max_abs_diff"] <= 1e-5
            assert entry["parity"]["streamed_vs_full_max_abs_diff"] <= 1e-5
        assert sum(entry["op_counts"].values()) == entry["nodes"]


@pytest.mark.parametrize("name", NAMES)
def test_op_types(name):
    res = pipeline_export(name)
    full, stream, unrolled = (op_types(res.paths[v]) for v in VARIANTS)
    assert RNN_OP[name] in full and "Loop" not in full
    assert RNN_OP[name] in stream and "Loop" not in stream
    assert not unrolled & FORBIDDEN_IN_UNROLLED
    assert res.report["variants"]["full"]["native_rnn_ops"] is True
    assert res.report["variants"]["unrolled"]["rnn_ops"] == "unrolled"


@pytest.mark.parametrize("name", NAMES)
def test_full_matches_keras_with_any_batch(name):
    x = _inputs(name, n=5)
    y = session(pipeline_export(name).paths["full"]).run(["y"], {"x": x})[0]
    np.testing.assert_allclose(y, _keras(name, x), atol=1e-5)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("variant", ["stream", "unrolled"])
def test_streamed_equals_full(name, variant):
    res = pipeline_export(name)
    x = _inputs(name, n=2, seed=4)
    full = session(res.paths["full"]).run(["y"], {"x": x})[0]
    streamed, states = stream_through(res.paths[variant], x, chunk=1)
    np.testing.assert_allclose(streamed, full, atol=1e-5)
    np.testing.assert_allclose(streamed, _keras(name, x), atol=1e-5)
    assert all(s.shape[0] == 2 for s in states)


def test_dynamic_time_axis_in_full():
    x = _inputs("char_gru", n=2, steps=15)
    y = session(pipeline_export("char_gru").paths["full"]).run(["y"], {"x": x})[0]
    assert y.shape == (2, 15, 7)
    np.testing.assert_allclose(y, _keras("char_gru", x), atol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_names_and_metadata_follow_the_contract(name):
    import onnx

    res = pipeline_export(name)
    model = pipeline_model(name)
    rnn_layers = [layer for layer in model.layers if type(layer).__name__ in ("LSTM", "GRU")]
    for variant in VARIANTS:
        proto = onnx.load(str(res.paths[variant]))
        meta = {p.key: p.value for p in proto.metadata_props}
        contract = Contract.from_json(meta["rnnx"])
        inputs = [i.name for i in proto.graph.input]
        outputs = [o.name for o in proto.graph.output]
        assert contract.variant == variant
        assert contract.input.name == "x" and contract.output.name == "y"
        assert contract.input.shape[0] is None and contract.input_time_axis == 1
        assert contract.source["sha256"] == res.report["source"]["sha256"]
        assert contract.source["keras_version"]
        assert contract.parity["max_abs_diff"] == res.report["variants"][variant]["parity"]["max_abs_diff"]
        assert contract.per_step == name.startswith("char_gru")
        assert contract.output_meaning == "class_probabilities"
        if variant == "full":
            assert inputs == ["x"] and outputs == ["y"] and contract.states == ()
            assert contract.chunk is None
            continue
        assert contract.chunk == 1 and contract.input.shape[1] == 1
        expected_in, expected_out = ["x"], ["y"]
        for k, layer in enumerate(rnn_layers):
            kinds = ("h", "c") if type(layer).__name__ == "LSTM" else ("h",)
            expected_in += [f"{kind}_in_{k}" for kind in kinds]
            expected_out += [f"{kind}_out_{k}" for kind in kinds]
        assert inputs == expected_in and outputs == expected_out
        assert [s.input for s in contract.states] == expected_in[1:]
        assert [s.output for s in contract.states] == expected_out[1:]
        for s in contract.states:
            assert s.shape[0] is None and s.init == 0.0
            assert s.units == next(layer.units for layer in rnn_layers if layer.name == s.layer)


def test_source_hash_is_the_keras_file():
    import hashlib

    from export_cases import workdir

    digest = hashlib.sha256((workdir() / "models" / "lstm.keras").read_bytes()).hexdigest()
    assert pipeline_export("lstm").report["source"]["sha256"] == digest


def test_stateful_copy_exports_with_dynamic_batch():
    deploy = pipeline_model("char_gru_stateful")
    assert deploy.input_shape == (1, 1, 7)
    res = pipeline_export("char_gru_stateful")
    sess = session(res.paths["stream"])
    assert sess.get_inputs()[0].shape[0] == "batch"
    x = _inputs("char_gru_stateful", n=4, steps=1)
    y = sess.run(["y"], {"x": x, "h_in_0": np.zeros((4, 10), np.float32),
                          "h_in_1": np.zeros((4, 10), np.float32)})[0]
    assert y.shape == (4, 1, 7)
