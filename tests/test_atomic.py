"""rnnx's one file writer (exporters.atomic): modes, typed errors on real file-system faults, no litter."""

import json
import os
import shutil
import stat
import tempfile
from pathlib import Path

import pytest

from exporters import atomic
from exporters.errors import OutputError
from fs_faults import as_user, litter, remount_read_only, tmpfs


@pytest.fixture
def shared_dir():
    """A folder under /tmp that every user may enter (pytest's tmp_path is 0700)."""
    path = Path(tempfile.mkdtemp(prefix="rnnx-atomic-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize("umask", [0o022, 0o007])
def test_files_get_a_normal_files_mode(tmp_path, umask):
    old = os.umask(umask)
    try:
        atomic.write_bytes(tmp_path / "a.bin", b"x")
        atomic.write_json(tmp_path / "b.json", {"k": 1})
        with atomic.atomic_path(tmp_path / "c.keras") as tmp:
            tmp.write_bytes(b"zip")
    finally:
        os.umask(old)
    for name in ("a.bin", "b.json", "c.keras"):
        assert mode(tmp_path / name) == 0o666 & ~umask, name


def test_another_user_can_read_what_root_wrote(shared_dir):
    atomic.write_bytes(shared_dir / "model.onnx", b"weights")
    atomic.write_set(shared_dir / "set", {"full.onnx": b"w"}, "export.json", {})
    def read():
        return (shared_dir / "model.onnx").read_bytes() + (shared_dir / "set" / "full.onnx").read_bytes()

    assert as_user(read) == str(b"weightsw")


def test_write_replaces_and_leaves_no_temp(tmp_path):
    atomic.write_json(tmp_path / "deep" / "m.json", {"b": 2, "a": 1})
    atomic.write_json(tmp_path / "deep" / "m.json", {"b": 3, "a": 1})
    text = (tmp_path / "deep" / "m.json").read_text()
    assert text == '{\n  "a": 1,\n  "b": 3\n}\n'
    assert os.listdir(tmp_path / "deep") == ["m.json"]


def test_the_pipeline_writes_through_the_same_writer(tmp_path):
    from pipeline import outputs

    assert outputs.write_json is atomic.write_json and outputs.atomic_path is atomic.atomic_path
    outputs.write_csv(tmp_path / "plots" / "h.csv", [{"epoch": 1, "loss": 0.123456789}])
    assert (tmp_path / "plots" / "h.csv").read_text() == "epoch,loss\n1,0.123457\n"
    assert mode(tmp_path / "plots" / "h.csv") == 0o666 & ~_umask()


def _umask() -> int:
    old = os.umask(0)
    os.umask(old)
    return old


def test_out_below_a_file_is_an_output_error(tmp_path):
    (tmp_path / "model.onnx").write_bytes(b"x")
    target = tmp_path / "model.onnx" / "out"
    with pytest.raises(OutputError, match="file, not a folder") as err:
        atomic.write_bytes(target / "full.onnx", b"y")
    assert str(target) in str(err.value)
    with pytest.raises(OutputError, match="is a file, not a folder"):
        atomic.check_writable(target)
    with pytest.raises(OutputError, match="file, not a folder"):
        with atomic.atomic_path(target / "m.keras"):
            pass
    assert sorted(os.listdir(tmp_path)) == ["model.onnx"]


def test_check_writable_creates_nothing(tmp_path):
    assert atomic.check_writable(tmp_path / "a" / "b") == tmp_path / "a" / "b"
    assert os.listdir(tmp_path) == []


def test_atomic_path_removes_the_temp_when_the_writer_fails(tmp_path):
    (tmp_path / "m.keras").write_bytes(b"old")
    with pytest.raises(ValueError):
        with atomic.atomic_path(tmp_path / "m.keras") as tmp:
            tmp.write_bytes(b"half")
            raise ValueError("writer failed")
    assert (tmp_path / "m.keras").read_bytes() == b"old"
    assert litter(tmp_path) == []


def test_permission_denied_is_an_output_error(shared_dir):
    (shared_dir / "old.json").write_text("{}")
    calls = (lambda: atomic.write_bytes(shared_dir / "old.json", b"x"),
             lambda: atomic.check_writable(shared_dir),
             lambda: atomic.write_set(shared_dir, {"a.onnx": b"1"}, "export.json", {}))

    def attempt():
        lines = []
        for call in calls:
            try:
                call()
                lines.append("written")
            except OutputError as exc:
                lines.append(f"OutputError {exc}")
        return "\n".join(lines)

    lines = as_user(attempt).splitlines()
    assert len(lines) == 3 and all(line.startswith("OutputError") and "permission denied" in line
                                   for line in lines), lines
    assert str(shared_dir) in lines[1]
    assert sorted(os.listdir(shared_dir)) == ["old.json"]


def test_read_only_file_system_is_an_output_error(tmp_path):
    with tmpfs(tmp_path / "mnt", "64k") as mnt:
        atomic.write_bytes(mnt / "out" / "old.json", b"{}")
        remount_read_only(mnt)
        with pytest.raises(OutputError, match="read-only") as err:
            atomic.write_bytes(mnt / "out" / "old.json", b"new")
        assert "old.json" in str(err.value)
        with pytest.raises(OutputError, match="read-only"):
            atomic.check_writable(mnt / "out")
        with pytest.raises(OutputError, match="read-only"):
            atomic.check_writable(mnt / "not" / "yet")
        assert (mnt / "out" / "old.json").read_bytes() == b"{}"


def test_full_disk_is_an_output_error_and_keeps_the_old_file(tmp_path):
    with tmpfs(tmp_path / "mnt", "200k") as mnt:
        atomic.write_bytes(mnt / "m.onnx", b"old" * 1000)
        with pytest.raises(OutputError, match="no space left") as err:
            atomic.write_bytes(mnt / "m.onnx", os.urandom(300 * 1024))
        assert "m.onnx" in str(err.value)
        assert (mnt / "m.onnx").read_bytes() == b"old" * 1000
        with pytest.raises(OutputError, match="no space left"):
            with atomic.atomic_path(mnt / "big.keras") as tmp:
                tmp.write_bytes(os.urandom(300 * 1024))
        assert litter(mnt) == [] and sorted(os.listdir(mnt)) == ["m.onnx"]
        with open(mnt / "filler", "wb", buffering=0) as fh:      # now fill it to the last block
            with pytest.raises(OSError):
                while True:
                    fh.write(b"\0" * 4096)
        with pytest.raises(OutputError, match="no space left"):
            atomic.check_writable(mnt)
        assert litter(mnt) == []


def test_write_json_output_is_stable(tmp_path):
    atomic.write_json(tmp_path / "a.json", {"z": [1, 2], "a": {"y": 1.5}})
    assert json.loads((tmp_path / "a.json").read_text()) == {"z": [1, 2], "a": {"y": 1.5}}
    assert atomic.json_bytes({"b": 1, "a": 2}) == b'{\n  "a": 2,\n  "b": 1\n}\n'
