"""Data loading: real Fashion-MNIST, verification of corrupt or foreign files, sources."""

import gzip
import shutil
import struct

import numpy as np
import pytest

from exporters.errors import ConfigError, DataError
from pipeline import data

DEBIAN = data.DATASETS["fashion_mnist"].debian_dir


def test_fashion_mnist_standard_split(fashion):
    assert fashion.x_train.shape == (60000, 28, 28) and fashion.x_train.dtype == np.uint8
    assert fashion.x_test.shape == (10000, 28, 28)
    assert fashion.y_train.shape == (60000,) and fashion.y_test.shape == (10000,)
    assert set(np.unique(fashion.y_test)) == set(range(10))
    assert np.bincount(fashion.y_train).tolist() == [6000] * 10   # Fashion-MNIST is balanced
    assert fashion.labels[0] == "T-shirt/top" and len(fashion.labels) == 10
    assert fashion.x_train.max() == 255


def _copy_raw(tmp_path):
    """The four Debian files, decompressed into tmp_path (a user-provided folder)."""
    for stem, _ in data.PARTS.values():
        (tmp_path / stem).write_bytes(gzip.decompress((_debian() / f"{stem}.gz").read_bytes()))
    return tmp_path


def _debian():
    from pathlib import Path
    return Path(DEBIAN)


def test_user_folder_with_raw_files_is_first_source(tmp_path, fashion):
    ds = data.load("fashion_mnist", data_dir=_copy_raw(tmp_path))
    assert ds.source == str(tmp_path)
    np.testing.assert_array_equal(ds.y_test, fashion.y_test)


def test_env_variable_names_the_folder(tmp_path, monkeypatch):
    sub = tmp_path / "fashion_mnist"
    sub.mkdir()
    _copy_raw(sub)
    monkeypatch.setenv("RNNX_DATA_DIR", str(tmp_path))
    assert data.load("fashion_mnist").source == str(sub)


def test_truncated_file_is_an_error(tmp_path):
    _copy_raw(tmp_path)
    path = tmp_path / "t10k-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(DataError, match="truncated"):
        data.load("fashion_mnist", data_dir=tmp_path)


def test_one_changed_byte_fails_the_checksum(tmp_path):
    _copy_raw(tmp_path)
    path = tmp_path / "train-labels-idx1-ubyte"
    raw = bytearray(path.read_bytes())
    raw[100] = (raw[100] + 1) % 10          # still a valid label: only the md5 can tell
    path.write_bytes(bytes(raw))
    with pytest.raises(DataError, match="md5"):
        data.load("fashion_mnist", data_dir=tmp_path)


def test_corrupt_gzip_is_an_error(tmp_path):
    for stem, _ in data.PARTS.values():
        shutil.copy(_debian() / f"{stem}.gz", tmp_path / f"{stem}.gz")
    gz = tmp_path / "t10k-labels-idx1-ubyte.gz"
    gz.write_bytes(gz.read_bytes()[:200])
    with pytest.raises(DataError, match="truncated or corrupt"):
        data.load("fashion_mnist", data_dir=tmp_path)


def test_read_idx_checks_magic_and_dimensions(tmp_path):
    good = tmp_path / "ok"
    good.write_bytes(struct.pack(">HBB3I", 0, 8, 3, 2, 3, 4) + bytes(range(24)))
    assert data.read_idx(good).shape == (2, 3, 4)
    floats = tmp_path / "floats"
    floats.write_bytes(struct.pack(">HBB1I", 0, 0x0D, 1, 1) + b"\0\0\0\0")
    with pytest.raises(DataError, match="unsigned-byte IDX"):
        data.read_idx(floats)
    with pytest.raises(DataError, match="expected 5"):
        data.read_idx(good, expected_count=5)


def test_unknown_dataset_is_a_config_error():
    with pytest.raises(ConfigError, match="expected one of"):
        data.load("cifar")


def test_missing_folder_is_named(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        data.load("fashion_mnist", data_dir=tmp_path / "nope")


def test_no_source_lists_the_three_ways(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.delenv("RNNX_DATA_DIR", raising=False)
    with pytest.raises(DataError) as err:
        data.load("mnist", allow_download=False)
    msg = str(err.value)
    assert "data.dir" in msg and "RNNX_ALLOW_DOWNLOAD" in msg and "not found" in msg


def test_mnist_npz_with_wrong_hash_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    (tmp_path / "datasets").mkdir()
    x = np.zeros((60000, 28, 28), np.uint8)
    np.savez(tmp_path / "datasets" / "mnist.npz", x_train=x, y_train=np.zeros(60000, np.uint8),
             x_test=x[:10000], y_test=np.zeros(10000, np.uint8))
    with pytest.raises(DataError, match="sha256"):
        data.load("mnist")


def test_download_lands_atomically_with_a_normal_mode(tmp_path, monkeypatch):
    """A download (here from a file:// origin) goes through the atomic writer: no temp, mode 0o666 & ~umask."""
    import os
    import stat

    origin = tmp_path / "origin"
    origin.mkdir()
    np.savez(origin / "mnist.npz", x_train=np.zeros((2, 28, 28), np.uint8))
    monkeypatch.setattr(data, "KERAS_ORIGIN", origin.as_uri() + "/")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    with pytest.raises(DataError, match="sha256"):        # downloaded, then verified: not the published file
        data.load("mnist", allow_download=True)
    cache = tmp_path / "keras" / "datasets"
    assert os.listdir(cache) == ["mnist.npz"]
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE((cache / "mnist.npz").stat().st_mode) == 0o666 & ~umask


def test_failed_download_is_a_data_error_and_leaves_nothing(tmp_path, monkeypatch):
    from exporters.errors import OutputError

    monkeypatch.setattr(data, "KERAS_ORIGIN", (tmp_path / "empty").as_uri() + "/")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    with pytest.raises(DataError, match="download of .*mnist.npz failed"):
        data.load("mnist", allow_download=True)
    assert list((tmp_path / "keras" / "datasets").iterdir()) == []
    (tmp_path / "blocked").write_text("a file where the cache folder should be")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "blocked"))
    with pytest.raises(OutputError, match="file, not a folder"):
        data.load("mnist", allow_download=True)
