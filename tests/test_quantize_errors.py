"""Bad input to quantization: typed errors from the API, one-line errors from `rnnx quantize`,
and nothing half-written either way."""

import warnings
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tf2onnx")

import onnx  # noqa: E402
from click.testing import CliRunner  # noqa: E402
from quantize_cases import case  # noqa: E402

from exporters.cli import cli  # noqa: E402
from exporters.errors import (ConfigError, DataError, InputShapeError, ModelFormatError, OutputError,  # noqa: E402
                              QuantizationError)
from exporters.quantize import quantize_model  # noqa: E402
from runtime.errors import UncheckedModelWarning  # noqa: E402


@pytest.fixture(scope="module")
def lstm(fashion):
    return case("lstm", fashion)


def _run(*args):
    return CliRunner().invoke(cli, ["quantize", *map(str, args)], catch_exceptions=False)


def _one_line_error(res, kind: str) -> str:
    """The error is one line, `rnnx: Kind: message`, last on stderr (after any progress lines)."""
    assert res.exit_code == 1, res.output
    errors = [line for line in res.stderr.splitlines() if line.startswith("rnnx: ")]
    assert len(errors) == 1 and errors[0].startswith(f"rnnx: {kind}: "), res.stderr
    assert res.stderr.strip().splitlines()[-1] == errors[0]
    assert "Traceback" not in res.output and not res.stdout
    return errors[0]


def test_cli_quantizes_and_prints_the_figures(lstm, tmp_path):
    out = tmp_path / "q" / "stream.int8-dynamic.onnx"
    res = _run(lstm.paths["stream"], "--mode", "int8-dynamic", "--out", out, "--eval", lstm.evaluation)
    assert res.exit_code == 0, res.stderr
    line = res.stdout.strip()
    assert line.startswith(f"int8-dynamic\t{out}\tsize ") and "recurrent weights int8" in line
    assert "accuracy " in line and "drop " in line and "argmax agreement" in line
    assert "rnnx quantize: int8-dynamic: wrote" in res.stderr
    assert out.exists()


def test_cli_gru_note_and_static_with_options(fashion, tmp_path):
    gru = case("gru", fashion)
    res = _run(gru.paths["full"], "--mode", "int8-dynamic", "--out", tmp_path / "a.onnx")
    assert res.exit_code == 0 and "note: onnxruntime has no quantized GRU op" in res.stderr
    res = _run(gru.paths["unrolled"], "--mode", "int8-static", "--out", tmp_path / "b.onnx",
               "--calibration", gru.calibration, "--calibration-method", "percentile", "--per-channel",
               "--eval", gru.evaluation, "--max-drop", "3", "--json")
    assert res.exit_code == 0, res.stderr
    import json

    report = json.loads(res.stdout)
    assert report["calibration"]["method"] == "percentile" and report["per_channel"] is True
    assert report["accuracy"]["max_drop"] == 3.0


def test_gate_failure_is_one_line_and_writes_nothing(lstm, tmp_path):
    damaged = tmp_path / "damaged.npz"
    np.savez(damaged, x=np.load(lstm.calibration)["x"] * 50.0)
    out = tmp_path / "u.onnx"
    res = _run(lstm.paths["unrolled"], "--mode", "int8-static", "--calibration", damaged,
               "--eval", lstm.evaluation, "--out", out, "--mixed", "off")
    line = _one_line_error(res, "QuantizationError")
    assert "accuracy dropped" in line and "nothing written" in line
    assert list(tmp_path.iterdir()) == [damaged]
    # by default the layer that breaks the gate stays fp32 and the rest is int8
    res = _run(lstm.paths["unrolled"], "--mode", "int8-static", "--calibration", damaged,
               "--eval", lstm.evaluation, "--out", out)
    assert res.exit_code == 0, res.stderr
    assert "precision mixed: fp32 " in res.stdout and "sensitivity of" in res.stderr and out.exists()


@pytest.mark.parametrize("bad, expected", [
    (lambda x: x[:, :, :20], "has shape (128, 28, 20); expected (N, T, 28)"),
    (lambda x: x[:, :, :, None], "expected (N, T, 28)"),
    (lambda x: (x * 255).astype(np.int64), "has dtype int64; expected float32"),
    (lambda x: x.astype(str), "has dtype <U"),
])
def test_calibration_of_wrong_shape_or_dtype(lstm, tmp_path, bad, expected):
    x = np.load(lstm.calibration)["x"]
    path = tmp_path / "bad.npz"
    np.savez(path, x=bad(x))
    out = tmp_path / "out.onnx"
    with pytest.raises(InputShapeError, match="calibration data 'x'") as err:
        quantize_model(lstm.paths["full"], out, "int8-static", calibration=path)
    assert expected in str(err.value)
    line = _one_line_error(_run(lstm.paths["full"], "--mode", "int8-static", "--calibration", path,
                                "--out", out), "InputShapeError")
    assert expected in line
    assert not out.exists()


