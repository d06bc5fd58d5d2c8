"""Export sets (exporters.atomic.write_set): the folder holds one complete set at every instant.

Writers are killed with SIGKILL at every phase of a write (a test hook in the
child), at random times, run concurrently, and on full, read-only and
mounted folders; after each, the folder must hold the old or the new set
complete, its manifest's sha256s matching, no stale member beside it, and
the next write must leave no temp litter.
"""

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from exporters import atomic
from exporters.errors import ConfigError, OutputError
from fs_faults import REPO, as_user, litter, remount_read_only, run_python, tmpfs

MANIFEST = "export.json"
OTHERS = {"full.int8-dynamic.onnx": b"int8 copy", ".gitignore": b"/full.onnx\n"}   # not part of any set

# set A: three variants; set B drops `unrolled` (it must not survive beside B's manifest)
SETS_SOURCE = '''
def make_set(tag, size=20000):
    names = ["full.onnx", "stream.onnx", "unrolled.onnx"] if tag.startswith("A") else ["full.onnx", "stream.onnx"]
    return {n: (f"{tag}:{n}:".encode() * size)[:size + i * 997] for i, n in enumerate(names)}
'''
exec(SETS_SOURCE)
ALL_VARIANTS = {"full.onnx", "stream.onnx", "unrolled.onnx"}


def write(folder, tag, **kw):
    return atomic.write_set(folder, make_set(tag, **kw), MANIFEST, {"tag": tag}, replaces=ALL_VARIANTS)  # noqa: F821


def seed_folder(folder: Path, tag="A0") -> None:
    write(folder, tag)
    for name, data in OTHERS.items():
        (folder / name).write_bytes(data)


def complete_set(folder: Path, others=OTHERS, temps_allowed=False) -> str:
    """Assert ``folder`` holds exactly one complete set (and the other files); returns its tag.

    ``others``: the entries beside the set, with their bytes (None: any content).
    """
    manifest = atomic.verify_set(folder, MANIFEST)
    tag = manifest["tag"]
    assert set(manifest["files"]) == set(make_set(tag, size=1)), manifest  # noqa: F821
    names = {n for n in os.listdir(folder) if not (temps_allowed and atomic.TMP_TAG in n)}
    assert names == set(manifest["files"]) | {MANIFEST} | set(others), (tag, sorted(names))
    for name, data in others.items():
        assert data is None or (folder / name).read_bytes() == data
    return tag


def child_code(folder: Path, tag: str, kill: str | None, fallback: bool = False, loop: bool = False) -> str:
    return SETS_SOURCE + f'''
import errno, os, signal, sys
from exporters import atomic

def hook(phase):
    if phase == {kill!r}:
        os.kill(os.getpid(), signal.SIGKILL)

atomic._hook = hook
if {fallback!r}:
    def refuse(a, b):
        raise OSError(errno.EINVAL, "exchange refused for the test")
    atomic._exchange = refuse
names = ["full.onnx", "stream.onnx", "unrolled.onnx"]
if {loop!r}:
    print("ready", flush=True)
    i = 0
    while True:
        i += 1
        t = ("A" if i % 2 else "B") + str(i)
        atomic.write_set({str(folder)!r}, make_set(t, 60000), "export.json", {{"tag": t}}, replaces=names)
atomic.write_set({str(folder)!r}, make_set({tag!r}), "export.json", {{"tag": {tag!r}}}, replaces=names)
print("finished")
'''


EXCHANGE_PHASES = ["locked", "linked", "created:full.onnx", "file:full.onnx", "created:stream.onnx",
                   "file:stream.onnx", "created:export.json", "synced", "swapped", "old-removed"]
FALLBACK_PHASES = ["temps", "manifest-removed", "renamed:full.onnx", "renamed:stream.onnx",
                   "stale-removed", "manifest-written"]


def test_kill_at_every_phase_leaves_one_complete_set(tmp_path):
    folder = tmp_path / "lstm"
    seed_folder(folder)
    for i, phase in enumerate(EXCHANGE_PHASES):
        before = complete_set(folder)
        new = ("B" if before.startswith("A") else "A") + str(i + 1)
        got = run_python(child_code(folder, new, kill=phase))
        assert got.returncode == -signal.SIGKILL, (phase, got.returncode, got.stderr[-2000:])
        after = complete_set(folder)
        assert after == (new if phase in ("swapped", "old-removed") else before), phase
    write(folder, "A99")                        # the next write cleans every leftover
    assert complete_set(folder) == "A99" and litter(tmp_path) == []


