"""Reproducibility: training numerics are pinned, and the train stage's model file is byte-stable."""

from __future__ import annotations

import json
import re
import time
import zipfile

import numpy as np
import pytest

import numerics_pin


@pytest.fixture(scope="module")
def pinned_runs(fashion):
    params = numerics_pin.tiny_params()
    return {name: numerics_pin.run(name, fashion, params) for name in numerics_pin.MODELS}


@pytest.mark.parametrize("name", numerics_pin.MODELS)
def test_training_figures_are_the_pinned_ones(name, pinned_runs):
    """A change to the training numerics must update tests/pins/numerics.json on purpose (and rerun dvc repro)."""
    want, got = numerics_pin.load()["figures"][name], pinned_runs[name]["figures"]
    assert set(got) == set(want)
    for key in want:
        np.testing.assert_allclose(got[key], want[key], rtol=numerics_pin.RTOL, atol=0,
                                   err_msg=f"{name} {key}: training numerics changed; rerun `dvc repro` and "
                                           "`python tests/numerics_pin.py --update`")


def test_trained_weights_are_bit_identical_on_a_pinned_machine_kind(pinned_runs):
    kind = numerics_pin.machine_kind()
    hashes = numerics_pin.load()["weights_sha256"]
    if kind not in hashes:
        pytest.skip(f"no weight hashes pinned for {kind!r} (pinned: {sorted(hashes)}); "
                    "add them with `python tests/numerics_pin.py --update`")
    assert {n: r["weights_sha256"] for n, r in pinned_runs.items()} == hashes[kind]


_SAVE = """
import sys, keras
from pipeline.outputs import write_keras
keras.utils.set_random_seed(3)
model = keras.Sequential([keras.Input((5, 3)), keras.layers.GRU(4), keras.layers.Dense(2)])
write_keras(sys.argv[1], model)
"""


def test_the_train_stage_writes_the_same_keras_bytes_for_the_same_model(tmp_path):
    """Two processes (other object addresses), two moments (other save times): the same bytes."""
    import os
    import subprocess
    import sys

    import keras

    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    env.pop("SOURCE_DATE_EPOCH", None)
    for i, name in enumerate(("a.keras", "b.keras", "c.keras")):
        if i:
            time.sleep(2.1)    # Keras stamps seconds, zip entries 2-second steps
        if name == "c.keras":
            env["SOURCE_DATE_EPOCH"] = "1764547200"    # 2025-12-01, the reproducible-builds way
        subprocess.run([sys.executable, "-c", _SAVE, str(tmp_path / name)], check=True, env=env, timeout=300)
    assert (tmp_path / "a.keras").read_bytes() == (tmp_path / "b.keras").read_bytes()
    with zipfile.ZipFile(tmp_path / "a.keras") as z:
        assert {i.date_time for i in z.infolist()} == {(1980, 1, 1, 0, 0, 0)}
        assert json.loads(z.read("metadata.json"))["date_saved"] == "1980-01-01@00:00:00"
        ids = [v for v in re.findall(r'"shared_object_id": (\d+)', z.read("config.json").decode())]
        assert ids and set(ids) <= {str(k) for k in range(1, 50)}, ids        # numbered, not addresses
    with zipfile.ZipFile(tmp_path / "c.keras") as z:
        assert json.loads(z.read("metadata.json"))["date_saved"] == "2025-12-01@00:00:00"
    keras.utils.set_random_seed(3)
    model = keras.Sequential([keras.Input((5, 3)), keras.layers.GRU(4), keras.layers.Dense(2)])
    again = keras.saving.load_model(tmp_path / "a.keras")
    x = np.random.default_rng(0).random((2, 5, 3), dtype=np.float32)
    np.testing.assert_array_equal(np.asarray(again(x)), np.asarray(model(x)))


def _lock(outs: dict) -> dict:
    stages = {}
    for path, (stage, md5) in outs.items():
        stages.setdefault(stage, {"cmd": "x", "outs": []})["outs"].append({"path": path, "md5": md5})
    return {"schema": "2.0", "stages": stages}


def test_check_repro_passes_timings_and_fails_on_any_other_figure_or_file(tmp_path):
    import subprocess
    import sys

    import yaml

    def commit(files: dict, lock: dict) -> None:
        for path, text in files.items():
            (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / path).write_text(text)
        (tmp_path / "dvc.lock").write_text(yaml.safe_dump(lock))

    train = {"test_accuracy": 0.8922, "train_seconds": 267.9}
    bench = {"full.fp32.cpu": {"accuracy": 0.89, "p50_ms": 0.07, "speedup_litert": 1.2, "T8": 0.01}}
    files = {"metrics/train/lstm.json": json.dumps(train), "metrics/benchmark/lstm.json": json.dumps(bench),
             "reports/benchmark/lstm.json": "{}", "models/onnx/lstm/full.onnx": "onnx"}
    outs = {"metrics/train/lstm.json": ("train@lstm", "a"), "models/onnx/lstm/full.onnx": ("export@lstm", "b"),
            "metrics/benchmark/lstm.json": ("benchmark@lstm", "c"), "reports/benchmark/lstm.json": ("benchmark@lstm", "d")}
    commit(files, _lock(outs))
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(tmp_path)]
    subprocess.run(git[:-2] + ["init", "-q", str(tmp_path)], check=True)
    subprocess.run(git + ["add", "-A"], check=True)
    subprocess.run(git + ["commit", "-qm", "results"], check=True)

    def check() -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "pipeline.repro"], cwd=tmp_path, capture_output=True,
                              text=True)

    # a rerun whose only changes are timings reproduces
    commit({"metrics/train/lstm.json": json.dumps({**train, "train_seconds": 301.2}),
            "metrics/benchmark/lstm.json": json.dumps({"full.fp32.cpu": {**bench["full.fp32.cpu"], "p50_ms": 0.09,
                                                                         "speedup_litert": 1.1, "T8": 0.02}}),
            "reports/benchmark/lstm.json": '{"p50": 1}'},
           _lock({**outs, "metrics/train/lstm.json": ("train@lstm", "a2"),
                  "metrics/benchmark/lstm.json": ("benchmark@lstm", "c2"),
                  "reports/benchmark/lstm.json": ("benchmark@lstm", "d2")}))
    run = check()
    assert run.returncode == 0, run.stdout + run.stderr
    assert "the run reproduces" in run.stdout and "3 differ in timings only" in run.stdout
    # an accuracy that moved, a benchmark accuracy, and a model file that differs each fail it
    commit({"metrics/train/lstm.json": json.dumps({**train, "test_accuracy": 0.8909}),
            "metrics/benchmark/lstm.json": json.dumps({"full.fp32.cpu": {**bench["full.fp32.cpu"], "accuracy": 0.88}})},
           _lock({**outs, "metrics/train/lstm.json": ("train@lstm", "a3"),
                  "metrics/benchmark/lstm.json": ("benchmark@lstm", "c3"),
                  "models/onnx/lstm/full.onnx": ("export@lstm", "b3")}))
    run = check()
    assert run.returncode == 1, run.stdout
    lines = [line for line in run.stdout.splitlines() if line.startswith("DIFFERS")]
    assert len(lines) == 3, run.stdout
    assert "test_accuracy 0.8922 -> 0.8909" in run.stdout and "full.fp32.cpu.accuracy 0.89 -> 0.88" in run.stdout
    assert "models/onnx/lstm/full.onnx: differs" in run.stdout
