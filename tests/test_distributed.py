"""train.distribute: TF_CONFIG parsing, chief detection, and two workers on localhost against one process.

Tolerance of the comparison: the same global batch over 2 replicas gives the
same updates as 1 process up to float summation order; measured max |Δweight|
after one epoch of LSTM(8) is ~1e-6, the test allows 1e-4, and the test
accuracy may differ by at most one sample.
"""

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from exporters.errors import ConfigError
from pipeline import distribute

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 180            # seconds a training process may take before it is killed (a hung collective)


def _cfg(cluster, kind="worker", index=0):
    return json.dumps({"cluster": cluster, "task": {"type": kind, "index": index}})


def test_chief_is_worker_0_without_a_chief_job_else_the_chief():
    two = {"worker": ["a:1", "b:1"]}
    assert distribute.parse_tf_config(_cfg(two, "worker", 0)).is_chief
    assert not distribute.parse_tf_config(_cfg(two, "worker", 1)).is_chief
    with_chief = {"chief": ["c:1"], "worker": ["a:1", "b:1"]}
    assert distribute.parse_tf_config(_cfg(with_chief, "chief", 0)).is_chief
    task = distribute.parse_tf_config(_cfg(with_chief, "worker", 0))
    assert not task.is_chief and task.workers == 3


@pytest.mark.parametrize("text, says", [
    (None, "TF_CONFIG is not set"),
    ("{not json", "not valid JSON"),
    (json.dumps({"cluster": {"worker": ["a:1"]}}), "'cluster' and 'task'"),
    (_cfg({"worker": ["a:1"], "ps": ["p:1"]}), "no parameter servers"),
    (_cfg({"worker": ["a:1", "b:1"]}, "worker", 2), "index must be an integer in [0, 2)"),
    (_cfg({"worker": ["a:1"]}, "chief", 0), "task type 'chief' is not a job"),
    (_cfg({"worker": ["hostonly"]}), "list of 'host:port'"),
])
def test_unusable_tf_config_is_a_config_error(text, says):
    with pytest.raises(ConfigError) as err:
        distribute.parse_tf_config(text)
    assert says in str(err.value)


def test_setting_defaults_to_none_and_refuses_unknown_values():
    assert distribute.setting({"train": {}}) == "none"
    assert distribute.setting({"train": {"distribute": "mirrored"}}) == "mirrored"
    with pytest.raises(ConfigError, match=r"train.distribute must be one of \['none', 'mirrored', 'multi_worker'\], got 'horovod'"):
        distribute.setting({"train": {"distribute": "horovod"}})


def _params(tmp_path, tiny_params, kind):
    params = tiny_params
    params["data"].update({"val_size": 64, "train_limit": 320, "test_limit": 200})
    params["train"] = {"distribute": kind, "lstm": {"units": 8, "epochs": 1, "batch_size": 32}}
    path = tmp_path / f"params.{kind}.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def _train(params, out: Path, tf_config=None):
    """Start `python -m pipeline.train lstm` writing under ``out``; returns the Popen."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT)}
    env.pop("TF_CONFIG", None)
    if tf_config:
        env["TF_CONFIG"] = tf_config
    args = [sys.executable, "-m", "pipeline.train", "lstm", "--params", str(params)]
    for d in ("models", "metrics", "plots"):
        args += [f"--{d}", str(out / d)]
    return subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finish(procs):
    """Wait for every process (killing all of them past TIMEOUT); returns [(rc, stderr)]."""
    results = []
    try:
        for p in procs:
            _, err = p.communicate(timeout=TIMEOUT)
            results.append((p.returncode, err))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    return results


def _weights(path):
    import keras

    return keras.models.load_model(path).get_weights()


def test_two_workers_on_localhost_train_the_model_one_process_trains(tmp_path, tiny_params):
    """Two multi_worker processes (global batch 32, 16 per worker) against one process (batch 32)."""
    single = _train(_params(tmp_path, copy.deepcopy(tiny_params), "none"), tmp_path / "single")
    (single_rc, single_err), = _finish([single])
    assert single_rc == 0, single_err[-3000:]

    mw_params = _params(tmp_path, copy.deepcopy(tiny_params), "multi_worker")
    configs = distribute.local_tf_configs(2)
    workers = [_train(mw_params, tmp_path / f"worker{i}", cfg) for i, cfg in enumerate(configs)]
    (rc0, err0), (rc1, err1) = _finish(workers)
    assert rc0 == 0, err0[-3000:]
    assert rc1 == 0, err1[-3000:]                        # the non-chief exits cleanly...
    assert "not the chief" in err1
    assert not any(p.is_file() for p in (tmp_path / "worker1").rglob("*"))   # ...having written nothing

    chief = json.loads((tmp_path / "worker0" / "metrics" / "train" / "lstm.json").read_text())
    alone = json.loads((tmp_path / "single" / "metrics" / "train" / "lstm.json").read_text())
    assert (chief["distribute"], chief["replicas"]) == ("multi_worker", 2)
    assert (alone["distribute"], alone["replicas"]) == ("none", 1)
    assert abs(chief["test_accuracy"] - alone["test_accuracy"]) <= 1 / alone["n_test"] + 1e-9

    got, want = _weights(tmp_path / "worker0" / "models" / "lstm.keras"), _weights(tmp_path / "single" / "models" / "lstm.keras")
    assert [w.shape for w in got] == [w.shape for w in want]
    diff = max(float(np.abs(g - w).max()) for g, w in zip(got, want))
    moved = max(float(np.abs(w).max()) for w in want)
    assert diff < 1e-4, f"two workers' weights differ from one process's by {diff}"
    assert moved > 0.01                                  # the comparison is on trained weights


def test_bad_distribute_setting_is_one_line_and_exit_1(tmp_path, tiny_params):
    params = _params(tmp_path, copy.deepcopy(tiny_params), "none")
    text = params.read_text().replace("distribute: none", "distribute: everywhere")
    params.write_text(text)
    (rc, err), = _finish([_train(params, tmp_path / "out")])
    assert rc == 1
    last = err.strip().splitlines()[-1]          # params.yaml's schema or pipeline.distribute: one line either way
    assert last.startswith("rnnx: ConfigError: ") and "train.distribute must be one of" in last
    assert "'everywhere'" in last
    assert "Traceback" not in err


def test_multi_worker_without_tf_config_is_one_line_and_exit_1(tmp_path, tiny_params):
    (rc, err), = _finish([_train(_params(tmp_path, copy.deepcopy(tiny_params), "multi_worker"), tmp_path / "out")])
    assert rc == 1
    assert "rnnx: ConfigError: train.distribute is multi_worker but TF_CONFIG is not set" in err
    assert not (tmp_path / "out").exists()
