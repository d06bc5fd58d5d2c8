"""Layer-matrix cases of the convolution front-ends and normalization handlers
(exporters/graph/handlers/conv.py, norm.py). Not a test module: layer_cases.py
collects `CASES` from here.

The matrix randomizes every weight (moving variances too), so the
BatchNormalization layers here take epsilon=3 to keep variance + epsilon > 0.
"""

from __future__ import annotations

from layer_cases import ALL, FULL, Case


def _model(layers, shape, name="m"):
    import keras

    inp = keras.Input(shape)
    y = inp
    for layer in layers:
        y = layer(y)
    return keras.Model(inp, y, name=name)


def causal_conv1d():
    """A dilated causal stack (keyword-spotting style), groups and a kernel-1 conv: streams with caches."""
    from keras import layers as L

    return _model([L.Conv1D(6, 3, padding="causal", dilation_rate=2, activation="relu"),
                   L.Conv1D(4, 2, padding="causal", groups=2),
                   L.Conv1D(4, 1, activation="tanh", use_bias=False),
                   L.GRU(5, return_sequences=True)], (None, 5))


def same_strided_conv1d():
    from keras import layers as L

    return _model([L.Conv1D(4, 3, padding="same"), L.Conv1D(6, 3, strides=2, padding="same", activation="relu"),
                   L.Conv1D(4, 2, strides=2), L.GRU(5)], (None, 5))


def padded_depthwise_separable_1d():
    """Depthwise/separable convolutions have no causal padding: ZeroPadding1D before them holds the cache."""
    from keras import layers as L

    return _model([L.ZeroPadding1D((2, 0)), L.DepthwiseConv1D(3, depth_multiplier=2, activation="relu"),
                   L.ZeroPadding1D((4, 0)), L.SeparableConv1D(4, 3, dilation_rate=2, depth_multiplier=2),
                   L.ZeroPadding1D((1, 0)), L.MaxPooling1D(2, strides=1), L.AveragePooling1D(1),
                   L.GRU(5, return_sequences=True)], (None, 5))


def same_depthwise_separable_1d():
    from keras import layers as L

    return _model([L.ZeroPadding1D((1, 1)), L.DepthwiseConv1D(3, padding="same"),
                   L.SeparableConv1D(4, 2, strides=2, padding="same"),
                   L.MaxPooling1D(2), L.AveragePooling1D(2, padding="same"), L.LSTM(4)], (None, 5))


def conv2d_time_freq():
    """(batch, time, freq, 1) front-end: ZeroPadding2D on the past of time + valid Conv2D, frequency-only
    windows, batch norm, then a GRU over time."""
    from keras import layers as L

    return _model([L.ZeroPadding2D(((2, 0), (1, 1))), L.Conv2D(3, 3, activation="relu"),
                   L.ZeroPadding2D(((2, 0), (0, 0))), L.DepthwiseConv2D((2, 1), dilation_rate=(2, 1)),
                   L.SeparableConv2D(4, (1, 3), padding="same"),     # TF on AVX2 CPUs: no unequal strides
                   L.BatchNormalization(epsilon=3.0), L.MaxPooling2D((1, 2)),
                   L.AveragePooling2D((1, 2), padding="same"),
                   L.Reshape((-1, 8)), L.GRU(5, return_sequences=True)], (None, 6, 1))


def conv2d_over_time():
    """Windows over time without causal padding, strides on time, a global pooling over time: full only."""
    import keras
    from keras import layers as L

    inp = keras.Input((None, 6, 1))
    y = L.Conv2D(3, 3, padding="same", activation="relu")(inp)
    y = L.Conv2D(4, (2, 2), strides=(2, 1))(y)
    y = L.MaxPooling2D(2)(y)
    pooled = L.GlobalMaxPooling2D()(L.AveragePooling2D((2, 1), padding="same")(y))
    h = L.GRU(4)(L.Reshape((-1, 8))(y))
    return keras.Model(inp, L.Concatenate()([h, pooled, L.GlobalAveragePooling2D()(y)]))


