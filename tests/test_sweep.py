"""Sweeps with DVC experiments (`dvc exp run --queue` + `dvc queue start -j 2`), and the machine lock
that keeps timing stages from running beside other work (pipeline/lock.py).

The sweep runs up to ``export@lstm`` by default (train + export: accuracy, parity
and size per experiment, ~1 min). ``RNNX_SWEEP_TARGET=benchmark@lstm`` runs the
whole chain with latency too, and then requires each benchmark stage to have
held the exclusive lock without overlapping any other stage:

    RNNX_SWEEP_TARGET=benchmark@lstm .venv/bin/python -m pytest -q -s tests/test_sweep.py -k queue
"""

import copy
import csv
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import yaml

from test_pipeline_dvc import ROOT, _dvc, copy_project

TARGET = os.environ.get("RNNX_SWEEP_TARGET", "export@lstm")
KEEP = r"Experiment|State|train.lstm.units|test_accuracy|^full.max_abs_diff|^full.file_bytes|" \
       r"^full.fp32.cpu.(accuracy|max_abs_diff|p50_ms|size_bytes)$"


def _git(cwd, *args):
    run = subprocess.run(["git", "-c", "user.name=rnnx", "-c", "user.email=rnnx@localhost", *args],
                         cwd=cwd, capture_output=True, text=True)
    assert run.returncode == 0, f"git {' '.join(args)}: {run.stderr}"


def _tiny_project(tmp_path, tiny_params) -> Path:
    """A git + DVC copy of the project with a tiny lstm configuration (as test_pipeline_dvc does)."""
    repo = tmp_path / "repo"
    repo.mkdir()
    copy_project(repo)
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params.update({k: v for k, v in copy.deepcopy(tiny_params).items() if k != "export"})
    params["data"].update({"val_size": 64, "train_limit": 320, "test_limit": 200})
    params["train"]["lstm"] = {"units": 8, "epochs": 1, "batch_size": 32}
    params["export"]["samples"] = 64
    params["quantize"].update({"calibration_samples": 32, "eval_samples": 64, "max_drop": 100.0,
                               "allow_larger": True})        # int8 of an LSTM(4) is not smaller
    params["benchmark"].update({"reps": 5, "batches": [1, 8], "threads": ["1"], "litert": False, "samples": 64,
                                "providers": ["cpu"],
                                "rounds": 3, "sweep": [], "streams": [1], "per_model": {}})
    (repo / "params.yaml").write_text(yaml.safe_dump(params))
    (repo / ".gitignore").write_text("__pycache__/\n")
    _git(repo, "init", "-q")
    _dvc(repo, "init", "-q")
    _dvc(repo, "config", "core.analytics", "false")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "tiny rnnx project")
    return repo


def _overlap(a, b) -> bool:
    return a["acquired"] < b["released"] and b["acquired"] < a["released"]


def test_a_queue_of_two_experiments_runs_side_by_side_and_dvc_exp_show_lists_them(tmp_path, tiny_params, monkeypatch):
    repo = _tiny_project(tmp_path, tiny_params)
    log = tmp_path / "lock.log"
    monkeypatch.setenv("RNNX_LOCK_DIR", str(tmp_path))          # this test's own lock: nothing else waits on it
    monkeypatch.setenv("RNNX_LOCK_LOG", str(log))
    for units in (4, 12):
        _dvc(repo, "exp", "run", "--queue", "-S", f"train.lstm.units={units}", "-n", f"units{units}", TARGET)
    t0 = time.time()
    try:
        _dvc(repo, "queue", "start", "-j", "2")
        while "Queued" in (status := _dvc(repo, "queue", "status").stdout) or "Running" in status:
            assert time.time() - t0 < 600, f"the queue did not finish in 10 min:\n{status}"
            time.sleep(2)
    finally:
        _dvc(repo, "queue", "stop", "--kill", check=False)
    assert status.count("Success") == 2, status + _dvc(repo, "queue", "logs", "units4", check=False).stdout[-3000:]

    table = _dvc(repo, "exp", "show", "--csv", "--drop", ".*", "--keep", KEEP).stdout
    rows = {r["Experiment"]: r for r in csv.DictReader(io.StringIO(table)) if r["State"] == "Success"}
    assert set(rows) == {"units4", "units12"}, table
    for units in (4, 12):
        row = rows[f"units{units}"]
        assert row["train.lstm.units"] == str(units)
        assert 0.0 <= float(row["test_accuracy"]) <= 1.0          # accuracy
        assert float(row["full.max_abs_diff"]) < 1e-4             # parity
    assert int(rows["units12"]["full.file_bytes"]) > int(rows["units4"]["full.file_bytes"])   # size
    if TARGET.startswith("benchmark"):
        print("\n" + _dvc(repo, "exp", "show", "--md", "--drop", ".*", "--keep", KEEP).stdout)
        for row in rows.values():
            assert float(row["full.fp32.cpu.p50_ms"]) > 0           # latency

    entries = [json.loads(line) for line in log.read_text().splitlines()]
    trains = [e for e in entries if e["label"] == "train lstm"]
    assert len(trains) == 2 and all(e["mode"] == "shared" for e in trains), entries
    timing = [e for e in entries if e["mode"] == "exclusive"]
    if TARGET.startswith("benchmark"):
        assert len(timing) == 2, f"each benchmark stage must hold pipeline.lock.timing_lock: {entries}"
    for t in timing:                                               # a timing stage ran alone
        assert not any(_overlap(t, e) for e in entries if e is not t), entries


HOLD = """
import sys, time
from pipeline import lock
mode, seconds = sys.argv[1], float(sys.argv[2])
with lock.hold(mode, label=sys.argv[3]):
    print("held", flush=True)
    time.sleep(seconds)
"""


def _holder(mode, seconds, label):
    return subprocess.Popen([sys.executable, "-c", HOLD, mode, str(seconds), label], cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_the_timing_lock_runs_alone_and_shared_holders_run_together(tmp_path, monkeypatch):
    monkeypatch.setenv("RNNX_LOCK_DIR", str(tmp_path))
    log = tmp_path / "lock.log"
    monkeypatch.setenv("RNNX_LOCK_LOG", str(log))
    first = _holder("exclusive", 1.5, "bench A")
    assert first.stdout.readline() == "held\n"                    # A holds the lock now
    others = [_holder("shared", 1.0, "train B"), _holder("shared", 1.0, "train C"), _holder("exclusive", 0.3, "bench D")]
    procs = [first, *others]
    try:
        errs = [p.communicate(timeout=30)[1] for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert [p.returncode for p in procs] == [0, 0, 0, 0], errs
    assert "waiting for" in errs[1]                                # B was told why it waits
    got = {e["label"]: e for e in map(json.loads, log.read_text().splitlines())}
    a, b, c, d = got["bench A"], got["train B"], got["train C"], got["bench D"]
    for other in (b, c, d):
        assert other["acquired"] >= a["released"]                  # nobody ran during A's measurements
    assert not _overlap(d, b) and not _overlap(d, c)               # nor during D's


def test_a_killed_holder_leaves_the_machine_unlocked(tmp_path, monkeypatch):
    monkeypatch.setenv("RNNX_LOCK_DIR", str(tmp_path))
    holder = _holder("exclusive", 60, "killed")
    assert holder.stdout.readline() == "held\n"
    holder.kill()
    holder.wait(timeout=10)
    from pipeline import lock

    t0 = time.time()
    with lock.timing_lock("after"):
        pass
    assert time.time() - t0 < 5
