"""Training: each model learns something on small slices; bad parameters fail cleanly."""

import subprocess
import sys

import pytest
import yaml

from pipeline import train


@pytest.mark.parametrize("name, chance", [("lstm", 0.1), ("gru", 0.1), ("cnn_lstm", 0.025)])
def test_short_training_beats_chance(name, chance, tiny_params, fashion):
    model, metrics, history = train.train_classifier(name, tiny_params, fashion)
    assert metrics["n_test"] == 400
    assert metrics["test_accuracy"] > 3 * chance, metrics
    assert len(history) == tiny_params["train"][name]["epochs"]
    assert {"epoch", "loss", "accuracy", "val_loss", "val_accuracy"} <= set(history[0])
    if name == "cnn_lstm":
        assert 0.0 <= metrics["shuffled_frames_accuracy"] <= 1.0


def test_training_is_deterministic(tiny_params, fashion):
    tiny_params["train"]["lstm"]["epochs"] = 1
    a = train.train_classifier("lstm", tiny_params, fashion)[1]["test_accuracy"]
    b = train.train_classifier("lstm", tiny_params, fashion)[1]["test_accuracy"]
    assert abs(a - b) < 0.005


def test_char_gru_regenerates_its_sentence(tiny_params):
    deploy, metrics, history = train.train_char_gru(tiny_params)
    assert metrics["exact"], metrics
    assert metrics["regenerated"] == "*hello world."
    assert deploy.get_layer("gru_0").stateful


def test_bad_params_value_fails_cleanly(tmp_path, tiny_params):
    tiny_params["train"]["lstm"]["units"] = -3
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(tiny_params))
    run = subprocess.run([sys.executable, "-m", "pipeline.train", "lstm", "--models", str(tmp_path / "models")],
                         cwd=tmp_path, capture_output=True, text=True)
    assert run.returncode == 1
    assert run.stderr.strip().splitlines() == [
        "rnnx: ConfigError: params.yaml: train.lstm.units must be an integer >= 1, got -3"]   # before any work
    assert "Traceback" not in run.stderr
    assert not (tmp_path / "models").exists() or not list((tmp_path / "models").iterdir())


def test_unknown_model_name_fails_cleanly(tmp_path, tiny_params):
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(tiny_params))
    run = subprocess.run([sys.executable, "-m", "pipeline.train", "transformer"], cwd=tmp_path,
                         capture_output=True, text=True)
    assert run.returncode == 1 and "unknown model 'transformer'" in run.stderr