def time_distributed_cnn():
    """Seed 000/002's frame CNN, every layer native: TimeDistributed conv, pooling, norm, global pooling."""
    import keras
    from keras import layers as L

    td = L.TimeDistributed
    inp = keras.Input((None, 6, 6, 1))
    y = td(L.Conv2D(3, 3, padding="same", activation="relu"))(inp)
    y = td(L.ZeroPadding2D(((1, 0), (0, 1))))(y)
    y = td(L.BatchNormalization(epsilon=3.0))(y)
    y = td(L.MaxPooling2D(2))(y)
    y = td(L.SeparableConv2D(4, 2, padding="same"))(y)
    y = td(L.LayerNormalization(axis=[1, 2]))(y)
    y = L.Add()([td(L.GlobalAveragePooling2D())(y), td(L.GlobalMaxPooling2D())(y)])
    return keras.Model(inp, L.LSTM(4, return_sequences=True)(y))


def layer_norms():
    """Trailing axes (one ONNX op), a middle axis and no gamma/beta (Keras' formula); batch norm of the
    frequency axis."""
    from keras import layers as L

    return _model([L.Conv2D(3, (1, 3), padding="same"), L.BatchNormalization(axis=2, epsilon=3.0),
                   L.LayerNormalization(axis=[2, 3]),
                   L.LayerNormalization(axis=2, center=False), L.LayerNormalization(scale=False, epsilon=0.1),
                   L.Reshape((-1, 18)), L.GRU(5, return_sequences=True)], (None, 6, 1))


def norm_over_time():
    """Normalizing across time needs the whole (fixed-length) sequence: full only, at its length."""
    from keras import layers as L

    return _model([L.LayerNormalization(axis=[1, 2]), L.BatchNormalization(axis=1, epsilon=3.0), L.LSTM(4)], (6, 5))


def valid_windows_look_back():
    """Valid windows on time drop their first frames: outputs arrive (kernel-1)*dilation frames late."""
    from keras import layers as L

    return _model([L.Conv1D(4, 3, activation="relu"), L.BatchNormalization(epsilon=3.0),
                   L.DepthwiseConv1D(2, dilation_rate=2), L.GRU(5, return_sequences=True)], (None, 5))


def same_windows_look_ahead():
    """'same' windows on time need future frames: a fixed latency, flushed at the end."""
    from keras import layers as L

    return _model([L.Conv1D(4, 5, padding="same"), L.SeparableConv1D(3, 3, padding="same"),
                   L.MaxPooling1D(3, strides=1, padding="same"), L.LSTM(4, return_sequences=True)], (None, 5))


def strided_windows_decimate():
    """Strides and poolings on time give one frame per stride input frames; 'same' with kernel = stride
    pads only the end, so it streams."""
    from keras import layers as L

    return _model([L.Conv1D(4, 4, strides=2, activation="relu"), L.AveragePooling1D(2, padding="same"),
                   L.SeparableConv1D(3, 2, strides=2, padding="same"), L.GRU(5, return_sequences=True)], (None, 5))


def conv2d_valid_strided_time_freq():
    """kws_streaming's crnn shape: valid and strided Conv2D over (time, freq), then a last-step GRU."""
    from keras import layers as L

    return _model([L.Conv2D(3, (3, 3), strides=(2, 1), activation="relu"), L.MaxPooling2D((2, 2), padding="same"),
                   L.Reshape((-1, 6)), L.GRU(4)], (None, 6, 1))


def conv_lstm1d():
    """Activity-recognition ConvLSTM1D over (time, samples, channels): same + dilated, then strided valid."""
    from keras import layers as L

    return _model([L.ConvLSTM1D(3, 3, padding="same", dilation_rate=2, activation="relu", return_sequences=True),
                   L.ConvLSTM1D(2, 2, strides=2, recurrent_activation="hard_sigmoid"), L.Flatten(), L.Dense(3)],
                  (None, 7, 2))


def conv_lstm2d():
    """keras-io's next-frame shape: ConvLSTM2D stack with batch norm, per-step output."""
    from keras import layers as L

    return _model([L.ConvLSTM2D(3, (3, 3), padding="same", return_sequences=True), L.BatchNormalization(epsilon=3.0),
                   L.ConvLSTM2D(2, (2, 3), strides=(1, 2), use_bias=False, return_sequences=True),
                   L.Reshape((-1, 16)), L.Dense(3)], (None, 5, 6, 2))


