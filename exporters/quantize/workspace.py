"""A private temporary folder for one quantization, and nothing left behind.

onnxruntime's quantization tools write scratch files into the current
directory (symbolic shape inference on a graph with a `Loop` leaves
`sym_shape_infer_temp.onnx` and a `<uuid>.data` file there). `workspace()`
makes a folder of its own, runs the quantizer with that folder as the
current directory (restoring the caller's afterwards) and removes it on the
way out, on errors, Ctrl-C and SIGTERM too. A run killed outright (SIGKILL)
cannot clean up; its folder carries the process id, and the next run removes
the folders of processes that no longer exist (and all the scratch inside them).
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import signal
import tempfile
import threading
from pathlib import Path

from ..errors import OutputError

PREFIX = "rnnx-quantize-"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def sweep_stale(root: Path | None = None) -> list[Path]:
    """Remove the workspaces of processes that have ended; returns what was removed."""
    root = Path(root or tempfile.gettempdir())
    removed = []
    for path in root.glob(f"{PREFIX}*-*"):
        pid = path.name[len(PREFIX):].split("-", 1)[0]
        if path.is_dir() and pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


class _Terminated(BaseException):
    """SIGTERM turned into an exception so that `finally` blocks run."""


_FULL = (errno.ENOSPC, errno.EDQUOT)


def no_room(exc: BaseException, where: str | None = None) -> OutputError | None:
    """The OutputError of a full disk under the scratch folder, or None for any other error."""
    if not isinstance(exc, OSError) or exc.errno not in _FULL:
        return None
    return OutputError(f"no room for the quantizer's scratch files in {where or tempfile.gettempdir()} "
                       f"({exc.strerror}); free space there or point TMPDIR at a folder with room")


@contextlib.contextmanager
def workspace():
    """Yield a fresh folder (removed afterwards); see `inside` for running in it.

    A full disk under it (the quantizer writes the model several times over) is an
    `OutputError` naming the folder, not a traceback; the folder is removed all the same.
    """
    sweep_stale()
    root = tempfile.gettempdir()
    try:
        path = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-"))
    except OSError as exc:
        raise OutputError(f"cannot make the quantizer's scratch folder in {root}: {exc.strerror}") from None
    old = None
    main = threading.current_thread() is threading.main_thread()
    if main:
        def _raise(signum, frame):
            raise _Terminated(f"signal {signum}")
        old = signal.signal(signal.SIGTERM, _raise)
    try:
        yield path
    except _Terminated:
        raise SystemExit(128 + signal.SIGTERM) from None
    except OSError as exc:
        full = no_room(exc, root)
        if full is None:
            raise
        raise full from None
    finally:
        if main:
            signal.signal(signal.SIGTERM, old if old is not None else signal.SIG_DFL)
        shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def inside(path: Path):
    """Run with `path` as the current directory and the temp folder (scratch files of the
    quantizer land there: its pre-processing makes `pre.quant.*` folders with `tempfile`)."""
    old, old_tmp = os.getcwd(), tempfile.tempdir
    os.chdir(path)
    tempfile.tempdir = str(path)
    try:
        yield path
    finally:
        tempfile.tempdir = old_tmp
        os.chdir(old)
