"""`rnnx export` and `rnnx inspect` from the command line (click, in process)."""

import json

import numpy as np
import pytest

pytest.importorskip("tf2onnx")

from click.testing import CliRunner  # noqa: E402
from export_cases import extra_model, saved  # noqa: E402

from exporters.cli import cli  # noqa: E402


@pytest.fixture(scope="module")
def model_path():
    return saved("cli_stacked", extra_model("stacked_lstm_gru"))


def _run(*args):
    return CliRunner().invoke(cli, list(map(str, args)), catch_exceptions=False)


def test_export_writes_variants_report_and_progress(model_path, tmp_path):
    labels = tmp_path / "labels.txt"
    labels.write_text("cat\ndog\nowl\n")
    out = tmp_path / "out"
    res = _run("export", model_path, "--out", out, "--variants", "full,unrolled", "--chunk", "2",
               "--labels", labels, "--uint8-scale", "--atol", "1e-4")
    assert res.exit_code == 0, res.stderr
    assert sorted(p.name for p in out.iterdir()) == ["export.json", "full.onnx", "unrolled.onnx"]
    report = json.loads((out / "export.json").read_text())
    assert report["chunk"] == 2 and report["atol"] == 1e-4 and report["output"]["labels"] == ["cat", "dog", "owl"]
    assert "rnnx export: full: validating against Keras" in res.stderr
    assert res.stdout.splitlines()[0].startswith("full\t")

    shown = _run("inspect", out / "unrolled.onnx")
    assert shown.exit_code == 0
    for text in ("x ", "h_in_0", "c_in_0", "h_out_1", "variant    unrolled", "chunk      2",
                 "labels=['cat', 'dog', 'owl']", "uint8_scale", "MatMul", "parity"):
        assert text in shown.stdout
    as_json = json.loads(_run("inspect", out / "full.onnx", "--json").stdout)
    assert as_json["inputs"][0]["name"] == "x" and as_json["rnnx"]["variant"] == "full"
    assert as_json["op_counts"]["LSTM"] == 1 and as_json["op_counts"]["GRU"] == 1


def _one_line_failure(res, needle, progress_first=False):
    """Exit 1 and the error as one `rnnx: ` line (after progress lines only when asked)."""
    assert res.exit_code == 1
    lines = res.stderr.strip().splitlines()
    if progress_first:
        assert all(line.startswith("rnnx export: ") for line in lines[:-1])
        lines = lines[-1:]
    assert len(lines) == 1 and lines[0].startswith("rnnx: ") and needle in lines[0], res.stderr
    assert "Traceback" not in res.stderr


def test_export_of_a_file_that_is_not_a_model(tmp_path):
    bogus = tmp_path / "bogus.keras"
    bogus.write_bytes(b"\x00" * 64)
    res = _run("export", bogus, "--out", tmp_path / "out")
    _one_line_failure(res, "ModelFormatError")
    assert not (tmp_path / "out").exists()


def test_export_into_a_file(model_path, tmp_path):
    target = tmp_path / "file"
    target.write_text("x")
    _one_line_failure(_run("export", model_path, "--out", target), "is a file")


def test_export_with_samples_of_the_wrong_shape(model_path, tmp_path):
    np.savez(tmp_path / "s.npz", x=np.zeros((2, 6, 4), np.float32))
    res = _run("export", model_path, "--out", tmp_path / "out", "--samples", tmp_path / "s.npz")
    _one_line_failure(res, "InputShapeError")
    assert not (tmp_path / "out").exists()


def test_parity_failure_is_one_line_and_writes_nothing(model_path, tmp_path):
    res = _run("export", model_path, "--out", tmp_path / "out", "--atol", "1e-30")
    _one_line_failure(res, "ParityError", progress_first=True)
    assert "worst element y[" in res.stderr
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_inspect_of_a_non_onnx_file(tmp_path):
    junk = tmp_path / "junk.onnx"
    junk.write_text("not a protobuf at all, just words")
    _one_line_failure(_run("inspect", junk), "ModelFormatError")


@pytest.mark.parametrize("command", ["export", "inspect"])
def test_help_explains_every_option(command):
    res = _run(command, "--help")
    assert res.exit_code == 0
    options = {"export": ["--out", "--variants", "--chunk", "--opset", "--atol", "--samples", "--labels",
                          "--uint8-scale"], "inspect": ["--json"]}[command]
    for opt in options:
        line = next(line for line in res.stdout.splitlines() if line.strip().startswith(opt))
        assert len(line.split(opt, 1)[1].strip()) > 10, f"{opt} has no help text"


def test_real_console_prints_exactly_one_line_on_error(tmp_path):
    """Out of process, TensorFlow's load-time notices must not reach stderr either."""
    import os
    import subprocess
    import sys

    import zipfile

    bogus = tmp_path / "bogus.keras"  # a zip, so Keras (and TensorFlow) load before it is refused
    with zipfile.ZipFile(bogus, "w") as zf:
        zf.writestr("notes.txt", "not a model")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TF_")}
    proc = subprocess.run([sys.executable, "-m", "exporters", "export", str(bogus), "--out", str(tmp_path / "o")],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()] and proc.stderr.startswith("rnnx: ")
    assert not (tmp_path / "o").exists()


