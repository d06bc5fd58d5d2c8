"""ORT-format copies and the reduced-build operator config of an export set (exporters/edge.py).

`export_model(..., ort=True)` and `rnnx pack DIR` add <variant>.ort and required_operators.config
to the set atomically, listed with their sha256 in export.json; `runtime.load` reads the .ort
files with the same contract and gives the .onnx files' outputs; a tampered file is a one-line
error, and a re-export without the ORT files removes the stale ones.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(__file__))
from export_cases import randomize, workdir  # noqa: E402


def _model():
    import keras
    from keras import layers as L

    keras.utils.set_random_seed(2)
    inp = keras.Input((None, 6))
    h = L.Conv1D(8, 3, padding="same")(inp)          # a look-ahead window: the clock's ops too
    return randomize(keras.Model(inp, L.Dense(3, activation="softmax")(L.LSTM(8, return_sequences=True)(h))), 1)


@pytest.fixture(scope="module")
def packed():
    from exporters.export import export_model

    model = _model()
    out = workdir() / "edge"
    res = export_model(model, out, chunk=2, ort=True)
    return model, out, res


def test_export_with_ort_lists_every_file_with_its_hash(packed):
    from exporters.edge import operators

    _, out, res = packed
    report = json.loads((out / "export.json").read_text())
    names = {"full.onnx", "stream.onnx", "unrolled.onnx", "full.ort", "stream.ort", "unrolled.ort",
             "required_operators.config", "selftest.npz"}
    assert set(report["files"]) == names and set(p.name for p in out.iterdir()) == names | {"export.json"}
    ops = operators((out / "required_operators.config").read_text())
    assert report["edge"]["operators"] == sum(len(v) for v in ops.values()) > 10
    assert {"LSTM", "Conv", "Compress"} <= {op for v in ops.values() for op in v}   # the clock's Compress too
    assert "rnnx-" not in (out / "required_operators.config").read_text()        # no scratch paths


def test_the_runtime_reads_the_ort_files_with_the_same_contract_and_outputs(packed):
    import runtime

    model, out, _ = packed
    x = np.random.default_rng(3).normal(size=(2, 9, 6)).astype(np.float32)
    want = model(x, training=False).numpy()
    for variant in ("full", "stream", "unrolled"):
        kw = {} if variant == "full" else {"batch": 2}
        onnx_model, ort_model = runtime.load(out / f"{variant}.onnx", **kw), runtime.load(out / f"{variant}.ort", **kw)
        assert ort_model.contract.to_dict() == onnx_model.contract.to_dict()
        got = ort_model.predict(x) if variant == "full" else ort_model.feed(x)
        assert np.abs(got - want).max() <= 1e-5, variant


def test_a_tampered_ort_file_is_a_one_line_error(packed, tmp_path):
    import shutil

    import runtime

    _, out, _ = packed
    copy = tmp_path / "set"
    shutil.copytree(out, copy)
    data = bytearray((copy / "stream.ort").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (copy / "stream.ort").write_bytes(bytes(data))
    with pytest.raises(runtime.ModelFormatError, match="stream.ort"):
        runtime.load(copy / "stream.ort", batch=2)


def test_rnnx_pack_adds_them_to_an_existing_set_and_a_reexport_removes_them(tmp_path):
    from exporters.export import export_model

    model = _model()
    out = tmp_path / "set"
    export_model(model, out, chunk=2, variants=["full", "stream"])
    rnnx = str(Path(sys.executable).parent / "rnnx")
    run = subprocess.run([rnnx, "pack", str(out)], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert f"ort\t{out / 'stream.ort'}\tfrom stream.onnx" in run.stdout
    assert "operators for a reduced onnxruntime build" in run.stderr
    report = json.loads((out / "export.json").read_text())
    assert {"full.ort", "stream.ort", "required_operators.config"} <= set(report["files"])
    assert report["edge"]["ort"] == {"full.onnx": "full.ort", "stream.onnx": "stream.ort"}
    export_model(model, out, chunk=2, variants=["full", "stream"])     # a new set: the old .ort files go
    assert sorted(p.name for p in out.iterdir()) == ["export.json", "full.onnx", "stream.onnx"]


def test_pack_refuses_a_folder_without_a_set_or_with_a_changed_model(tmp_path):
    from exporters.edge import pack
    from exporters.errors import ConfigError, ModelFormatError
    from exporters.export import export_model

    with pytest.raises(ConfigError, match="holds no export.json"):
        pack(tmp_path)
    out = tmp_path / "set"
    export_model(_model(), out, chunk=2, variants=["full"])
    before = sorted(p.name for p in out.iterdir())
    (out / "full.onnx").write_bytes((out / "full.onnx").read_bytes() + b"\0")
    with pytest.raises(ModelFormatError, match="full.onnx is not the file export.json lists"):
        pack(out)
    assert sorted(p.name for p in out.iterdir()) == before     # nothing written


def _selftest(folder) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "runtime", "--selftest", str(folder)], capture_output=True,
                          text=True, timeout=300)


def test_the_selftest_passes_every_file_of_a_packed_set_against_keras(packed):
    _, out, _ = packed
    run = _selftest(out)
    assert run.returncode == 0, run.stdout + run.stderr
    lines = run.stdout.strip().splitlines()
    assert sorted(line.split()[1] for line in lines) == ["full.onnx", "full.ort", "stream.onnx", "stream.ort",
                                                          "unrolled.onnx", "unrolled.ort"]
    assert all(line.startswith("pass  ") and "vs keras" in line for line in lines), lines
    assert "6 of 6 files pass" in run.stderr


def test_a_tampered_vector_file_or_model_is_a_one_line_failure(packed, tmp_path):
    import shutil

    _, out, _ = packed
    bad_vectors = tmp_path / "vectors"
    shutil.copytree(out, bad_vectors)
    data = bytearray((bad_vectors / "selftest.npz").read_bytes())
    data[-40] ^= 0x01
    (bad_vectors / "selftest.npz").write_bytes(bytes(data))
    run = _selftest(bad_vectors)
    assert run.returncode == 1 and run.stdout == "", run.stdout
    assert run.stderr.strip().count("\n") == 0 and "selftest.npz does not belong to this export set" in run.stderr
    bad_model = tmp_path / "model"
    shutil.copytree(out, bad_model)
    data = bytearray((bad_model / "unrolled.ort").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (bad_model / "unrolled.ort").write_bytes(bytes(data))
    run = _selftest(bad_model)
    assert run.returncode == 1 and "Traceback" not in run.stderr
    fails = [line for line in run.stdout.splitlines() if line.startswith("FAIL")]
    assert len(fails) == 1 and fails[0].startswith("FAIL  unrolled.ort  ModelFormatError"), run.stdout
    assert "5 of 6 files pass" in run.stderr


def test_pack_without_keras_takes_the_outputs_of_the_full_file(tmp_path):
    from exporters.edge import pack
    from exporters.export import export_model

    out = tmp_path / "set"
    export_model(_model(), out, chunk=2, variants=["full", "stream"])
    pack(out)
    run = _selftest(out)
    assert run.returncode == 0, run.stdout + run.stderr
    assert all("vs full.onnx" in line for line in run.stdout.splitlines())
