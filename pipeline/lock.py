"""One lock per machine so that timing stages never run beside other rnnx work.

Experiments run side by side (``dvc queue start -j N``), each in its own copy
of the repository, so the lock lives outside the repository: a file in
``$RNNX_LOCK_DIR`` (default: the system's temporary folder). Two modes of the
one ``flock``:

- ``timing_lock`` (exclusive): the benchmark stage holds it while it measures,
  so no other timing stage, and no training, export or quantization of another
  experiment, runs on this machine meanwhile;
- ``work_lock`` (shared): the heavy stages (train, export, quantize) hold it;
  any number of them run together, but not during a timing stage.

The kernel drops a lock when its process dies, so a killed stage never leaves
the machine locked. With ``$RNNX_LOCK_LOG`` set, each holder appends one JSON
line (label, mode, pid, acquired and released times) to that file on release.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path

try:
    import fcntl
except ImportError:           # Windows: no flock; the stages run unlocked
    fcntl = None

LOCK_NAME = "rnnx-timing.lock"
DIR_ENV, LOG_ENV = "RNNX_LOCK_DIR", "RNNX_LOCK_LOG"


def lock_path() -> Path:
    return Path(os.environ.get(DIR_ENV) or tempfile.gettempdir()) / LOCK_NAME


@contextlib.contextmanager
def hold(mode: str, label: str = "", path: str | Path | None = None):
    """Hold the machine's rnnx lock in ``mode`` ("exclusive" or "shared") for the ``with`` block."""
    if mode not in ("exclusive", "shared"):
        raise ValueError(f"lock mode must be 'exclusive' or 'shared', got {mode!r}")
    if fcntl is None:
        yield
        return
    path = Path(path) if path else lock_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    flag = fcntl.LOCK_EX if mode == "exclusive" else fcntl.LOCK_SH
    with open(path, "a") as fh:
        try:
            fcntl.flock(fh, flag | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"[lock] {label or 'rnnx'}: waiting for {path} ({mode}: "
                  f"{'a timing stage needs the machine to itself' if mode == 'exclusive' else 'a timing stage is measuring'})",
                  file=sys.stderr, flush=True)
            fcntl.flock(fh, flag)
        acquired = time.time()
        try:
            yield
        finally:
            released = time.time()
            _log({"label": label, "mode": mode, "pid": os.getpid(), "acquired": acquired, "released": released})
            fcntl.flock(fh, fcntl.LOCK_UN)


def timing_lock(label: str = "benchmark"):
    """Exclusive: around a stage's measurements (``with timing_lock(f"benchmark {name}"): ...``)."""
    return hold("exclusive", label)


def work_lock(label: str = "work"):
    """Shared: around a heavy stage that must not run while a timing stage measures."""
    return hold("shared", label)


def for_stage(module: str, name: str):
    """The lock a DVC stage takes: exclusive for ``pipeline.benchmark``, shared for the others."""
    stage = module.rsplit(".", 1)[-1]
    label = f"{stage} {name}"
    return timing_lock(label) if stage == "benchmark" else work_lock(label)


def _log(entry: dict) -> None:
    target = os.environ.get(LOG_ENV)
    if target:
        with open(target, "a") as fh:     # one short line, appended in one write
            fh.write(json.dumps(entry) + "\n")
