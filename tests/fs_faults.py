"""File-system faults for the writer tests: a tiny tmpfs (full disk), a read-only mount, another user.

Each needs root (and, for mounts, the right to mount); a test that needs one
is skipped with the reason where it is not available.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
NOBODY = 65534


def _mount(*args) -> subprocess.CompletedProcess:
    return subprocess.run(["mount", *args], capture_output=True, text=True)


@contextlib.contextmanager
def tmpfs(path: Path, size: str = "200k"):
    """Mount a tmpfs of ``size`` at ``path`` (created) for the block; skip the test where we cannot."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    path.mkdir(parents=True, exist_ok=True)
    got = _mount("-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(path))
    if got.returncode != 0:
        pytest.skip(f"mount -t tmpfs is not permitted here: {got.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def remount_read_only(path: Path) -> None:
    got = _mount("-o", "remount,ro", str(path))
    if got.returncode != 0:
        pytest.skip(f"remount read-only is not permitted here: {got.stderr.strip()}")


def run_python(code: str, *, env: dict | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter from the repository root."""
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})


def as_user(fn, user: int = NOBODY) -> str:
    """``fn()``'s result (a string) computed in a forked child that runs as ``user``.

    A fork rather than a new interpreter: the virtualenv's Python may live
    where another user cannot reach it (under /root).
    """
    if os.geteuid() != 0:
        pytest.skip("switching to another user needs root")
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:   # child: never return into pytest
        status = 0
        try:
            os.close(read)
            os.setgroups([])
            os.setgid(user)
            os.setuid(user)
            out = str(fn())
        except BaseException as exc:   # noqa: BLE001  (reported to the parent)
            out, status = f"child raised {type(exc).__name__}: {exc}", 1
        os.write(write, out.encode())
        os._exit(status)
    os.close(write)
    with os.fdopen(read, "rb") as fh:
        out = fh.read().decode()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, out
    return out


def litter(folder: Path) -> list[str]:
    """Temp files or folders of rnnx's writer anywhere under ``folder``."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if ".rnnx-tmp-" in p.name)
