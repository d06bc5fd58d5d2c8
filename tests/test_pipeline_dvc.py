"""The DVC pipeline end to end on a tiny configuration: every stage, metrics and plots."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
MODELS = ("lstm", "gru", "cnn_lstm", "char_gru")


def _dvc(cwd, *args, check=True):
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    run = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=cwd, capture_output=True, text=True, env=env)
    if check:
        assert run.returncode == 0, f"dvc {' '.join(args)}:\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
    return run


def copy_project(dest: Path) -> None:
    """Copy what the pipeline runs (dvc.yaml and the three packages) into `dest`."""
    for item in ("dvc.yaml", "pipeline", "exporters", "runtime"):
        src = ROOT / item
        if src.is_dir():
            shutil.copytree(src, dest / item, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(src, dest / item)


def test_dvc_repro_on_a_tiny_configuration(tmp_path, tiny_params):
    """`dvc repro` in a copy of the project with tiny params: every model through every stage."""
    copy_project(tmp_path)
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params.update({k: v for k, v in tiny_params.items() if k != "export"})
    params["train"]["cnn_lstm"]["epochs"] = 1
    params["export"]["samples"] = 64
    params["quantize"].update({"calibration_samples": 32, "eval_samples": 64, "max_drop": 100.0})
    params["benchmark"].update({"reps": 5, "batches": [1, 8], "threads": ["1"], "litert": False, "samples": 64,
                                "rounds": 3, "sweep": [], "streams": [1], "per_model": {}})
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    _dvc(tmp_path, "init", "--no-scm", "-q")
    _dvc(tmp_path, "config", "core.analytics", "false")

    run = _dvc(tmp_path, "repro")
    log = run.stdout + run.stderr
    assert "[train lstm] epoch 1/2" in log                   # progress is visible
    for name in MODELS:
        assert (tmp_path / "models" / f"{name}.keras").stat().st_size > 1000
        for variant in ("full", "stream", "unrolled", "full.fp16", "unrolled.int8-dynamic"):
            assert (tmp_path / "models" / "onnx" / name / f"{variant}.onnx").stat().st_size > 1000
    report = (tmp_path / "reports" / "report.md").read_text()
    assert all(f"\n## {name}\n" in report for name in MODELS)
    for png in ("latency", "accuracy_drop", "size"):
        assert (tmp_path / "reports" / f"{png}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    metrics = json.loads(_dvc(tmp_path, "metrics", "show", "--json").stdout)
    flat = json.dumps(metrics)
    for key in ("test_accuracy", "shuffled_frames_accuracy", '"exact": true', "max_abs_diff", "argmax_agreement",
                "size_ratio", "p50_ms"):
        assert key in flat, key
    plots = _dvc(tmp_path, "plots", "show", "--json")
    assert "val_accuracy" in plots.stdout

    again = _dvc(tmp_path, "repro")                          # nothing changed: nothing reruns
    assert "didn't change" in again.stdout or "up to date" in again.stdout

    # a rejected parameter stops the run before DVC removes any stage's outputs (metrics and
    # plots are in no cache: once removed, they are lost)
    kept = {p: p.read_bytes() for folder in ("metrics", "plots", "models", "reports")
            for p in sorted((tmp_path / folder).rglob("*")) if p.is_file()}
    params["train"]["lstm"]["epochs"] = -1
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    bad = _dvc(tmp_path, "repro", check=False)
    assert bad.returncode != 0
    assert "rnnx: ConfigError: params.yaml: train.lstm.epochs must be an integer >= 1, got -1" in bad.stderr
    assert "[train lstm]" not in bad.stdout + bad.stderr
    now = {p: p.read_bytes() for folder in ("metrics", "plots", "models", "reports")
           for p in sorted((tmp_path / folder).rglob("*")) if p.is_file()}
    assert now.keys() == kept.keys() and all(now[p] == kept[p] for p in kept)