def test_kill_in_the_fallback_never_leaves_a_manifest_over_a_mixed_set(tmp_path):
    folder = tmp_path / "gru"
    seed_folder(folder)
    for i, phase in enumerate(FALLBACK_PHASES):
        new = "B" + str(i + 1)
        got = run_python(child_code(folder, new, kill=phase, fallback=True))
        assert got.returncode == -signal.SIGKILL, (phase, got.returncode, got.stderr[-2000:])
        if (folder / MANIFEST).exists():        # temps of the killed writer may lie beside it
            tag = complete_set(folder, temps_allowed=True)
            assert tag == (new if phase == "manifest-written" else "A0"), (phase, tag)
        else:                                   # between removing the old manifest and writing the new one
            assert phase in ("manifest-removed", "renamed:full.onnx", "renamed:stream.onnx", "stale-removed")
        write(folder, "A0")                     # the next write restores a complete set, no temps
        assert complete_set(folder) == "A0" and litter(tmp_path) == []


def test_kill_at_random_times_during_repeated_writes(tmp_path):
    folder = tmp_path / "cnn_lstm"
    seed_folder(folder)
    rng = random.Random(7)
    tags = set()
    for _ in range(8):
        proc = subprocess.Popen([sys.executable, "-c", child_code(folder, "", kill=None, loop=True)],
                                cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "ready", proc.stderr.read()
        time.sleep(rng.uniform(0.005, 0.25))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        tags.add(complete_set(folder))
    assert len(tags) > 1, f"the writer never finished a set before its kill: {tags}"
    write(folder, "B0")
    assert complete_set(folder) == "B0" and litter(tmp_path) == []


def _writer(folder: Path, prefix: str, rounds: int) -> subprocess.Popen:
    code = SETS_SOURCE + f'''
from exporters import atomic
names = ["full.onnx", "stream.onnx", "unrolled.onnx"]
for i in range({rounds}):
    t = "{prefix}" + str(i)
    atomic.write_set({str(folder)!r}, make_set(t, 3000), "export.json", {{"tag": t}}, replaces=names)
'''
    return subprocess.Popen([sys.executable, "-c", code], cwd=REPO, stderr=subprocess.PIPE, text=True)


def _snapshot(folder: Path) -> str | None:
    """Read the set through one folder descriptor; None when a swap removed a file mid-read."""
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except FileNotFoundError:
        return None
    try:
        opener = lambda p, f: os.open(p, f, dir_fd=fd)  # noqa: E731
        with open(MANIFEST, "rb", opener=opener) as fh:
            manifest = json.loads(fh.read())
        names = set(os.listdir(fd))
        for name, want in manifest["files"].items():
            with open(name, "rb", opener=opener) as fh:
                data = fh.read()
            assert len(data) == want["bytes"], (name, manifest["tag"])
        members = set(make_set(manifest["tag"], size=1))  # noqa: F821
        assert set(manifest["files"]) == members, manifest
        assert not (ALL_VARIANTS - members) & names, (manifest["tag"], sorted(names))   # no stale variant
        return manifest["tag"]
    except FileNotFoundError:
        return None
    finally:
        os.close(fd)


def test_concurrent_writers_and_single_file_writes_keep_one_complete_set(tmp_path):
    folder = tmp_path / "char_gru"
    seed_folder(folder)
    rounds = 40
    writers = [_writer(folder, "A", rounds), _writer(folder, "B", rounds)]
    extra = subprocess.Popen([sys.executable, "-c", f'''
from exporters import atomic
for i in range({rounds}):
    atomic.write_bytes({str(folder)!r} + f"/extra{{i}}.fp16.onnx", b"fp16 %d" % i)
'''], cwd=REPO, stderr=subprocess.PIPE, text=True)
    seen = set()
    while any(p.poll() is None for p in writers + [extra]):
        tag = _snapshot(folder)
        if tag:
            seen.add(tag[0])
    for proc in writers + [extra]:
        assert proc.wait() == 0, proc.stderr.read()
    others = {**OTHERS, **{f"extra{i}.fp16.onnx": b"fp16 %d" % i for i in range(rounds)}}
    assert complete_set(folder, others=others) in {f"A{rounds - 1}", f"B{rounds - 1}"}
    assert seen, "the reader never saw a complete set"
    assert litter(tmp_path) == []


def test_full_disk_keeps_the_old_set_and_leaves_no_temp(tmp_path, monkeypatch):
    with tmpfs(tmp_path / "mnt", "200k") as mnt:
        folder = mnt / "lstm"
        seed_folder(folder)
        with pytest.raises(OutputError, match="no space left") as err:
            write(folder, "B1", size=90000)
        assert str(folder) in str(err.value)
        assert complete_set(folder) == "A0" and litter(mnt) == []
        monkeypatch.setattr(atomic, "_swap_in", lambda *a: False)    # the per-file fallback, too
        with pytest.raises(OutputError, match="no space left"):
            write(folder, "B1", size=90000)
        assert complete_set(folder) == "A0" and litter(mnt) == []


def test_read_only_folder_keeps_the_old_set(tmp_path):
    with tmpfs(tmp_path / "mnt", "512k") as mnt:
        folder = mnt / "lstm"
        seed_folder(folder)
        remount_read_only(mnt)
        with pytest.raises(OutputError, match="read-only"):
            write(folder, "B1")
        with pytest.raises(OutputError, match="read-only"):
            atomic.check_writable(folder)
        assert complete_set(folder) == "A0" and litter(mnt) == []


def test_a_mount_point_folder_falls_back_to_per_file_writes(tmp_path):
    with tmpfs(tmp_path / "lstm", "512k") as folder:
        seed_folder(folder)
        write(folder, "B1")                     # the swap is refused (EBUSY): written in place
        assert complete_set(folder) == "B1" and litter(tmp_path) == []
        assert os.path.ismount(folder)


def test_a_writable_folder_in_a_read_only_parent_falls_back(tmp_path):
    parent = Path(tempfile.mkdtemp(prefix="rnnx-set-"))
    try:
        parent.chmod(0o755)
        folder = parent / "gru"
        seed_folder(folder)
        for path in [folder, *folder.iterdir()]:
            os.chown(path, 65534, 65534)
        assert as_user(lambda: write(folder, "B1")["tag"]) == "B1"
        assert complete_set(folder) == "B1" and litter(parent) == []
    finally:
        shutil.rmtree(parent, ignore_errors=True)


def test_exchange_works_on_the_test_and_repository_file_systems(tmp_path):
    repo_tmp = Path(tempfile.mkdtemp(prefix=".rnnx-exchange-", dir=REPO))
    try:
        for base in (tmp_path, repo_tmp):
            (base / "a").mkdir()
            (base / "b").mkdir()
            (base / "a" / "x").write_text("a")
            atomic._exchange(base / "a", base / "b")
            assert (base / "b" / "x").read_text() == "a" and not (base / "a" / "x").exists()
    finally:
        shutil.rmtree(repo_tmp)


def test_first_write_sets_and_symlinked_folders(tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "link").symlink_to(real)
    manifest = write(tmp_path / "link" / "new", "A1")
    assert manifest["files"]["full.onnx"]["bytes"] == 20000 and manifest["tag"] == "A1"
    write(tmp_path / "link", "B1")
    assert (tmp_path / "link").is_symlink()
    assert complete_set(real, others={"new": None}) == "B1"


def test_bad_set_arguments_are_config_errors(tmp_path):
    for files, manifest in [({"a/b.onnx": b""}, MANIFEST), ({"x.onnx": b""}, "x.onnx"),
                            ({"x.onnx": "text"}, MANIFEST), ({f".x{atomic.TMP_TAG}1": b""}, MANIFEST)]:
        with pytest.raises(ConfigError):
            atomic.write_set(tmp_path / "s", files, manifest, {})
    assert not (tmp_path / "s").exists()


def test_out_below_a_file(tmp_path):
    (tmp_path / "f").write_bytes(b"")
    for target in (tmp_path / "f", tmp_path / "f" / "out"):
        with pytest.raises(OutputError, match="file, not a folder"):
            write(target, "A1")
    assert litter(tmp_path) == [] and os.listdir(tmp_path) == ["f"]