def test_stream_shape_message_names_the_chunk(lstm, tmp_path):
    with pytest.raises(InputShapeError, match=r"expected \(N, T, 28\) with T a multiple of chunk 1"):
        quantize_model(lstm.paths["stream"], tmp_path / "o.onnx", "int8-static",
                       calibration=np.zeros((4, 28, 27), np.float32))


def test_uint8_pixels_are_scaled_by_the_metadata(lstm, tmp_path):
    x = (np.load(lstm.calibration)["x"] * 255).round().astype(np.uint8)
    rep = quantize_model(lstm.paths["unrolled"], tmp_path / "o.onnx", "int8-static", calibration=x)
    assert not rep["warnings"] and rep["calibration"]["samples"] == 128


def test_evaluation_data_errors(lstm, tmp_path):
    ev = np.load(lstm.evaluation)
    no_labels = tmp_path / "nolabels.npz"
    np.savez(no_labels, x=ev["x"])
    with pytest.raises(DataError, match="no integer labels 'y'"):
        quantize_model(lstm.paths["full"], tmp_path / "o.onnx", "fp16", evaluation=no_labels)
    with pytest.raises(InputShapeError, match=r"labels 'y' have shape \(299,\); expected \(300,\)"):
        quantize_model(lstm.paths["full"], tmp_path / "o.onnx", "fp16", evaluation=(ev["x"], ev["y"][:-1]))
    with pytest.raises(InputShapeError, match="dtype float64; expected integer"):
        quantize_model(lstm.paths["full"], tmp_path / "o.onnx", "fp16", evaluation=(ev["x"], ev["y"] * 1.0))
    with pytest.raises(DataError, match="does not exist"):
        quantize_model(lstm.paths["full"], tmp_path / "o.onnx", "fp16", evaluation=tmp_path / "none.npz")
    assert not (tmp_path / "o.onnx").exists()


def test_unknown_mode_method_and_bad_max_drop(lstm, tmp_path):
    out = tmp_path / "o.onnx"
    with pytest.raises(ConfigError, match="unknown quantization mode 'int4'; expected one of int8-dynamic"):
        quantize_model(lstm.paths["full"], out, "int4")
    with pytest.raises(ConfigError, match="unknown calibration method 'kl'"):
        quantize_model(lstm.paths["full"], out, "int8-static", calibration=lstm.calibration, method="kl")
    with pytest.raises(ConfigError, match="max_drop must be a number"):
        quantize_model(lstm.paths["full"], out, "fp16", max_drop=-1)
    with pytest.raises(ConfigError, match="int8-static needs calibration data"):
        quantize_model(lstm.paths["full"], out, "int8-static")
    line = _one_line_error(_run(lstm.paths["full"], "--mode", "int4", "--out", out), "ConfigError")
    assert "int8-dynamic, int8-static, fp16" in line
    _one_line_error(_run(lstm.paths["full"], "--mode", "fp16", "--out", out, "--calibration-method", "kl"),
                    "ConfigError")
    assert not out.exists()


def test_existing_output_needs_force(lstm, tmp_path):
    out = tmp_path / "o.onnx"
    out.write_bytes(b"keep me")
    with pytest.raises(ConfigError, match="already exists; pass --force"):
        quantize_model(lstm.paths["full"], out, "fp16")
    line = _one_line_error(_run(lstm.paths["full"], "--mode", "fp16", "--out", out), "ConfigError")
    assert "already exists" in line and out.read_bytes() == b"keep me"
    with pytest.raises(ConfigError, match="is the fp32 source itself"):
        quantize_model(lstm.paths["full"], lstm.paths["full"], "fp16", force=True)
    with pytest.raises(ConfigError, match="is a directory"):
        quantize_model(lstm.paths["full"], tmp_path, "fp16", force=True)
    assert _run(lstm.paths["full"], "--mode", "fp16", "--out", out, "--force").exit_code == 0
    assert onnx.load(str(out)).graph.node  # replaced by the model
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.onnx"]  # no temp files left behind