def conv_lstm3d():
    from keras import layers as L

    return _model([L.ConvLSTM3D(2, 2, padding="same", return_sequences=True)], (None, 3, 3, 3, 1))


def conv_lstm_go_backwards():
    from keras import layers as L

    return _model([L.ConvLSTM1D(2, 3, go_backwards=True, return_sequences=True)], (None, 5, 1))


def conv3d_windows_around_conv_lstm():
    """Conv3D 'same' over (time, rows, cols) looks ahead, a pooling on time decimates, and the ConvLSTM2D
    between them skips the empty slots of the stream clock."""
    from keras import layers as L

    return _model([L.Conv3D(2, 3, padding="same", activation="relu"), L.AveragePooling3D((2, 1, 1)),
                   L.ConvLSTM2D(2, 3, padding="same", return_sequences=True), L.MaxPooling3D((1, 2, 2))],
                  (None, 4, 4, 1))


CASES = [
    Case("conv1d_valid_look_back", ("Conv1D", "BatchNormalization", "DepthwiseConv1D"), valid_windows_look_back, ALL),
    Case("conv1d_same_look_ahead", ("Conv1D", "SeparableConv1D", "MaxPooling1D"), same_windows_look_ahead, ALL),
    Case("conv1d_strided_decimate", ("Conv1D", "AveragePooling1D", "SeparableConv1D"), strided_windows_decimate, ALL),
    Case("conv2d_valid_strided_time_freq", ("Conv2D", "MaxPooling2D"), conv2d_valid_strided_time_freq, ALL),
    Case("conv_lstm1d", ("ConvLSTM1D",), conv_lstm1d, ALL),
    Case("conv_lstm2d", ("ConvLSTM2D", "BatchNormalization"), conv_lstm2d, ALL),
    Case("conv_lstm3d", ("ConvLSTM3D",), conv_lstm3d, ALL),
    Case("conv_lstm_go_backwards", ("ConvLSTM1D",), conv_lstm_go_backwards, FULL),
    Case("conv3d_windows_around_conv_lstm", ("Conv3D", "AveragePooling3D", "ConvLSTM2D", "MaxPooling3D"),
         conv3d_windows_around_conv_lstm, ALL),
    Case("conv1d_causal_dilated_groups", ("Conv1D",), causal_conv1d, ALL),
    Case("conv1d_same_strided", ("Conv1D",), same_strided_conv1d, FULL),
    Case("padded_depthwise_separable_1d", ("ZeroPadding1D", "DepthwiseConv1D", "SeparableConv1D", "MaxPooling1D",
                                           "AveragePooling1D"), padded_depthwise_separable_1d, ALL),
    Case("depthwise_separable_pool_1d_same", ("DepthwiseConv1D", "SeparableConv1D", "MaxPooling1D",
                                              "AveragePooling1D"), same_depthwise_separable_1d, FULL),
    Case("conv2d_time_freq_stream", ("ZeroPadding2D", "Conv2D", "DepthwiseConv2D", "SeparableConv2D",
                                     "BatchNormalization", "MaxPooling2D", "AveragePooling2D"), conv2d_time_freq, ALL),
    Case("conv2d_over_time", ("Conv2D", "MaxPooling2D", "AveragePooling2D", "GlobalMaxPooling2D",
                              "GlobalAveragePooling2D"), conv2d_over_time, FULL),
    Case("time_distributed_cnn_native", ("TimeDistributed", "Conv2D", "ZeroPadding2D", "BatchNormalization",
                                         "MaxPooling2D", "SeparableConv2D", "LayerNormalization",
                                         "GlobalAveragePooling2D", "GlobalMaxPooling2D"), time_distributed_cnn, ALL),
    Case("layer_norms", ("LayerNormalization", "BatchNormalization"), layer_norms, ALL),
    Case("norm_over_time", ("LayerNormalization", "BatchNormalization"), norm_over_time, FULL, fixed_time=True),
]
