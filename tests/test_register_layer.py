"""A user's own Keras layer, taught to rnnx with register_layer, exports every variant."""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402

from exporters.graph import LayerHandler, register_layer  # noqa: E402
from exporters.errors import UnsupportedLayerError  # noqa: E402


@keras.saving.register_keras_serializable(package="rnnx_tests")
class Scale(keras.layers.Layer):
    """x * a learned vector (per feature): a layer rnnx does not know."""

    def build(self, input_shape):
        self.scale = self.add_weight(shape=(input_shape[-1],), initializer="ones", name="scale")

    def call(self, x):
        return x * self.scale


class ScaleHandler(LayerHandler):
    summary = "x * scale (last axis)"

    def emit(self, ctx, call):
        scale = ctx.weight(call.layer, "scale", call.layer.scale.numpy())
        return [ctx.g.node("Mul", [call.inputs[0], scale], name_hint=call.prefix)]


def _model():
    keras.utils.set_random_seed(2)
    inp = keras.Input((None, 4))
    y = Scale()(keras.layers.GRU(5, return_sequences=True)(inp))
    model = keras.Model(inp, keras.layers.LSTM(3)(y))
    model.layers[2].scale.assign(np.linspace(0.5, 2.0, 5).astype(np.float32))
    return model


def test_an_unregistered_layer_cannot_stream_and_says_how_to_fix_it(tmp_path):
    from exporters.export import export_model
    from exporters.graph.registry import unregister_layer

    unregister_layer(Scale)

    res = export_model(_model(), tmp_path / "out")
    assert set(res.paths) == {"full"}
    assert "register_layer" in res.report["skipped"]["stream"] and "'scale'" in res.report["skipped"]["stream"]
    with pytest.raises(UnsupportedLayerError, match="Scale"):
        export_model(_model(), tmp_path / "out2", variants=("stream",))


def test_a_registered_layer_exports_every_variant_and_is_listed(tmp_path):
    from exporters.export import export_model
    from exporters.graph.registry import table

    register_layer(Scale, ScaleHandler(), replace=True)
    try:
        res = export_model(_model(), tmp_path / "out", chunk=2)
        assert set(res.paths) == {"full", "stream", "unrolled"}
        for entry in res.report["variants"].values():
            assert entry["converter"] == "rnnx" and entry["parity"]["max_abs_diff"] <= 1e-5
        assert any(r["layer"] == "Scale" and r["summary"] == "x * scale (last axis)" for r in table())
        with pytest.raises(ValueError, match="already has a handler"):
            register_layer(Scale, ScaleHandler())
    finally:
        from exporters.graph.registry import unregister_layer

        unregister_layer(Scale)


def test_register_layer_checks_its_arguments():
    with pytest.raises(TypeError, match="LayerHandler instance"):
        register_layer(Scale, ScaleHandler)
    with pytest.raises(TypeError, match="Keras layer class"):
        register_layer("Scale", ScaleHandler())
