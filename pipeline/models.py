"""The model zoo: Keras builders for the seeds' recurrent models.

- ``lstm``: LSTM + Dense softmax over image rows (seed 003).
- ``gru``: the same with a GRU (seed 001).
- ``cnn_lstm``: TimeDistributed Conv2D/MaxPooling2D/Dropout/Flatten -> LSTM
  -> Dense -> Dropout -> Dense softmax over clips (seed 002).
- ``char_gru``: two stacked GRU layers with ``return_sequences=True`` and a
  TimeDistributed Dense softmax, trained on a whole sentence and deployed as
  a stateful copy that reads one character at a time (seed 003).

Sizes come from params.yaml (``cfg``); builders return compiled models.
"""

from __future__ import annotations

from exporters.errors import ConfigError

MODEL_NAMES = ("lstm", "gru", "cnn_lstm", "char_gru")
TASK_OF = {"lstm": "rows", "gru": "rows", "cnn_lstm": "clips", "char_gru": "chars"}


def build(name: str, cfg: dict, input_shape: tuple, n_out: int, decay_steps: int | None = None):
    """Build and compile model ``name`` for inputs of ``input_shape`` (no batch axis).

    With ``decay_steps`` the learning rate follows a cosine decay to zero over
    that many optimizer steps (the whole training run).
    """
    builders = {"lstm": _rows_rnn, "gru": _rows_rnn, "cnn_lstm": _cnn_lstm, "char_gru": _char_gru}
    if name not in builders:
        raise ConfigError(f"unknown model {name!r}; expected one of {list(MODEL_NAMES)}")
    model = builders[name](name, dict(cfg or {}), tuple(input_shape), int(n_out))
    import keras

    rate = cfg.get("learning_rate", 1e-3)
    if not isinstance(rate, (int, float)) or isinstance(rate, bool) or not 0 < rate < 1:
        raise ConfigError(f"model parameter 'learning_rate' must be a number in (0, 1), got {rate!r}")
    if decay_steps:
        rate = keras.optimizers.schedules.CosineDecay(float(rate), decay_steps=int(decay_steps))
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=rate),
                  loss="sparse_categorical_crossentropy" if name != "char_gru" else "categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def _positive_int(cfg: dict, key: str, default: int) -> int:
    value = cfg.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigError(f"model parameter {key!r} must be a positive integer, got {value!r}")
    return value


def _rate(cfg: dict, key: str, default: float) -> float:
    value = cfg.get(key, default)
    if not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
        raise ConfigError(f"model parameter {key!r} must be a rate in [0, 1), got {value!r}")
    return float(value)


def _rows_rnn(name: str, cfg: dict, input_shape: tuple, n_out: int):
    import keras
    from keras import layers

    units = _positive_int(cfg, "units", 128)
    rnn = layers.LSTM if name == "lstm" else layers.GRU
    return keras.Sequential([
        keras.Input(shape=input_shape, name="x"),
        rnn(units, name=name),
        layers.Dense(n_out, activation="softmax", name="classes"),
    ], name=name)


def _cnn_lstm(name: str, cfg: dict, input_shape: tuple, n_out: int):
    import keras
    from keras import layers

    filters = cfg.get("filters", [16, 32])
    if not isinstance(filters, list) or not filters or not all(isinstance(f, int) and f > 0 for f in filters):
        raise ConfigError(f"model parameter 'filters' must be a list of positive integers, got {filters!r}")
    kernel = _positive_int(cfg, "kernel", 3)
    td = layers.TimeDistributed
    stack = [keras.Input(shape=input_shape, name="x")]
    for i, f in enumerate(filters):
        stack += [td(layers.Conv2D(f, kernel, padding="same", activation="relu"), name=f"conv{i}"),
                  td(layers.MaxPooling2D(2), name=f"pool{i}")]
    stack += [
        td(layers.Dropout(_rate(cfg, "conv_dropout", 0.25)), name="conv_dropout"),
        td(layers.Flatten(), name="flatten"),
        layers.LSTM(_positive_int(cfg, "units", 64), name="lstm"),
        layers.Dense(_positive_int(cfg, "dense", 128), activation="relu", name="dense"),
        layers.Dropout(_rate(cfg, "dropout", 0.5), name="dropout"),
        layers.Dense(n_out, activation="softmax", name="classes"),
    ]
    return keras.Sequential(stack, name=name)


def _char_gru(name: str, cfg: dict, input_shape: tuple, n_out: int, *, stateful: bool = False,
              batch_size: int | None = None):
    import keras
    from keras import layers

    units = _positive_int(cfg, "units", 50)
    return keras.Sequential([
        keras.Input(shape=input_shape, batch_size=batch_size, name="x"),
        layers.GRU(units, return_sequences=True, stateful=stateful, name="gru_0"),
        layers.GRU(units, return_sequences=True, stateful=stateful, name="gru_1"),
        layers.TimeDistributed(layers.Dense(n_out, activation="softmax"), name="output_layer"),
    ], name=name)


def stateful_copy(model):
    """The char GRU's deploy model: batch 1, one step per call, stateful, same weights (seed 003)."""
    units = model.get_layer("gru_0").units
    vocab = model.output_shape[-1]
    copy = _char_gru(model.name, {"units": units}, (1, vocab), vocab, stateful=True, batch_size=1)
    copy.set_weights(model.get_weights())
    return copy
