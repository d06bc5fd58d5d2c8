"""Model (full variant) on a real export: predict, uint8 scaling, batch splitting, labels."""

import numpy as np
import pytest

pytest.importorskip("keras")

import runtime  # noqa: E402
from runtime_fixtures import CLASSES, LABELS, lstm_exports, sequences  # noqa: E402


@pytest.fixture(scope="module")
def model():
    return runtime.load(lstm_exports()["full"], providers=["cpu"], threads=1)


def test_full_loads_as_model_with_contract(model):
    assert isinstance(model, runtime.Model)
    assert model.contract.variant == "full"
    assert model.labels == model.classes == tuple(LABELS)
    assert model.providers == ["CPUExecutionProvider"]


def test_predict_gives_probabilities(model):
    y = model.predict(sequences(5))
    assert y.shape == (5, CLASSES) and y.dtype == np.float32
    np.testing.assert_allclose(y.sum(axis=1), 1.0, atol=1e-5)
    assert model.predict_labels(sequences(5)) == [LABELS[i] for i in y.argmax(axis=1)]


def test_uint8_input_is_scaled_by_the_metadata(model):
    pixels = np.random.default_rng(2).integers(0, 256, (4, 6, 5), dtype=np.uint8)
    np.testing.assert_allclose(model.predict(pixels), model.predict(pixels / 255.0), atol=1e-6)


def test_large_batches_are_split_without_changing_results(model):
    xs = sequences(10, seed=4)
    np.testing.assert_allclose(model.predict(xs, max_batch=3), model.predict(xs), atol=1e-6)


def test_repeated_shape_runs_pre_bound_with_the_same_checks(model):
    xs = sequences(3, seed=8)
    first = model.predict(xs[:1])  # the general path; it pre-binds this shape
    assert (1, 6, 5) in model._bound
    np.testing.assert_array_equal(model.predict(xs[:1]), first)
    again = model.predict(xs[:1])
    assert again is not model.predict(xs[:1])  # a new array each call, not the bound buffer
    np.testing.assert_allclose(model.predict(xs[1:2]), model.predict(xs)[1:2], atol=1e-6)
    bad = xs[:1].copy()
    bad[0, 2, 1] = np.nan
    with pytest.raises(runtime.InputValueError, match=r"1 NaN .*index \(0, 2, 1\)"):
        model.predict(bad)
    bad[0, 2, 1] = 7.0
    with pytest.raises(runtime.InputValueError, match=r"lie in \[0, 1\]"):
        model.predict(bad)
    np.testing.assert_array_equal(model.predict(xs[:1]), first)