def test_layers_lists_the_registry_as_text_markdown_and_json():
    text = _run("layers")
    assert text.exit_code == 0
    rows = {line.split()[0]: line for line in text.stdout.splitlines()}
    assert "Bidirectional" in rows and "full " in rows["Bidirectional"] and "stream" not in rows["Bidirectional"]
    assert "full,stream,unrolled" in rows["LSTM"]
    md = _run("layers", "--markdown").stdout.splitlines()
    assert md[0] == "| Keras layer or operation | variants | emitted as |" and any(r.startswith("| `GRU` |") for r in md)
    assert "full,stream,unrolled" in rows["ops.GetItem"] and any(r.startswith("| `ops.GetItem` |") for r in md)
    from exporters.graph.registry import table

    assert [r["layer"] for r in json.loads(_run("layers", "--json").stdout)] == [r["layer"] for r in table()]


def test_default_export_of_a_bidirectional_model_writes_full_says_why_and_exits_0(tmp_path):
    import keras

    inp = keras.Input((None, 3))
    model = keras.Model(inp, keras.layers.Bidirectional(keras.layers.GRU(4), name="bi")(inp))
    path = tmp_path / "bi.keras"
    model.save(path)
    res = _run("export", path, "--out", tmp_path / "out")
    assert res.exit_code == 0, res.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["export.json", "full.onnx"]
    assert "rnnx export: stream: skipped: layer 'bi' (Bidirectional)" in res.stderr
    asked = _run("export", path, "--out", tmp_path / "out2", "--variants", "full,stream")
    _one_line_failure(asked, "cannot export stream: layer 'bi' (Bidirectional)")
    assert not (tmp_path / "out2").exists() or not any((tmp_path / "out2").iterdir())


def test_inspect_flags_a_file_that_does_not_belong_to_its_export_set(model_path, tmp_path):
    out = tmp_path / "out"
    assert _run("export", model_path, "--out", out, "--variants", "full,stream").exit_code == 0
    assert "export set: matches" in _run("inspect", out / "stream.onnx").stdout
    other = tmp_path / "other"
    assert _run("export", model_path, "--out", other, "--variants", "stream", "--chunk", "2").exit_code == 0
    (out / "stream.onnx").write_bytes((other / "stream.onnx").read_bytes())  # a file from another export
    shown = _run("inspect", out / "stream.onnx")
    assert shown.exit_code == 0 and "export set: DOES NOT MATCH" in shown.stdout


def test_each_command_module_imports_alone():
    """No import cycle between the command group and its commands (importing one alone works)."""
    import subprocess
    import sys

    for module in ("exporters.cli.export", "exporters.cli.quantize", "exporters.cli.bench", "exporters.cli.layers"):
        res = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True, text=True, timeout=120)
        assert res.returncode == 0, f"{module}: {res.stderr[-500:]}"


@pytest.mark.parametrize("field", ["states", "source", "parity"])
def test_inspect_shows_schema_valid_null_fields(model_path, tmp_path, field):
    import onnx

    from exporters import metadata

    out = tmp_path / "out"
    assert _run("export", model_path, "--out", out, "--variants", "stream").exit_code == 0
    model = onnx.load(str(out / "stream.onnx"))
    meta = metadata.read(model)
    meta[field] = None                     # the schema takes null for these optional fields
    metadata.attach(model, meta)
    onnx.save(model, str(tmp_path / "null.onnx"))
    shown = CliRunner().invoke(cli, ["inspect", str(tmp_path / "null.onnx")])
    assert shown.exit_code == 0, shown.output
    assert "rnnx metadata:" in shown.output and "variant    stream" in shown.output


def test_a_labels_file_that_is_not_utf8_is_one_line(model_path, tmp_path):
    labels = tmp_path / "labels.txt"
    labels.write_bytes("chat\nchien\nhibou\n".encode("utf-16"))
    res = CliRunner().invoke(cli, ["export", str(model_path), "--out", str(tmp_path / "out"), "--labels", str(labels)])
    assert res.exit_code == 1 and "Traceback" not in res.output
    assert "is not UTF-8 text" in res.stderr and "expected one label per line" in res.stderr, res.stderr
    assert not (tmp_path / "out").exists()


def test_export_and_bench_print_only_rnnx_lines(model_path, tmp_path):
    """TensorFlow, absl and the TFLite converter keep quiet unless --verbose, with no TF_CPP_MIN_LOG_LEVEL set."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    rnnx = str(Path(sys.executable).parent / "rnnx")
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    out = tmp_path / "out"
    run = subprocess.run([rnnx, "export", str(model_path), "--out", str(out), "--variants", "full,stream"],
                         capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stderr
    assert all(line.startswith("rnnx export: ") for line in run.stderr.splitlines()), run.stderr
    assert [line.split("\t")[0] for line in run.stdout.splitlines()] == ["full", "stream"], run.stdout
    run = subprocess.run([rnnx, "bench", str(out), "--keras", str(model_path), "--batch", "1", "--reps", "3",
                          "--rounds", "1", "--streams", "1", "--sweep", "", "--threads", "1"],
                         capture_output=True, text=True, env=env, timeout=600)
    assert run.returncode == 0, run.stderr
    assert all(line.startswith("rnnx") for line in run.stderr.splitlines()), run.stderr
    assert "Saved artifact" not in run.stdout and "absl" not in run.stdout + run.stderr, run.stdout
