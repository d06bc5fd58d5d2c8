"""Training: each model learns something on small slices; the DVC stage runs end to end."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pipeline import train

ROOT = Path(__file__).resolve().parents[1]


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


def _stage_dir(tmp_path, params):
    shutil.copy(ROOT / "dvc.yaml", tmp_path / "dvc.yaml")
    shutil.copytree(ROOT / "pipeline", tmp_path / "pipeline", ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    subprocess.run([sys.executable, "-m", "dvc", "init", "--no-scm", "-q"], cwd=tmp_path, check=True)
    subprocess.run([sys.executable, "-m", "dvc", "config", "core.analytics", "false"], cwd=tmp_path, check=True)
    return tmp_path


def test_dvc_train_stage_smoke(tmp_path, tiny_params):
    """`dvc repro train` on a tiny configuration: models, metrics and plots for all four."""
    tiny_params["train"]["cnn_lstm"]["epochs"] = 1
    d = _stage_dir(tmp_path, tiny_params)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    run = subprocess.run([sys.executable, "-m", "dvc", "repro", "train"], cwd=d, capture_output=True,
                         text=True, env=env)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "epoch 1/2" in run.stdout + run.stderr                    # progress is visible
    for name in ("lstm", "gru", "cnn_lstm", "char_gru"):
        assert (d / "models" / f"{name}.keras").stat().st_size > 1000
    shown = subprocess.run([sys.executable, "-m", "dvc", "metrics", "show", "--json"], cwd=d,
                           capture_output=True, text=True, check=True)
    metrics = json.loads(shown.stdout)
    flat = json.dumps(metrics)
    assert "test_accuracy" in flat and "shuffled_frames_accuracy" in flat and '"exact": true' in flat
    plots = subprocess.run([sys.executable, "-m", "dvc", "plots", "show", "--json"], cwd=d,
                           capture_output=True, text=True)
    assert plots.returncode == 0 and "val_accuracy" in plots.stdout


def test_bad_params_value_fails_cleanly(tmp_path, tiny_params):
    tiny_params["train"]["lstm"]["units"] = -3
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(tiny_params))
    run = subprocess.run([sys.executable, "-m", "pipeline.train", "lstm", "--models", str(tmp_path / "models")],
                         cwd=tmp_path, capture_output=True, text=True)
    assert run.returncode == 1
    assert run.stderr.strip().splitlines()[-1].startswith("rnnx: ConfigError: model parameter 'units'")
    assert "Traceback" not in run.stderr
    assert not (tmp_path / "models").exists() or not list((tmp_path / "models").iterdir())


def test_unknown_model_name_fails_cleanly(tmp_path, tiny_params):
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(tiny_params))
    run = subprocess.run([sys.executable, "-m", "pipeline.train", "transformer"], cwd=tmp_path,
                         capture_output=True, text=True)
    assert run.returncode == 1 and "unknown model 'transformer'" in run.stderr