def test_not_an_onnx_file_or_missing(lstm, tmp_path):
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x00not a model at all")
    with pytest.raises(ModelFormatError):
        quantize_model(junk, tmp_path / "o.onnx", "fp16")
    _one_line_error(_run(tmp_path / "missing.onnx", "--mode", "fp16", "--out", tmp_path / "o.onnx"),
                    "ModelFormatError")
    assert not (tmp_path / "o.onnx").exists()


def test_already_quantized_source_is_refused(lstm, tmp_path):
    q = tmp_path / "q.onnx"
    quantize_model(lstm.paths["full"], q, "fp16")
    with pytest.raises(QuantizationError, match="already quantized \\(precision 'fp16'\\)"):
        quantize_model(q, tmp_path / "qq.onnx", "int8-dynamic")


def test_plain_onnx_without_rnnx_metadata_is_quantized_with_a_warning(lstm, tmp_path):
    model = onnx.load(str(lstm.paths["full"]))
    del model.metadata_props[:]
    plain = tmp_path / "plain.onnx"
    onnx.save(model, str(plain))
    with pytest.warns(UncheckedModelWarning, match="no 'rnnx' metadata"):
        rep = quantize_model(plain, tmp_path / "plain.int8.onnx", "int8-static",
                             calibration=lstm.calibration, evaluation=lstm.evaluation, max_drop=5)
    assert rep["rnnx_metadata"] is False and rep["variant"] is None
    assert any("no 'rnnx' metadata" in w for w in rep["warnings"])
    assert rep["accuracy"]["drop_points"] <= 5
    assert not onnx.load(str(tmp_path / "plain.int8.onnx")).metadata_props or \
        "rnnx" not in {p.key for p in onnx.load(str(tmp_path / "plain.int8.onnx")).metadata_props}
    res = _run(plain, "--mode", "int8-dynamic", "--out", tmp_path / "cli.onnx")
    assert res.exit_code == 0 and "warning: plain.onnx has no 'rnnx' metadata" in res.stderr

    # a plain stream model (several inputs) quantizes without data, but cannot be calibrated
    stream = onnx.load(str(lstm.paths["stream"]))
    del stream.metadata_props[:]
    onnx.save(stream, str(tmp_path / "plain_stream.onnx"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UncheckedModelWarning)
        with pytest.raises(ConfigError, match="only a single-input plain model can be evaluated"):
            quantize_model(tmp_path / "plain_stream.onnx", tmp_path / "s.onnx", "int8-dynamic")
        with pytest.raises(QuantizationError, match="calibration can only feed a single input"):
            quantize_model(tmp_path / "plain_stream.onnx", tmp_path / "s.onnx", "int8-static",
                           calibration=np.zeros((2, 1, 28), np.float32))
    assert not (tmp_path / "s.onnx").exists()


def _units(meta):
    meta["states"][0]["shape"] = [None, meta["states"][0]["shape"][1] + 3]


def _feature(meta):
    meta["inputs"][0]["shape"][-1] += 4


def _chunk(meta):
    meta["chunk"] = 3
    meta["inputs"][0]["shape"][1] = 3


def _marked_full(meta):
    meta.update(variant="full", states=[], chunk=None)


@pytest.mark.parametrize("tamper, needle", [
    (_units, "state tensor 'h_in_0' has"), (lambda m: m.update(states=m["states"][:1]), "does not declare"),
    (_feature, "on axis 2 in the graph"), (_chunk, "on axis 1 in the graph"),
    (_marked_full, "but its rnnx metadata says variant 'full'")])
def test_metadata_that_disagrees_with_the_graph_is_a_model_format_error(lstm, tmp_path, tamper, needle):
    """The runtime's one check of metadata against graph, before any onnxruntime run of the source."""
    from exporters import metadata

    model = onnx.load(str(lstm.paths["stream"]))
    meta = metadata.read(model)
    tamper(meta)
    metadata.attach(model, meta)
    onnx.save(model, str(tmp_path / "tampered.onnx"))
    with pytest.raises(ModelFormatError, match=needle):
        quantize_model(tmp_path / "tampered.onnx", tmp_path / "q.onnx", "int8-dynamic")
    line = _one_line_error(_run(tmp_path / "tampered.onnx", "--mode", "fp16", "--out", tmp_path / "q.onnx"),
                           "ModelFormatError")
    assert needle in line
    assert not (tmp_path / "q.onnx").exists()


def test_an_out_path_that_cannot_be_a_folder_fails_before_the_work(lstm, tmp_path):
    from fs_faults import remount_read_only, tmpfs

    (tmp_path / "afile").write_text("not a folder")
    line = _one_line_error(_run(lstm.paths["full"], "--mode", "fp16", "--out", tmp_path / "afile" / "sub" / "q.onnx"),
                           "OutputError")
    assert "is a file, not a folder" in line
    with tmpfs(tmp_path / "mnt", "64k") as mnt:
        remount_read_only(mnt)
        res = _run(lstm.paths["full"], "--mode", "fp16", "--out", mnt / "new" / "q.onnx")
        assert "read-only" in _one_line_error(res, "OutputError")
        assert "comparing with fp32" not in res.stderr        # refused before any quantization work


def test_the_quantizers_scratch_stays_in_the_private_workspace(lstm, tmp_path, monkeypatch):
    """onnxruntime's pre-processing makes `pre.quant.*` folders with tempfile; a SIGKILLed run left
    them in the system temp folder, where no sweep removes them. They belong in rnnx's workspace."""
    import tempfile

    made, real = [], tempfile.mkdtemp

    def spy(*args, **kwargs):
        path = real(*args, **kwargs)
        made.append(path)
        return path

    monkeypatch.setattr(tempfile, "mkdtemp", spy)
    quantize_model(lstm.paths["stream"], tmp_path / "q.onnx", "int8-dynamic", max_drop=100.0, latency_reps=0)
    scratch = [p for p in made if "pre.quant" in p]
    assert scratch, made                                       # the pre-processing ran
    assert all("/rnnx-quantize-" in p for p in scratch), scratch
    assert not any(Path(p).exists() for p in made)             # and nothing is left behind


def test_a_converted_model_that_crashes_onnxruntime_is_a_typed_error(tmp_path):
    """One GRU sequence feeding an LSTM and a TimeDistributed output: onnxruntime 1.32 segfaults
    loading its fp16 copy. Every fresh conversion is opened in a child process first, so the
    command says so instead of dying with signal 11 (and a fixed onnxruntime just quantizes it)."""
    import subprocess
    import sys

    import keras
    from keras import layers as L

    from exporters.export import export_model

    keras.utils.set_random_seed(0)
    inp = keras.Input((None, 6))
    seq = L.GRU(8, return_sequences=True)(inp)
    model = keras.Model(inp, [L.Dense(2)(L.LSTM(5)(seq)), L.TimeDistributed(L.Dense(3))(seq)], name="shared_seq")
    res = export_model(model, tmp_path / "export", variants=["full"])
    rnnx = str(Path(sys.executable).parent / "rnnx")
    run = subprocess.run([rnnx, "quantize", str(res.paths["full"]), "--mode", "fp16", "--allow-larger",
                          "--out", str(tmp_path / "q.onnx")], capture_output=True, text=True, timeout=600)
    assert run.returncode in (0, 1), (run.returncode, run.stderr[-2000:])      # never killed by a signal
    if run.returncode == 1:
        assert run.stderr.strip().splitlines()[-1].startswith(
            "rnnx: QuantizationError: fp16 of full.onnx: onnxruntime"), run.stderr
        assert "cannot load the converted model" in run.stderr and not (tmp_path / "q.onnx").exists()
    else:
        import runtime

        assert runtime.load(tmp_path / "q.onnx").contract.precision == "fp16"


@pytest.mark.parametrize("mode", ["int8-dynamic", "fp16"])
def test_a_disk_that_fills_during_quantize_is_an_output_error_that_leaves_nothing(lstm, tmp_path, monkeypatch,
                                                                                mode):
    """The quantizer writes the model several times over into its scratch folder: when that
    disk fills (a small /tmp on a board), the run ends with one typed line naming the folder,
    writes no output and leaves no scratch behind."""
    import tempfile

    from fs_faults import tmpfs

    assert Path(lstm.paths["stream"]).stat().st_size > 16 * 1024
    with tmpfs(tmp_path / "small_tmp", "16k") as small:
        monkeypatch.setattr(tempfile, "tempdir", str(small))
        out = tmp_path / "q.onnx"
        line = _one_line_error(_run(lstm.paths["stream"], "--mode", mode, "--out", out), "OutputError")
        assert "no room for the quantizer's scratch files in " + str(small) in line, line
        assert not out.exists() and not list(small.iterdir())
        with pytest.raises(OutputError, match="No space left on device"):
            quantize_model(lstm.paths["stream"], out, mode, latency_reps=0)
        assert not out.exists() and not list(small.iterdir())
