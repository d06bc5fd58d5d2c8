"""One small model per registered layer handler, for the layer matrix (test_layer_matrix.py).

Not a test module. Each `Case` builds a tiny Keras model (random seeded
weights) around the layers it `covers` (Keras class names) and says which
variants the default export must make. test_layer_matrix.py fails when a
registered class has no case here or in another module listed in `MODULES`,
so adding a handler means adding a case.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable

ALL = ("full", "stream", "unrolled")
FULL = ("full",)

# other modules with a CASES list (one per handler family written elsewhere)
MODULES = ("layer_cases_conv", "layer_cases_ops")


@dataclass(frozen=True)
class Case:
    name: str
    covers: tuple             # Keras layer class names this case exercises
    build: Callable           # () -> keras.Model
    variants: tuple = ALL     # what the default export must make (the others skipped, with a reason)
    fixed_time: bool = False  # the model only works at its own length: full must declare it fixed


def _seq(*layers, shape=(None, 5), dtype="float32", name="m"):
    import keras

    inp = keras.Input(shape, dtype=dtype)
    y = inp
    for layer in layers:
        y = layer(y)
    return keras.Model(inp, y, name=name)


def _rnn_cases():
    from keras import layers as L

    cases = [
        Case("lstm_seq", ("LSTM",), lambda: _seq(L.LSTM(6, return_sequences=True), L.LSTM(4))),
        Case("gru_reset_after", ("GRU",), lambda: _seq(L.GRU(6, return_sequences=True), L.Dense(3))),
        Case("gru_reset_before", ("GRU",), lambda: _seq(L.GRU(6, reset_after=False), L.Dense(3))),
        Case("simple_rnn", ("SimpleRNN",), lambda: _seq(L.SimpleRNN(6, return_sequences=True), L.SimpleRNN(3))),
        Case("rnn_lstm_cell", ("RNN", "LSTM"), lambda: _seq(L.RNN(L.LSTMCell(6), return_sequences=True))),
        Case("rnn_gru_cell", ("RNN",), lambda: _seq(L.RNN(L.GRUCell(6)))),
        Case("rnn_simple_cell", ("RNN",), lambda: _seq(L.RNN(L.SimpleRNNCell(6), return_sequences=True))),
        Case("stacked_cells", ("RNN",),
             lambda: _seq(L.RNN(L.StackedRNNCells([L.GRUCell(6), L.LSTMCell(5), L.SimpleRNNCell(4)]),
                                return_sequences=True))),
        Case("lstm_go_backwards", ("LSTM",), lambda: _seq(L.LSTM(5, go_backwards=True, return_sequences=True)),
             FULL),
        Case("gru_go_backwards_last", ("GRU",), lambda: _seq(L.GRU(5, go_backwards=True)), FULL),
    ]
    for act in ("hard_sigmoid", "relu", "elu", "softsign", "softplus", "linear", "leaky_relu"):
        cases.append(Case(f"lstm_{act}", ("LSTM",),
                          lambda act=act: _seq(L.LSTM(5, activation=act if act != "hard_sigmoid" else "tanh",
                                                      recurrent_activation="hard_sigmoid" if act == "hard_sigmoid"
                                                      else "sigmoid", return_sequences=True))))
        cases.append(Case(f"gru_{act}", ("GRU",),
                          lambda act=act: _seq(L.GRU(5, activation=act, recurrent_activation="hard_sigmoid"))))
        cases.append(Case(f"simple_rnn_{act}", ("SimpleRNN",), lambda act=act: _seq(L.SimpleRNN(5, activation=act))))
    # activations no ONNX RNN op has: full cannot be made (tf2onnx fails on gelu's Erfc too), the
    # streams are plain ops per step
    for act in ("gelu", "mish", "hard_silu", "silu", "relu6"):
        cases.append(Case(f"gru_stream_only_{act}", ("GRU",), lambda act=act: _seq(L.GRU(5, activation=act)),
                          ("stream", "unrolled") if act == "gelu" else ALL))
    for kind in ("LSTM", "GRU", "SimpleRNN"):
        for mode in ("concat", "sum", "mul", "ave", None):
            cases.append(Case(f"bi_{kind.lower()}_{mode}", ("Bidirectional",),
                              lambda kind=kind, mode=mode: _bidirectional(kind, mode), FULL))
    cases.append(Case("bi_lstm_last_state", ("Bidirectional",), _bidirectional_states, FULL))
    return cases


def _bidirectional(kind, mode):
    import keras
    from keras import layers as L

    inp = keras.Input((None, 5))
    y = L.Bidirectional(getattr(L, kind)(4, return_sequences=True), merge_mode=mode)(inp)
    if mode is None:
        y = L.Concatenate()(y)
    return keras.Model(inp, L.Bidirectional(getattr(L, kind)(3), merge_mode=mode or "concat")(y))


def _bidirectional_states():
    import keras
    from keras import layers as L

    inp = keras.Input((None, 5))
    y, hf, cf, hb, cb = L.Bidirectional(L.LSTM(4, return_state=True))(inp)
    return keras.Model(inp, [y, L.Concatenate()([hf, hb]), L.Add()([cf, cb])])


def _core_cases():
    import keras
    from keras import layers as L

    def dense_family():
        return _seq(L.LSTM(6, return_sequences=True), L.Dense(6, activation="selu"), L.Activation("hard_sigmoid"),
                    L.ReLU(max_value=0.8, negative_slope=0.1), L.LeakyReLU(0.3), L.ELU(0.7), L.Dense(4),
                    L.Softmax())

    def identities():
        return _seq(L.Dropout(0.5), L.SpatialDropout1D(0.2), L.GaussianNoise(0.3), L.GaussianDropout(0.2),
                    L.AlphaDropout(0.2), L.ActivityRegularization(0.01), L.Identity(), L.GRU(5))

    def embedding():
        return _seq(L.Embedding(30, 6), L.LSTM(5), shape=(None,), dtype="int32")

    def merges():
        inp = keras.Input((None, 5))
        a = L.GRU(4, return_sequences=True)(inp)
        b = L.Dense(4)(inp)
        parts = [L.Add()([a, b]), L.Subtract()([a, b]), L.Multiply()([a, b]), L.Maximum()([a, b]),
                 L.Minimum()([a, b]), L.Average()([a, b, a])]
        return keras.Model(inp, L.LSTM(3)(L.Concatenate()(parts)))

    def two_inputs_shared():
        seq, side = keras.Input((None, 5), name="seq"), keras.Input((3,), name="side")
        shared = L.Dense(4, name="shared")
        h = L.LSTM(4)(shared(L.TimeDistributed(L.Dense(3))(seq)))
        return keras.Model([seq, side], L.Dense(2, activation="softmax")(L.Concatenate()([h, shared(side)])))

    def encoder_states():
        inp = keras.Input((None, 5))
        y, h, c = L.LSTM(4, return_sequences=True, return_state=True)(inp)
        return keras.Model(inp, [L.TimeDistributed(L.Dense(2))(y), h, c])

    def decoder():
        x, h0, c0 = keras.Input((None, 5), name="dec_in"), keras.Input((4,), name="h"), keras.Input((4,), name="c")
        y, h, c = L.LSTM(4, return_sequences=True, return_state=True)(x, initial_state=[h0, c0])
        return keras.Model([x, h0, c0], [L.Dense(6, activation="softmax")(y), h, c])

    return [
        Case("dense_activations", ("Dense", "Activation", "ReLU", "LeakyReLU", "ELU", "Softmax"), dense_family),
        Case("identities", ("Dropout", "SpatialDropout1D", "GaussianNoise", "GaussianDropout", "AlphaDropout",
                            "ActivityRegularization", "Identity"), identities),
        Case("embedding_tokens", ("Embedding",), embedding),
        Case("merges", ("Add", "Subtract", "Multiply", "Maximum", "Minimum", "Average", "Concatenate"), merges),
        Case("two_inputs_shared_layer", ("TimeDistributed", "Dense", "Concatenate"), two_inputs_shared),
        Case("encoder_returns_states", ("LSTM",), encoder_states),
        Case("decoder_takes_states", ("LSTM",), decoder, FULL),
    ]


def _shape_cases():
    import keras
    from keras import layers as L

    def reshape_permute():
        inp = keras.Input((None, 6))
        y = L.Reshape((-1, 2, 3))(inp)
        y = L.Permute((1, 3, 2))(y)
        y = L.TimeDistributed(L.Flatten())(y)
        return keras.Model(inp, L.GRU(4)(y))

    def repeat_vector():  # the addition-seq2seq shape: encode, repeat, decode
        inp = keras.Input((None, 5))
        y = L.RepeatVector(4)(L.LSTM(6)(inp))
        return keras.Model(inp, L.TimeDistributed(L.Dense(3, activation="softmax"))(L.LSTM(5, return_sequences=True)(y)))

    def pooling():
        inp = keras.Input((None, 5))
        y = L.GRU(6, return_sequences=True)(inp)
        return keras.Model(inp, L.Add()([L.GlobalAveragePooling1D()(y), L.GlobalMaxPooling1D()(y)]))

    def flatten_fixed():
        inp = keras.Input((6, 5))
        return keras.Model(inp, L.Dense(2)(L.Flatten()(L.LSTM(3, return_sequences=True)(inp))))

    def td_conv():  # a frame CNN before the LSTM (seed 000/002): TimeDistributed of conv handlers on frames
        inp = keras.Input((None, 8, 8, 1))
        y = L.TimeDistributed(L.Conv2D(3, 3, activation="relu"))(inp)
        y = L.TimeDistributed(L.MaxPooling2D())(y)
        y = L.TimeDistributed(L.Flatten())(y)
        return keras.Model(inp, L.LSTM(4)(y))

    return [
        Case("reshape_permute_time_local", ("Reshape", "Permute", "TimeDistributed", "Flatten"), reshape_permute),
        Case("repeat_vector_seq2seq", ("RepeatVector",), repeat_vector, ALL),
        Case("global_pooling", ("GlobalAveragePooling1D", "GlobalMaxPooling1D"), pooling),
        Case("flatten_over_time", ("Flatten",), flatten_fixed, FULL, fixed_time=True),
        Case("time_distributed_cnn", ("TimeDistributed",), td_conv),
    ]


def all_cases() -> list[Case]:
    cases = _rnn_cases() + _core_cases() + _shape_cases() + _mask_cases() + _rollout_cases()
    for module in MODULES:
        try:
            cases += importlib.import_module(module).CASES
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
    names = [c.name for c in cases]
    assert len(names) == len(set(names)), "case names must be unique"
    return cases


def _rollout_cases():
    import keras
    from keras import layers as L
    from keras import ops

    def cells_rollout():  # the TF time-series tutorial's FeedBack: a warm-up RNN, then its cells on their output
        inp = keras.Input((None, 3))
        lstm, gru, simple = L.LSTMCell(4), L.GRUCell(4), L.SimpleRNNCell(4)
        x, h, c = L.RNN(lstm, return_state=True)(inp)
        head = L.Dense(3)
        preds = [head(x)]
        x, (h, c) = lstm(preds[-1], states=[h, c])
        x, (g,) = gru(head(x), states=[h])
        x, _ = simple(x, [g])
        preds.append(head(x))
        return keras.Model(inp, ops.stack(preds, axis=1))

    return [Case("cells_rollout", ("LSTMCell", "GRUCell", "SimpleRNNCell", "RNN"), cells_rollout)]


def _mask_cases():
    import keras
    from keras import layers as L

    def text_classifier():  # IMDB-style: Embedding(mask_zero) + Bidirectional LSTM
        inp = keras.Input((None,), dtype="int32")
        y = L.Embedding(40, 6, mask_zero=True)(inp)
        y = L.Bidirectional(L.LSTM(5, return_sequences=True))(y)
        return keras.Model(inp, L.Dense(1, activation="sigmoid")(L.GRU(4)(y)))

    def masked_sensor():  # Masking over padded float frames, per-step output
        inp = keras.Input((None, 3))
        y = L.Masking(mask_value=0.0)(inp)
        y = L.LSTM(5, return_sequences=True)(y)
        return keras.Model(inp, L.TimeDistributed(L.Dense(2))(L.SimpleRNN(4, return_sequences=True)(y)))

    return [
        Case("masked_tokens_bidirectional", ("Embedding", "Bidirectional"), text_classifier, FULL),
        Case("masking_per_step", ("Masking", "LSTM", "SimpleRNN"), masked_sensor, ALL),
    ]
