"""The `quantize` DVC stage module on a real export of a model trained on Fashion-MNIST."""

import json
import shutil

import pytest

pytest.importorskip("tf2onnx")

from quantize_cases import case  # noqa: E402

from pipeline import quantize as stage  # noqa: E402

QUANTIZE = {"modes": ["int8-dynamic", "int8-static", "fp16"], "variants": ["full", "stream", "unrolled"],
            "max_drop": 3.0, "per_channel": False, "calibration_method": "minmax",
            "calibration_samples": 64, "eval_samples": 300}


def _models_dir(tmp_path, fashion, name):
    c = case(name, fashion)
    onnx_dir = tmp_path / "models" / "onnx" / name
    onnx_dir.mkdir(parents=True)
    for variant, path in c.paths.items():
        shutil.copy(path, onnx_dir / path.name)
    return tmp_path / "models", onnx_dir


def test_stage_writes_applicable_pairs_and_metrics(tiny_params, fashion, tmp_path):
    models_dir, onnx_dir = _models_dir(tmp_path, fashion, "gru")
    params = {**tiny_params, "quantize": QUANTIZE}
    metrics, failures = stage.run("gru", params, models_dir, tmp_path / "metrics")
    assert failures == []
    written = sorted(p.name for p in onnx_dir.glob("*.*.onnx"))
    assert written == ["full.fp16.onnx", "stream.fp16.onnx", "stream.int8-dynamic.onnx",
                       "stream.int8-static.onnx", "unrolled.fp16.onnx", "unrolled.int8-dynamic.onnx",
                       "unrolled.int8-static.onnx"]
    saved = json.loads((tmp_path / "metrics" / "quantize" / "gru.json").read_text())
    assert saved == json.loads(json.dumps(metrics))
    assert "no quantized GRU op" in saved["int8-dynamic"]["full"]["skipped"]
    assert "leaves the GRU op in float32" in saved["int8-static"]["full"]["skipped"]
    for variant in ("stream", "unrolled"):
        dyn = saved["int8-dynamic"][variant]
        # stream: one step, one GEMM of [x, h] whose matrix holds zero blocks (see exporters/quantize/unroll.py)
        assert dyn["size_ratio"] <= (0.40 if variant == "stream" else 0.35), dyn
        assert dyn["drop_points"] <= 3.0 and dyn["recurrent_weights"] == "int8"
        assert dyn["precision"] in ("int8-dynamic", "mixed") and dyn["latency_ms"] > 0
        assert set(dyn["layers"].values()) <= {"int8", "fp32"}
        assert dyn["reduce_range"] is True            # 7-bit weights met the gate: no 8-bit retry
    assert saved["int8-static"]["stream"]["reduce_range"] is True and saved["fp16"]["full"]["reduce_range"] is None
    assert saved["mixed"] == "auto" and saved["reduce_range"] == "auto"
    assert saved["calibration_samples"] == 64 and saved["eval_samples"] == 300


def test_stage_main_unknown_model_is_one_line(tiny_params, tmp_path, capsys):
    import yaml

    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump({**tiny_params, "quantize": QUANTIZE}))
    assert stage.main(["nope", "--params", str(path), "--models", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["rnnx: ConfigError: unknown model 'nope'; expected one of "
                   "['lstm', 'gru', 'cnn_lstm', 'char_gru']"]


def test_stage_refuses_bad_settings(tiny_params):
    from exporters.errors import ConfigError

    with pytest.raises(ConfigError, match="quantize.modes"):
        stage.settings({**tiny_params, "quantize": {**QUANTIZE, "modes": ["int4"]}})
    with pytest.raises(ConfigError, match="quantize.reduce_range must be auto, true or false"):
        stage.settings({**tiny_params, "quantize": {**QUANTIZE, "reduce_range": "sometimes"}})
    assert stage.settings({**tiny_params, "quantize": {**QUANTIZE, "reduce_range": False}})["reduce_range"] is False
    with pytest.raises(ConfigError, match="quantize.mixed must be auto or off"):
        stage.settings({**tiny_params, "quantize": {**QUANTIZE, "mixed": "sometimes"}})
    with pytest.raises(ConfigError, match="params.yaml has no 'quantize' section"):
        stage.settings(tiny_params)


def test_per_model_settings_apply_to_their_model_and_mode_only(tiny_params):
    from exporters.errors import ConfigError

    params = {**tiny_params, "quantize": {**QUANTIZE, "per_model": {
        "char_gru": {"max_drop": 2.0, "int8-static": {"per_channel": True, "calibration_method": "percentile"}}}}}
    static = stage.settings(params, "char_gru", "int8-static")
    assert (static["per_channel"], static["method"], static["max_drop"]) == (True, "percentile", 2.0)
    dynamic = stage.settings(params, "char_gru", "int8-dynamic")
    assert (dynamic["per_channel"], dynamic["method"], dynamic["max_drop"]) == (False, "minmax", 2.0)
    other = stage.settings(params, "lstm", "int8-static")
    assert (other["per_channel"], other["method"], other["max_drop"]) == (False, "minmax", 3.0)
    with pytest.raises(ConfigError, match="quantize.per_model"):
        stage.settings({**tiny_params, "quantize": {**QUANTIZE, "per_model": {"gru": 3}}}, "gru")
