"""The edge package stays light: no TensorFlow, Keras, tf2onnx or onnx behind `import runtime`;
and its command line prints predictions with one-line errors."""

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("tensorflow", "keras", "tf2onnx", "onnx")


def _python(*args, **kwargs):
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, **kwargs)


def test_import_runtime_pulls_no_heavy_module():
    code = ("import sys, runtime, runtime.cli; "
            f"print(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r}))")
    out = _python("-c", code)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_cli_prints_predictions_and_one_line_errors(tmp_path):
    pytest.importorskip("keras")
    from runtime_fixtures import LABELS, lstm_exports, sequences

    paths = lstm_exports()
    np.save(tmp_path / "x.npy", sequences(2))
    for variant in ("full", "stream"):
        out = _python("-m", "runtime", str(paths[variant]), "--input", str(tmp_path / "x.npy"))
        assert out.returncode == 0, out.stderr
        lines = out.stdout.splitlines()
        assert len(lines) == 2 and lines[0].split("\t")[1] in LABELS

    np.save(tmp_path / "bad.npy", np.zeros((2, 6, 4), np.float32))
    out = _python("-m", "runtime", str(paths["full"]), "--input", str(tmp_path / "bad.npy"))
    assert out.returncode == 1
    assert out.stderr.count("\n") == 1 and out.stderr.startswith("rnnx: InputShapeError:")
    out = _python("-m", "runtime", str(tmp_path / "none.onnx"), "--input", str(tmp_path / "x.npy"))
    assert out.returncode == 1 and out.stderr.startswith("rnnx: ModelFormatError:")


def test_stream_frames_example_prints_the_running_prediction(tmp_path):
    pytest.importorskip("keras")
    import runtime
    from runtime_fixtures import LABELS, lstm_exports, sequences

    paths = lstm_exports()
    xs = sequences(2, seed=5)
    expected = runtime.load(paths["full"]).predict_labels(xs)
    np.save(tmp_path / "one.npy", xs[0])  # one sequence (T, features)
    np.save(tmp_path / "two.npy", xs)     # two streams side by side
    for name, want in (("one", expected[:1]), ("two", expected)):
        out = _python("examples/stream_frames.py", str(paths["stream"]), str(tmp_path / f"{name}.npy"))
        assert out.returncode == 0, out.stderr
        lines = out.stdout.splitlines()
        assert len(lines) == 1 + xs.shape[1]  # a header, then one line per frame
        assert lines[-1].startswith("t=  6")
        got = [cell.split()[0] for cell in re.sub(r"^t=\s*\d+\s+", "", lines[-1]).split("|")]
        assert got == want and set(got) <= set(LABELS)
