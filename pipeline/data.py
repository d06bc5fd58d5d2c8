"""Datasets, offline first: Fashion-MNIST (default) and MNIST from IDX files.

numpy only: loading needs no TensorFlow. Sources are tried in this order:

1. a directory named by ``data.dir`` in params.yaml or the ``RNNX_DATA_DIR``
   environment variable (IDX files, ``.gz`` or raw, in it or in ``<dir>/<name>/``);
2. Debian's package ``dataset-fashion-mnist`` (``/usr/share/datasets/fashion-mnist/``);
3. the Keras download cache (``~/.keras/datasets``), and a download into it
   when explicitly allowed (``data.allow_download`` or ``RNNX_ALLOW_DOWNLOAD=1``).

Everything loaded is verified: IDX magic and dimensions against the file size,
the standard 60k/10k split of 28x28 images, labels in 0..9, and the known
checksums of the files where the source is a known one.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import os
import struct
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from exporters.atomic import atomic_path
from exporters.errors import ConfigError, DataError

FASHION_LABELS = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                  "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
DIGIT_LABELS = tuple(str(d) for d in range(10))

PARTS = {  # part -> IDX file stem, expected count
    "train_images": ("train-images-idx3-ubyte", 60000),
    "train_labels": ("train-labels-idx1-ubyte", 60000),
    "test_images": ("t10k-images-idx3-ubyte", 10000),
    "test_labels": ("t10k-labels-idx1-ubyte", 10000),
}

KERAS_ORIGIN = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    labels: tuple
    debian_dir: str | None
    keras_subdir: str | None        # Keras cache folder with the four .gz files
    keras_npz: str | None           # or one .npz in the Keras cache
    raw_md5: dict                   # md5 of the decompressed IDX files, by part
    gz_md5: dict                    # md5 of the published .gz files, by part
    npz_sha256: str | None = None


DATASETS = {
    "fashion_mnist": DatasetInfo(
        name="fashion_mnist",
        labels=FASHION_LABELS,
        debian_dir="/usr/share/datasets/fashion-mnist",
        keras_subdir="fashion-mnist",
        keras_npz=None,
        raw_md5={
            "train_images": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
            "train_labels": "9018921c3c673c538a1fc5bad174d6f9",
            "test_images": "8181f5470baa50b63fa0f6fddb340f0a",
            "test_labels": "15d484375f8d13e6eb1aabb0c3f46965",
        },
        gz_md5={
            "train_images": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
            "train_labels": "25c81989df183df01b3e8a0aad5dffbe",
            "test_images": "bef4ecab320f06d8554ea6380940ec79",
            "test_labels": "bb300cfdad3c16e7a12a480ee83cd310",
        },
    ),
    "mnist": DatasetInfo(
        name="mnist",
        labels=DIGIT_LABELS,
        debian_dir=None,
        keras_subdir=None,
        keras_npz="mnist.npz",
        raw_md5={},
        gz_md5={
            "train_images": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
            "train_labels": "d53e105ee54ea40749a09fcbcd1e9432",
            "test_images": "9fb629c4189551a2d022fa330f9573f3",
            "test_labels": "ec29112dd5afa0611ce80d1b7f02629c",
        },
        npz_sha256="731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1",
    ),
}


@dataclass(frozen=True)
class Dataset:
    """Images as uint8 (N, 28, 28), labels as uint8 (N,), the standard split."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    labels: tuple
    source: str


def dataset_info(name: str) -> DatasetInfo:
    try:
        return DATASETS[name]
    except KeyError:
        raise ConfigError(f"unknown dataset {name!r}; expected one of {sorted(DATASETS)}") from None


def load(name: str = "fashion_mnist", data_dir: str | os.PathLike | None = None,
         allow_download: bool | None = None) -> Dataset:
    """Load and verify dataset ``name`` from the first source that has it."""
    info = dataset_info(name)
    data_dir = data_dir or os.environ.get("RNNX_DATA_DIR") or None
    if allow_download is None:
        allow_download = os.environ.get("RNNX_ALLOW_DOWNLOAD", "") not in ("", "0")
    tried = []
    if data_dir:
        root = Path(data_dir)
        if not root.is_dir():
            raise DataError(f"data directory {str(root)!r} (data.dir / RNNX_DATA_DIR) does not exist")
        for folder in (root / name, root / name.replace("_", "-"), root):
            if _find_part(folder, "train_images"):
                return _load_idx_folder(info, folder)
            if info.keras_npz and (folder / info.keras_npz).is_file():
                return _load_npz(info, folder / info.keras_npz)
        tried.append(f"{root} (no IDX files for {name})")
    if info.debian_dir:
        if _find_part(Path(info.debian_dir), "train_images"):
            return _load_idx_folder(info, Path(info.debian_dir))
        tried.append(f"{info.debian_dir} (Debian package not installed)")
    cache = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "datasets"
    found = _keras_cache(info, cache)
    if found is None and allow_download:
        _download(info, cache)
        found = _keras_cache(info, cache)
    if found is not None:
        return found
    tried.append(f"{cache} (Keras cache empty{'' if allow_download else '; download not allowed'})")
    fixes = [
        "set data.dir in params.yaml or RNNX_DATA_DIR to a folder with the four IDX files",
    ]
    if info.debian_dir:
        fixes.append("install Debian's package: apt-get install dataset-fashion-mnist")
    fixes.append("allow a download into the Keras cache: data.allow_download: true or RNNX_ALLOW_DOWNLOAD=1")
    raise DataError(f"dataset {name!r} not found (tried: {'; '.join(tried)}). To provide it: "
                    + "; or ".join(fixes))


def _find_part(folder: Path, part: str) -> Path | None:
    stem = PARTS[part][0]
    for candidate in (folder / f"{stem}.gz", folder / stem, folder / stem.replace("-idx", ".idx")):
        if candidate.is_file():
            return candidate
    return None


