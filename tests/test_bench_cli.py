"""`rnnx bench` from the command line: a summary, JSON, and one-line errors for bad input."""

import json

import numpy as np
import pytest

pytest.importorskip("tf2onnx")

from bench_fixtures import exported  # noqa: E402
from click.testing import CliRunner  # noqa: E402

from exporters.cli import cli  # noqa: E402


def _run(*args):
    return CliRunner().invoke(cli, ["bench", *map(str, args)], catch_exceptions=False)


def _one_line_failure(res, needle):
    assert res.exit_code == 1, res.output
    lines = [line for line in res.stderr.strip().splitlines() if not line.startswith("rnnx bench: ")]
    assert len(lines) == 1 and lines[0].startswith("rnnx: ") and needle in lines[0], res.stderr
    assert "Traceback" not in res.stderr


def test_bench_prints_a_summary_and_writes_json(tmp_path):
    case = exported()
    out = tmp_path / "out" / "bench.json"
    res = _run(case["dir"], "--data", case["data"], "--batch", "1,4", "--threads", "1", "--reps", "3",
               "--rounds", "2", "--streams", "1,2", "--sweep", "", "--json", out)
    assert res.exit_code == 0, res.stderr
    assert "full.onnx" in res.stdout and "stream.onnx" in res.stdout and "machine:" in res.stdout
    assert "provider cuda skipped" in res.stdout
    assert "inputs: 64 given sequences of 6 steps" in res.stdout and "interleaved rounds" in res.stdout
    assert "rnnx bench: [1/4] full.onnx [cpu]" in res.stderr          # a progress line per row
    data = json.loads(out.read_text())
    assert data["parity_reference"] == "onnx:full.onnx" and len(data["rows"]) == 4
    assert data["rows"][0]["accuracy"] is not None and data["settings"]["batches"] == [1, 4]


def test_directory_without_onnx_files(tmp_path):
    _one_line_failure(_run(tmp_path), "holds no .onnx files")


def test_keras_model_that_does_not_match_the_onnx_one():
    case = exported()
    res = _run(case["dir"] / "full.onnx", "--keras", case["other_keras"], "--data", case["data"],
               "--batch", "1", "--reps", "3", "--providers", "cpu")
    _one_line_failure(res, "InputShapeError: Keras model other.keras takes input (?, ?, 7) but the ONNX models take (?, ?, 5)")


def test_unavailable_provider_asked_for_explicitly():
    res = _run(exported()["dir"], "--providers", "cpu,cuda", "--reps", "3")
    _one_line_failure(res, "ProviderError: execution provider CUDAExecutionProvider is not available")


def test_data_that_does_not_fit_the_model(tmp_path):
    bad = tmp_path / "bad.npz"
    np.savez(bad, x=np.zeros((4, 6, 9), np.float32), y=np.zeros(4, np.int64))
    _one_line_failure(_run(exported()["dir"], "--data", bad, "--providers", "cpu"),
                      "InputShapeError: data x has shape (4, 6, 9)")
    _one_line_failure(_run(exported()["dir"], "--data", tmp_path / "missing.npz"), "DataError: no data file")
    _one_line_failure(_run(exported()["dir"], "--threads", "1,lots"), "threads must be positive integers")


def test_a_json_path_below_a_file_fails_before_the_timing(tmp_path):
    (tmp_path / "afile").write_text("not a folder")
    res = _run(exported()["dir"], "--providers", "cpu", "--reps", "3", "--json", tmp_path / "afile" / "b.json")
    _one_line_failure(res, "OutputError: cannot write")
    assert "[1/" not in res.stderr                          # no row was timed first


def test_data_files_that_are_not_npz_archives(tmp_path):
    (tmp_path / "text.npz").write_text("x,y\n0.1,2\n")
    np.save(tmp_path / "array.npz", np.zeros((4, 6, 5), np.float32))   # numpy.save under a .npz name
    (tmp_path / "array.npz.npy").rename(tmp_path / "array.npz")
    _one_line_failure(_run(exported()["dir"], "--data", tmp_path / "text.npz", "--providers", "cpu"),
                      "DataError: samples file 'text.npz' is not a .npz archive (it has no zip header")
    _one_line_failure(_run(exported()["dir"], "--data", tmp_path / "array.npz", "--providers", "cpu"),
                      "is a single .npy array, not a .npz archive")


def test_data_with_no_time_steps(tmp_path):
    empty = tmp_path / "empty.npz"
    np.savez(empty, x=np.zeros((4, 0, 5), np.float32))
    _one_line_failure(_run(exported()["dir"], "--data", empty, "--providers", "cpu"),
                      "InputShapeError: empty.npz: x must have at least one time step")


def test_labels_outside_the_classes(tmp_path):
    bad = tmp_path / "labels.npz"
    np.savez(bad, x=np.zeros((4, 6, 5), np.float32), y=np.array([0, 1, 7, -1]))
    _one_line_failure(_run(exported()["dir"] / "full.onnx", "--data", bad, "--providers", "cpu"),
                      "InputValueError: data: labels y must be class indices in [0, 4) for the model's 4 classes; "
                      "got -1, 7")
