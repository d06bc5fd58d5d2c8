"""Model zoo: each builder's architecture, parameter checks, the stateful deploy copy."""

import numpy as np
import pytest

from exporters.errors import ConfigError
from pipeline import models


@pytest.mark.parametrize("name, shape, n_out, rnn", [
    ("lstm", (28, 28), 10, "LSTM"),
    ("gru", (28, 28), 10, "GRU"),
    ("cnn_lstm", (4, 20, 20, 1), 40, "LSTM"),
    ("char_gru", (9, 7), 7, "GRU"),
])
def test_builders(name, shape, n_out, rnn):
    model = models.build(name, {"units": 8, "filters": [4]}, shape, n_out)
    kinds = [type(layer).__name__ for layer in model.layers]
    assert rnn in kinds
    out = np.asarray(model(np.zeros((2,) + shape, np.float32)))
    expected = (2, shape[0], n_out) if name == "char_gru" else (2, n_out)
    assert out.shape == expected
    np.testing.assert_allclose(out.sum(-1), 1.0, rtol=1e-5)       # softmax


def test_cnn_lstm_follows_seed_002():
    model = models.build("cnn_lstm", {"filters": [4, 8], "units": 8}, (4, 20, 20, 1), 40)
    wrapped = [type(layer.layer).__name__ for layer in model.layers if type(layer).__name__ == "TimeDistributed"]
    assert wrapped == ["Conv2D", "MaxPooling2D", "Conv2D", "MaxPooling2D", "Dropout", "Flatten"]
    assert [type(layer).__name__ for layer in model.layers][-4:] == ["LSTM", "Dense", "Dropout", "Dense"]


def test_default_units_are_128():
    assert models.build("lstm", {}, (28, 28), 10).get_layer("lstm").units == 128


@pytest.mark.parametrize("cfg, match", [
    ({"units": 0}, "units"), ({"units": "big"}, "units"), ({"filters": [4, -1]}, "filters"),
    ({"dropout": 1.5}, "dropout"),
])
def test_bad_parameters_are_named(cfg, match):
    name = "cnn_lstm" if "filters" in cfg or "dropout" in cfg else "lstm"
    with pytest.raises(ConfigError, match=match):
        models.build(name, cfg, (4, 20, 20, 1) if name == "cnn_lstm" else (28, 28), 10)


def test_unknown_model():
    with pytest.raises(ConfigError, match="unknown model 'rnn'"):
        models.build("rnn", {}, (28, 28), 10)


def test_stateful_copy_matches_the_sequence_model():
    model = models.build("char_gru", {"units": 8}, (6, 5), 5)
    x = np.eye(5, dtype=np.float32)[[0, 3, 1, 4, 2, 0]][None]
    full = np.asarray(model(x))
    deploy = models.stateful_copy(model)
    assert deploy.get_layer("gru_0").stateful and deploy.input_shape == (1, 1, 5)
    steps = [np.asarray(deploy(x[:, t:t + 1]))[0, 0] for t in range(6)]
    np.testing.assert_allclose(np.stack(steps), full[0], atol=1e-5)
