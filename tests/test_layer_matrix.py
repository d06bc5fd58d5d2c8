"""Every registered layer handler x every variant it claims, on real tiny Keras models.

For each case of layer_cases.py: the default export makes exactly the
variants the case expects (the others are skipped with a reason naming a
layer), every variant is within 1e-5 of Keras at the samples' length and at
another length, `full` also at two more lengths (so its time axis is honestly
dynamic), streamed chunk by chunk equals `full`, and `unrolled` holds no
Loop/Scan/If/LSTM/GRU/RNN op. A registered class without a case fails the
coverage test.
"""

from __future__ import annotations

import functools
import os

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from export_cases import FORBIDDEN_IN_UNROLLED, randomize, workdir  # noqa: E402
from layer_cases import all_cases  # noqa: E402

CASES = {c.name: c for c in all_cases()}
ATOL = 1e-5


@functools.cache
def exported(name: str):
    import keras

    from exporters.export import export_model

    keras.utils.set_random_seed(3)
    case = CASES[name]
    model = randomize(case.build(), seed=len(name), scale=0.5)
    return model, export_model(model, workdir() / "matrix" / name, chunk=2)


def _random_inputs(contract, steps: int, n: int = 3, seed: int = 1) -> dict:
    rng = np.random.default_rng(seed)
    feeds = {}
    for spec in contract.inputs:
        rest = [d for d in spec.shape[2 if spec.time_axis is not None else 1:]]
        shape = (n, steps, *rest) if spec.time_axis is not None else (n, *rest)
        if spec.vocab_size is not None:
            feeds[spec.name] = rng.integers(0, spec.vocab_size, size=shape).astype(spec.dtype)
        else:
            feeds[spec.name] = rng.random(shape, dtype=np.float32).astype(spec.dtype)
    return feeds


def _keras(model, feeds: dict, contract) -> list:
    xs = [feeds[s.name] for s in contract.inputs]
    ys = model(xs[0] if len(xs) == 1 else xs, training=False)
    return [np.asarray(y) for y in (ys if isinstance(ys, (list, tuple)) else [ys])]


def _contract(path):
    import onnx

    from runtime.contract import METADATA_KEY, Contract

    meta = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    return Contract.from_json(meta[METADATA_KEY])


@pytest.mark.parametrize("name", sorted(CASES))
def test_case_exports_the_variants_it_claims_within_tolerance(name):
    case = CASES[name]
    _, res = exported(name)
    assert tuple(v for v in ("full", "stream", "unrolled") if v in res.paths) == case.variants
    for variant, why in res.report["skipped"].items():
        assert "layer '" in why or "sequence" in why, f"{variant} skipped without naming a layer: {why}"
    for variant in case.variants:
        entry = res.report["variants"][variant]
        assert entry["converter"] == "rnnx" or (variant == "full" and case.name.startswith("gru_stream_only_")), \
            entry["fallback_reason"]
        parity = entry["parity"]
        assert parity["max_abs_diff"] <= ATOL
        if variant == "full":
            other = parity.get("other_lengths", {})
            assert ("failed" in other) == case.fixed_time, other
            if case.fixed_time:  # honest shapes: the graph declares the one length that works
                import onnx

                dims = onnx.load(str(res.paths["full"])).graph.input[0].type.tensor_type.shape.dim
                assert dims[1].dim_value == parity["steps"]
                assert _contract(res.paths["full"]).inputs[0].shape[1] == parity["steps"]
        else:
            assert parity["streamed_max_abs_diff"] <= ATOL
            if "full" in case.variants:
                assert parity["streamed_vs_full_max_abs_diff"] <= ATOL
    if "unrolled" in res.paths:
        import onnx

        ops = {n.op_type for n in onnx.load(str(res.paths["unrolled"])).graph.node}
        assert not ops & FORBIDDEN_IN_UNROLLED


@pytest.mark.parametrize("name", sorted(n for n, c in CASES.items() if "stream" in c.variants))
def test_streams_at_another_length_equal_keras(name):
    """The stream variant fed 6 steps in chunks of 2 (the export validated at 8); a stream on a clock
    (windows that drop, decimate or look ahead) flushed at the end."""
    import onnxruntime as ort

    from exporters.validation import parity

    model, res = exported(name)
    contract = _contract(res.paths["stream"])
    sig = parity.Signature.from_contract(contract)
    feeds = _random_inputs(contract, steps=6)
    sess = ort.InferenceSession(str(res.paths["stream"]), providers=["CPUExecutionProvider"])
    got, _ = parity.stream(sess, sig, [feeds[s.name] for s in contract.inputs], chunk=2)
    for g, want in zip(got, _keras(model, feeds, contract)):
        assert np.abs(g - want).max() <= ATOL


def test_bidirectional_cases_are_one_native_op_each_and_no_loop():
    import onnx

    for name in (n for n in CASES if n.startswith("bi_")):
        nodes = onnx.load(str(exported(name)[1].paths["full"])).graph.node
        ops = [n.op_type for n in nodes]
        assert "Loop" not in ops and "Scan" not in ops
        rnn = [n for n in nodes if n.op_type in ("LSTM", "GRU", "RNN")]
        assert rnn and all(onnx.helper.get_attribute_value(a) == b"bidirectional"
                           for n in rnn for a in n.attribute if a.name == "direction")


def test_every_registered_handler_has_a_case():
    from exporters.graph.registry import display_name, registered

    covered = {cls for c in CASES.values() for cls in c.covers}
    missing = sorted(display_name(cls) for cls in registered() if display_name(cls) not in covered)
    assert not missing, f"registered layer classes without a case in tests/layer_cases*.py: {missing}"