def _keras_cache(info: DatasetInfo, cache: Path) -> Dataset | None:
    if info.keras_subdir and _find_part(cache / info.keras_subdir, "train_images"):
        return _load_idx_folder(info, cache / info.keras_subdir)
    if info.keras_npz and (cache / info.keras_npz).is_file():
        return _load_npz(info, cache / info.keras_npz)
    return None


def _load_idx_folder(info: DatasetInfo, folder: Path) -> Dataset:
    arrays = {}
    for part, (stem, count) in PARTS.items():
        path = _find_part(folder, part)
        if path is None:
            raise DataError(f"{folder} has {PARTS['train_images'][0]} but no {stem}(.gz)")
        arrays[part] = read_idx(path, expected_count=count, known_raw_md5=info.raw_md5.get(part),
                                known_gz_md5=info.gz_md5.get(part))
    return _verified(info, arrays, str(folder))


def _load_npz(info: DatasetInfo, path: Path) -> Dataset:
    if info.npz_sha256:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest != info.npz_sha256:
            raise DataError(f"{path}: sha256 {digest} differs from the known {info.npz_sha256}; "
                            "the file is truncated or not the published one")
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {"train_images": f["x_train"], "train_labels": f["y_train"],
                      "test_images": f["x_test"], "test_labels": f["y_test"]}
    except (OSError, ValueError, KeyError) as exc:
        raise DataError(f"{path}: not a dataset .npz with x_train/y_train/x_test/y_test ({exc})") from None
    return _verified(info, arrays, str(path))


def read_idx(path: str | os.PathLike, expected_count: int | None = None,
             known_raw_md5: str | None = None, known_gz_md5: str | None = None) -> np.ndarray:
    """Read one IDX file (``.gz`` or raw) into a uint8 array, verifying it.

    The header's dimensions must match the payload size exactly; when a known
    checksum is given, the decompressed bytes (or, for a ``.gz`` matching the
    published archive, the archive itself) must match it.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
        gz_md5 = hashlib.md5(raw).hexdigest() if raw[:2] == b"\x1f\x8b" else None
        if gz_md5 is not None:
            raw = gzip.decompress(raw)
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise DataError(f"{path}: cannot read or decompress ({exc}); the file is truncated or corrupt") from None
    if len(raw) < 8:
        raise DataError(f"{path}: {len(raw)} bytes is too short for an IDX header")
    zero, dtype_code, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype_code != 0x08 or ndim not in (1, 3):
        raise DataError(f"{path}: not an unsigned-byte IDX file (magic {raw[:4].hex()}, "
                        "expected 00000801 for labels or 00000803 for images)")
    dims = struct.unpack(f">{ndim}I", raw[4:4 + 4 * ndim])
    payload = raw[4 + 4 * ndim:]
    if len(payload) != int(np.prod(dims)):
        raise DataError(f"{path}: header says {dims} = {int(np.prod(dims))} bytes of data but the file "
                        f"holds {len(payload)}; it is truncated or corrupt")
    if expected_count is not None and dims[0] != expected_count:
        raise DataError(f"{path}: {dims[0]} items, expected {expected_count}")
    if known_raw_md5 or known_gz_md5:
        ok_gz = gz_md5 is not None and gz_md5 == known_gz_md5
        raw_md5 = hashlib.md5(raw).hexdigest()
        if not ok_gz and known_raw_md5 and raw_md5 != known_raw_md5:
            raise DataError(f"{path}: md5 of the decompressed data is {raw_md5}, expected {known_raw_md5}; "
                            "the file is not the published one")
        if not ok_gz and not known_raw_md5 and gz_md5 is not None:
            raise DataError(f"{path}: md5 {gz_md5} differs from the published archive's {known_gz_md5}")
    return np.frombuffer(payload, dtype=np.uint8).reshape(dims)


def _verified(info: DatasetInfo, arrays: dict, source: str) -> Dataset:
    for split, count in (("train", 60000), ("test", 10000)):
        x, y = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if x.shape != (count, 28, 28) or x.dtype != np.uint8:
            raise DataError(f"{source}: {split} images are {x.dtype}{x.shape}, expected uint8({count}, 28, 28)")
        if y.shape != (count,):
            raise DataError(f"{source}: {split} labels have shape {y.shape}, expected ({count},)")
        if int(y.min()) < 0 or int(y.max()) >= len(info.labels):
            raise DataError(f"{source}: {split} labels range {int(y.min())}..{int(y.max())}, "
                            f"expected 0..{len(info.labels) - 1}")
    return Dataset(info.name, arrays["train_images"], arrays["train_labels"].astype(np.uint8),
                   arrays["test_images"], arrays["test_labels"].astype(np.uint8), info.labels, source)


def _download(info: DatasetInfo, cache: Path) -> None:
    """Fetch the published files into the Keras cache (only when allowed)."""
    if info.keras_subdir:
        target = cache / info.keras_subdir
        names = [f"{PARTS[p][0]}.gz" for p in PARTS]
        origin = KERAS_ORIGIN + info.keras_subdir + "/"
    else:
        target, names, origin = cache, [info.keras_npz], KERAS_ORIGIN
    for fname in names:
        dest = target / fname
        if dest.exists():
            continue
        print(f"rnnx: downloading {origin}{fname}", file=sys.stderr)
        with atomic_path(dest) as tmp:     # a full disk or read-only cache: OutputError
            try:
                urllib.request.urlretrieve(origin + fname, tmp)
            except (urllib.error.URLError, http.client.HTTPException, ConnectionError, TimeoutError) as exc:
                raise DataError(f"download of {origin}{fname} failed: {exc}") from None
