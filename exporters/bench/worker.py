"""Run the benchmark's timing in TensorFlow worker processes (one per thread count).

See :mod:`exporters.bench.keras_engines` for what a worker measures. This side writes the
job, forwards the worker's ``[bench`` progress lines, and reads the result
back. A worker that fails on a typed error (e.g. a Keras model that does not
match the ONNX one) re-raises it here; one that crashes leaves the baselines
out with the reason.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections import deque
from pathlib import Path

import numpy as np

from .. import errors

PACKAGE_ROOT = Path(__file__).resolve().parents[1]


def _env() -> dict:
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PACKAGE_ROOT), env.get("PYTHONPATH")]))
    return env


def _run_worker(job: dict, work: Path, progress) -> dict:
    job_path = work / f"job-{job['threads_label']}.json"
    job_path.write_text(json.dumps(job))
    tail = deque(maxlen=20)
    proc = subprocess.Popen([sys.executable, "-m", "exporters.bench.keras_engines", str(job_path)], env=_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    for line in proc.stderr:
        line = line.rstrip()
        if line.startswith("[bench"):
            progress(line[line.index("]") + 1:].strip())
        elif line:
            tail.append(line)
    code = proc.wait()
    result_path = Path(job["result"])
    if not result_path.is_file():
        return {"error": {"type": "crash", "message": f"the TF worker exited with code {code}: "
                                                      f"{tail[-1] if tail else 'no output'}"}}
    return json.loads(result_path.read_text())


def run_workers(keras_path, x: np.ndarray, plans: dict, *, onnx_input: list, onnx_output_last,
                litert: bool = True, progress=None) -> dict:
    """One worker per thread setting (``plans``: label -> plan), each timing its plan with the
    TensorFlow and LiteRT baselines; the Keras and LiteRT outputs on x come from the first.

    Returns:
        {"timed": {label: run_plan result}, "meta": {label: [baseline meta]}, "keras_outputs": array | None,
         "litert_outputs": array | None, "notes": [str], "failed": reason | None}

    Raises:
        the worker's typed error (InputShapeError, ModelFormatError, ...) when it refused the model.
    """
    say = progress or (lambda _m: None)
    out = {"timed": {}, "meta": {}, "keras_outputs": None, "litert_outputs": None, "notes": [], "failed": None}
    with tempfile.TemporaryDirectory(prefix="rnnx-bench-") as tmp:
        work = Path(tmp)
        np.savez(work / "x.npz", x=x)
        (work / "litert").mkdir()
        for k, (label, plan) in enumerate(plans.items()):
            job = {"keras": str(keras_path), "data": str(work / "x.npz"), "threads": plan["threads"],
                   "threads_label": label, "plan": plan, "onnx_input": list(onnx_input),
                   "onnx_output_last": onnx_output_last, "litert": litert, "litert_cache": str(work / "litert"),
                   "outputs": str(work / "outputs.npz") if k == 0 else None,
                   "result": str(work / f"result-{label}.json")}
            say(f"TensorFlow worker, threads {label}")
            result = _run_worker(job, work, say)
            if "error" in result:
                err = result["error"]
                cls = getattr(errors, err["type"], None)
                if isinstance(cls, type) and issubclass(cls, errors.RnnxError):
                    raise cls(err["message"])
                out["failed"] = err["message"]
                say(f"TensorFlow worker failed: {err['message']}")
                break
            out["timed"][label] = result["timed"]
            out["meta"][label] = result["meta"]
            out["notes"] += [n for n in result["notes"] if n not in out["notes"]]
            if k == 0 and (work / "outputs.npz").is_file():
                with np.load(work / "outputs.npz") as npz:
                    out["keras_outputs"] = npz["keras"] if "keras" in npz.files else None
                    out["litert_outputs"] = npz["litert"] if "litert" in npz.files else None
    return out
