"""Faults the runtime must survive, each reproduced on real exported models (issues 10, 13 and
the export-set check): empty batches, zero-length sequences, bad split sizes, token ids out of
range, CLI files that cannot be read or written, threads sharing a stream, tampered export
sets, and models shipped to other processes by pickle."""

import json
import os
import pickle
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("keras")

import runtime  # noqa: E402
from runtime_fixtures import (CLASSES, STEPS, VOCAB, counter_stream_model, lstm_exports,  # noqa: E402
                              multi_io_models, sequences)

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def paths():
    return lstm_exports()


@pytest.fixture(scope="module")
def multi(tmp_path_factory):
    return multi_io_models(tmp_path_factory.mktemp("multi"))


def _python(*args, **kwargs):
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=180, **kwargs)


# -- empty batches and zero-length sequences ----------------------------------------------------------

def test_empty_batch_returns_an_empty_result_without_running_onnxruntime(paths):
    # in a child process: onnxruntime's LSTM kernel aborts the whole process on an empty batch
    code = f"""
import numpy as np, onnxruntime as ort, runtime
calls = []
real_run = ort.InferenceSession.run
def counting_run(self, *a, **k):
    calls.append(1)
    return real_run(self, *a, **k)
ort.InferenceSession.run = counting_run
model = runtime.load({str(paths['full'])!r}, providers=["cpu"], threads=1)
for x in (np.zeros((0, {STEPS}, 5), np.float32), np.zeros((0, {STEPS}, 5), np.uint8)):
    y = model.predict(x)
    print(y.shape, y.dtype, len(calls))
print(model.predict_labels(np.zeros((0, 3, 5), np.float32)))
"""
    out = _python("-c", code)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split("\n")[:3] == [f"(0, {CLASSES}) float32 0", f"(0, {CLASSES}) float32 0", "[]"]


def test_empty_batch_of_per_step_outputs_takes_the_input_steps(multi):
    model = runtime.load(multi["full"])
    out = model.predict({"x": np.zeros((0, 5, 3), np.float32), "tokens": np.zeros((0, 5), np.int64),
                         "speaker": np.zeros((0, 2), np.float32)})
    assert out["y"].shape == (0, 4) and out["z"].shape == (0, 5, 3) and out["z"].dtype == np.float32


def test_zero_length_sequences_are_refused(paths):
    full = runtime.load(paths["full"])
    with pytest.raises(runtime.InputShapeError, match=r"'x' has the time axis of length 0 .*at least one step"):
        full.predict(np.zeros((2, 0, 5), np.float32))
    stream = runtime.load(paths["stream"], batch=2)
    with pytest.raises(runtime.InputShapeError, match="positive multiple of chunk=1 steps on axis 1; got 0"):
        stream.feed(np.zeros((2, 0, 5), np.float32))


@pytest.mark.parametrize("bad", [0, -3, True, 2.5, "8"])
def test_max_batch_must_be_a_positive_integer(paths, bad):
    with pytest.raises(runtime.SettingError, match=rf"max_batch must be a positive integer.*got {bad!r}"):
        runtime.load(paths["full"]).predict(sequences(3), max_batch=bad)
    with pytest.raises(runtime.SettingError, match="max_batch"):
        runtime.Model(paths["full"], max_batch=bad)


# -- token ids ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("bad_id", [VOCAB, -1, 10**12])
def test_token_ids_outside_the_vocabulary(multi, bad_id):
    rng = np.random.default_rng(0)
    tokens = rng.integers(0, VOCAB, (2, 4))
    tokens[1, 2] = bad_id
    feed = {"x": rng.random((2, 4, 3), dtype=np.float32), "tokens": tokens,
            "speaker": rng.random((2, 2), dtype=np.float32)}
    message = rf"'tokens' holds token id {bad_id} at index \(1, 2\); ids must lie in \[0, {VOCAB}\)"
    with pytest.raises(runtime.InputValueError, match=message):
        runtime.load(multi["full"]).predict(feed)
    stream = runtime.load(multi["stream"], batch=2)
    with pytest.raises(runtime.InputValueError, match=message):
        stream.feed(feed)
    before = stream.state
    frame = {"x": feed["x"][:, 2], "tokens": tokens[:, 2:3], "speaker": feed["speaker"]}
    with pytest.raises(runtime.InputValueError, match=rf"token id {bad_id} at index \(1, 0\)"):
        stream.step(frame)
    for name, arr in stream.state.items():  # the refused step left the states alone
        np.testing.assert_array_equal(arr, before[name])


@pytest.fixture(scope="module")
def float_ids(tmp_path_factory):
    """A char model whose Input is float32 ids into an Embedding (Keras casts them)."""
    import keras
    from keras import layers as L

    from exporters.export import export_model

    keras.utils.set_random_seed(0)
    inp = keras.Input((None,))
    model = keras.Model(inp, L.Dense(5)(L.GRU(8)(L.Embedding(40, 6)(inp))), name="float_ids")
    return model, export_model(model, tmp_path_factory.mktemp("float_ids"))


@pytest.mark.parametrize("bad", [40.0, -1.0, 1e12, np.nan])
def test_float_token_ids_outside_the_vocabulary(float_ids, bad, tmp_path):
    model, res = float_ids
    assert res.report["variants"].keys() == {"full", "stream", "unrolled"}
    x = np.array([[1, 2, 39, 3], [0, 5, 6, 7]], np.float32)
    np.testing.assert_allclose(runtime.load(res.paths["full"]).predict(x), np.asarray(model(x)), atol=1e-5)
    x[1, 2] = bad
    message = "ids must lie in \\[0, 40\\) \\(vocab_size 40: it feeds an Embedding\\)"
    if np.isnan(bad):
        message = "must hold finite float32 values"
    with pytest.raises(runtime.InputValueError, match=message):
        runtime.load(res.paths["full"]).predict(x)
    for variant in ("stream", "unrolled"):
        stream = runtime.load(res.paths[variant], batch=2)
        with pytest.raises(runtime.InputValueError, match=message):
            stream.feed(x)
        with pytest.raises(runtime.InputValueError, match=message):
            stream.step(x[:, 2:3])
    np.save(tmp_path / "x.npy", x)
    assert "InputValueError" in _cli_error(res.paths["stream"], "-i", tmp_path / "x.npy")


# -- the command line ---------------------------------------------------------------------------------

def _cli_error(*args):
    out = _python("-m", "runtime", *map(str, args))
    assert out.returncode != 0, out.stdout
    assert out.stderr.count("\n") == 1 and out.stderr.startswith("rnnx: "), out.stderr
    return out.stderr


def test_cli_empty_input_files(paths, tmp_path):
    np.save(tmp_path / "empty.npy", np.zeros((0, STEPS, 5), np.float32))
    (tmp_path / "zero.npy").write_bytes(b"")
    for variant in ("full", "stream"):
        assert "holds an empty array of shape (0, 6, 5)" in _cli_error(paths[variant], "-i", tmp_path / "empty.npy")
    assert "is empty (0 bytes)" in _cli_error(paths["full"], "-i", tmp_path / "zero.npy")


def test_cli_input_whose_header_claims_more_than_the_file_holds(paths, tmp_path):
    """An .npy header that claims 18 TiB is refused from the header, before numpy allocates anything."""
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': (5000000000000,), }"
    header += " " * (63 - (10 + len(header)) % 64) + "\n"
    (tmp_path / "huge.npy").write_bytes(b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little")
                                        + header.encode() + bytes(64))
    err = _cli_error(paths["full"], "-i", tmp_path / "huge.npy")
    assert "InputFileError" in err and "claims an array of shape (5000000000000,)" in err and "holds 64 bytes" in err
    np.save(tmp_path / "cut.npy", sequences(2))
    data = (tmp_path / "cut.npy").read_bytes()
    (tmp_path / "cut.npy").write_bytes(data[:-7])             # a truncated copy
    assert "the file is truncated or its header is wrong" in _cli_error(paths["full"], "-i", tmp_path / "cut.npy")


def test_cli_labels_cannot_drive_the_terminal(paths, tmp_path):
    """Labels come from the model file: escape codes in them are shown as text, never sent to the terminal."""
    import onnx

    from exporters import metadata

    model = onnx.load(str(paths["full"]))
    meta = metadata.read(model)
    classes = len(meta["outputs"][0]["labels"])
    meta["outputs"][0]["labels"] = ["\x1b[2J\x1b[31mred", "line\nbreak"] + [f"c{k}" for k in range(2, classes)]
    metadata.attach(model, meta)
    onnx.save(model, str(tmp_path / "tampered.onnx"))
    np.save(tmp_path / "x.npy", sequences(2))
    out = _python("-m", "runtime", str(tmp_path / "tampered.onnx"), "-i", str(tmp_path / "x.npy"),
                  "--top", str(classes))
    assert out.returncode == 0, out.stderr
    assert "\x1b" not in out.stdout and "line\nbreak" not in out.stdout
    assert out.stdout.count("\\x1b[2J\\x1b[31mred") == 2 and out.stdout.count("line\\nbreak") == 2, out.stdout


def test_cli_output_that_cannot_be_written(paths, tmp_path):
    np.save(tmp_path / "x.npy", sequences(2))
    err = _cli_error(paths["full"], "-i", tmp_path / "x.npy", "--output", tmp_path / "missing" / "y.npy")
    assert "OutputFileError" in err and "does not exist" in err
    (tmp_path / "file").write_text("not a folder")
    err = _cli_error(paths["full"], "-i", tmp_path / "x.npy", "--output", tmp_path / "file" / "y.npy")
    assert "is not a directory" in err
    err = _cli_error(paths["full"], "-i", tmp_path / "x.npy", "--output", tmp_path)
    assert "is a directory" in err
    if os.geteuid() != 0:  # root writes anywhere
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o500)
        try:
            assert "no permission" in _cli_error(paths["full"], "-i", tmp_path / "x.npy", "-o", locked / "y.npy")
        finally:
            locked.chmod(0o700)
    out = _python("-m", "runtime", str(paths["full"]), "-i", str(tmp_path / "x.npy"), "-o", str(tmp_path / "y.npy"))
    assert out.returncode == 0, out.stderr
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), runtime.load(paths["full"]).predict(sequences(2)),
                               atol=1e-6)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".rnnx-")] == []


# -- threads ------------------------------------------------------------------------------------------

def test_stream_shared_between_threads_counts_every_step(tmp_path):
    """A counting state: the steps of all threads together must return 1..N, each once,
    and leave N in the state (a lost or doubled step, or a torn state, shows)."""
    shared = runtime.load(counter_stream_model(tmp_path), providers=["cpu"], threads=1)
    threads, per_thread = 4, 300
    seen, errors = [], []
    start = threading.Barrier(threads)
    zero = np.zeros(1, np.float32)

    def work():
        try:
            start.wait()
            mine = [float(shared.step(zero)[0]) for _ in range(per_thread)]
            seen.extend(mine)
            assert mine == sorted(mine)  # one thread sees its own steps in order
        except Exception as exc:  # noqa: BLE001  (reported below)
            errors.append(exc)

    pool = [threading.Thread(target=work) for _ in range(threads)]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible: without the lock, steps get lost
    try:
        for t in pool:
            t.start()
        for t in pool:
            t.join()
    finally:
        sys.setswitchinterval(interval)
    assert not errors
    total = threads * per_thread
    assert sorted(seen) == list(range(1, total + 1))
    assert shared.state["n_in_0"].tolist() == [[float(total)]]


def test_lstm_stream_shared_between_threads(paths):
    frame = sequences(1, seed=3)[0, 0]
    shared = runtime.load(paths["stream"], providers=["cpu"], threads=1)
    start = threading.Barrier(3)

    def work():
        start.wait()
        for _ in range(8):
            shared.step(frame)
            shared.state  # noqa: B018  (reading the states between steps is safe too)

    pool = [threading.Thread(target=work) for _ in range(3)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    alone = runtime.load(paths["stream"], providers=["cpu"], threads=1)
    for _ in range(24):  # 24 steps of one frame: the states still move by ~1e-3 per step
        alone.step(frame)
    for name, arr in shared.state.items():
        np.testing.assert_allclose(arr, alone.state[name], atol=1e-6)


def test_model_shared_between_threads(paths):
    model = runtime.load(paths["full"], providers=["cpu"], threads=1)
    xs = [sequences(1, seed=s) for s in range(4)]
    want = [model.predict(x) for x in xs]
    got, errors = {}, []

    def work(i):
        try:
            for _ in range(100):
                np.testing.assert_allclose(model.predict(xs[i]), want[i], atol=1e-6)
            got[i] = True
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    pool = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    assert not errors and len(got) == 4


# -- export-set integrity -----------------------------------------------------------------------------

def _export_set(paths, folder: Path) -> Path:
    """A copy of the LSTM export set whose export.json lists each model's size and sha256."""
    import hashlib
    import shutil

    folder.mkdir()
    source = Path(paths["full"]).parent
    for name in ("full.onnx", "stream.onnx", "unrolled.onnx", "export.json"):
        shutil.copy(source / name, folder / name)
    report = json.loads((folder / "export.json").read_text())
    report["files"] = {name: {"sha256": hashlib.sha256((folder / name).read_bytes()).hexdigest(),
                              "bytes": (folder / name).stat().st_size}
                       for name in ("full.onnx", "stream.onnx", "unrolled.onnx")}
    (folder / "export.json").write_text(json.dumps(report))
    return folder


def test_export_set_files_are_checked_on_load(paths, tmp_path):
    folder = _export_set(paths, tmp_path / "set")
    assert runtime.check_export_set(folder) == []
    assert isinstance(runtime.load(folder / "full.onnx"), runtime.Model)
    # a file from another export (here: another variant) copied over a listed one
    (folder / "full.onnx").write_bytes((folder / "stream.onnx").read_bytes())
    with pytest.raises(runtime.ModelFormatError,
                       match=rf"full.onnx does not belong to the export set in .*set/export.json: it has \d+ "
                             r"bytes, the manifest lists \d+"):
        runtime.load(folder / "full.onnx")
    assert runtime.check_export_set(folder)[0].startswith("full.onnx: it has")
    # same size, other bytes
    report = json.loads((folder / "export.json").read_text())
    report["files"]["stream.onnx"]["sha256"] = "0" * 64
    (folder / "export.json").write_text(json.dumps(report))
    with pytest.raises(runtime.ModelFormatError, match=r"stream.onnx does not belong .*its sha256 is [0-9a-f]{12}"):
        runtime.StreamingModel(folder / "stream.onnx")
    # a file the manifest does not list (a quantized copy made later) is not checked
    (folder / "unrolled-int8.onnx").write_bytes((folder / "unrolled.onnx").read_bytes())
    assert isinstance(runtime.load(folder / "unrolled-int8.onnx"), runtime.StreamingModel)
    (folder / "unrolled.onnx").unlink()
    assert "unrolled.onnx: the file is missing" in runtime.check_export_set(folder)


@pytest.mark.parametrize("text, message", [
    ("{not json", "is corrupt: not valid JSON"),
    ("[1]", "expected a JSON object"),
    ('{"files": ["full.onnx"]}', "'files' must be an object"),
    ('{"files": {"full.onnx": {"sha256": "abc", "bytes": 1}}}', r"files\['full.onnx'\] must be"),
    ('{"files": {"../full.onnx": {"sha256": "' + "0" * 64 + '", "bytes": 1}}}', "plain file name"),
])
def test_corrupt_export_json_is_a_format_error(paths, tmp_path, text, message):
    folder = _export_set(paths, tmp_path / "set")
    (folder / "export.json").write_text(text)
    with pytest.raises(runtime.ModelFormatError, match=message):
        runtime.load(folder / "full.onnx")
    with pytest.raises(runtime.ModelFormatError, match=message):
        runtime.check_export_set(folder)


def test_the_exporters_own_export_set_passes(paths, tmp_path):
    folder = Path(paths["full"]).parent
    report = json.loads((folder / "export.json").read_text())
    assert set(report.get("files", {})) >= {"full.onnx", "stream.onnx", "unrolled.onnx"}
    assert runtime.check_export_set(folder) == []


def test_export_json_without_files_is_not_checked(paths, tmp_path):
    folder = _export_set(paths, tmp_path / "set")
    report = json.loads((folder / "export.json").read_text())
    del report["files"]  # as rnnx wrote it before it recorded the files
    (folder / "export.json").write_text(json.dumps(report))
    (folder / "full.onnx").write_bytes((folder / "stream.onnx").read_bytes())
    assert runtime.check_export_set(folder) == []
    assert isinstance(runtime.load(folder / "full.onnx"), runtime.StreamingModel)


# -- pickling (issue 13) ------------------------------------------------------------------------------

def test_model_pickles_by_bytes_and_settings(paths):
    model = runtime.Model(paths["full"], providers=["cpu"], threads=1, max_batch=3)
    model.predict(sequences(1))  # a pre-bound shape is not part of what travels
    blob = pickle.dumps(model)
    assert Path(paths["full"]).read_bytes() in blob  # the model's bytes, not a path to them
    copy = pickle.loads(blob)
    assert isinstance(copy, runtime.Model) and copy is not model
    assert copy.max_batch == 3 and copy.providers == ["CPUExecutionProvider"]
    assert copy.path == model.path and copy.labels == model.labels
    xs = sequences(7, seed=11)
    np.testing.assert_array_equal(copy.predict(xs), model.predict(xs))


def test_stream_pickles_with_its_states(paths):
    xs = sequences(2, seed=12)
    model = runtime.load(paths["stream"], batch=2, providers=["cpu"], threads=1)
    model.feed(xs[:, :3])
    copy = pickle.loads(pickle.dumps(model))
    assert copy.batch == 2 and copy.chunk == 1
    for name, arr in model.state.items():
        np.testing.assert_array_equal(copy.state[name], arr)
    np.testing.assert_array_equal(copy.feed(xs[:, 3:]), model.feed(xs[:, 3:]))


def test_pickling_a_model_whose_file_changed_is_refused(paths, tmp_path):
    import shutil

    path = tmp_path / "full.onnx"
    shutil.copy(paths["full"], path)
    model = runtime.load(path)
    path.write_bytes(Path(paths["stream"]).read_bytes())
    with pytest.raises(runtime.ModelFormatError, match="changed since it was opened"):
        pickle.dumps(model)
    shipped = pickle.loads(pickle.dumps(runtime.load(Path(paths["full"]).read_bytes())))  # opened from bytes
    assert shipped.path == "<bytes>"


def test_process_pool_scores_with_a_pickled_model(paths, tmp_path):
    """examples/score_folder.py: a spawn pool of 2 workers, each unpickling the model once."""
    folder = tmp_path / "batches"
    folder.mkdir()
    for k in range(5):
        np.save(folder / f"b{k}.npy", sequences(3, seed=20 + k))
    np.save(folder / "one.npy", sequences(1, seed=30)[0])  # one sequence without the batch axis
    out = _python("examples/score_folder.py", str(paths["full"]), str(folder), "--processes", "2",
                  "--output", str(tmp_path / "scores.npz"))
    assert out.returncode == 0, out.stderr[-2000:]
    assert "16 samples in" in out.stdout and "with 2 process(es)" in out.stdout
    model = runtime.load(paths["full"])
    with np.load(tmp_path / "scores.npz") as scores:
        assert sorted(scores) == sorted(p.name for p in folder.iterdir())
        for k in range(5):
            np.testing.assert_allclose(scores[f"b{k}.npy"], model.predict(sequences(3, seed=20 + k)), atol=1e-6)
        np.testing.assert_allclose(scores["one.npy"], model.predict(sequences(1, seed=30)), atol=1e-6)


def test_pool_map_with_a_bound_predict(paths):
    import multiprocessing

    model = runtime.load(paths["full"], providers=["cpu"], threads=1)
    batches = [sequences(2, seed=s) for s in range(4)]
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        results = pool.map(model.predict, batches)  # the bound method pickles its model
    for got, x in zip(results, batches):
        np.testing.assert_allclose(got, model.predict(x), atol=1e-6)


def test_a_stream_keeps_its_model_when_the_file_is_replaced_under_it(paths, tmp_path):
    """An edge app updates its model file (atomic rename) while a StreamingModel is open: the
    open stream goes on with the model it loaded, states and all; loading the path again gets
    the new file, and the export set's manifest refuses a file that does not belong to it."""
    import shutil

    folder = tmp_path / "set"
    shutil.copytree(Path(paths["stream"]).parent, folder)
    path = folder / "stream.onnx"
    xs = sequences(2, seed=7)
    stream = runtime.load(path, batch=2)
    want = [stream.step(xs[:, t]) for t in range(STEPS)]
    stream.reset()
    got = [stream.step(xs[:, t]) for t in range(3)]
    new = tmp_path / "new.onnx"
    new.write_bytes(Path(paths["unrolled"]).read_bytes())
    os.replace(new, path)                                   # replaced mid-sequence
    got += [stream.step(xs[:, t]) for t in range(3, STEPS)]
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)
    with pytest.raises(runtime.ModelFormatError, match="does not belong to the export set"):
        runtime.load(path, batch=2)
    (folder / "export.json").unlink()                       # a lone file: the new one loads
    assert runtime.load(path, batch=2).contract.variant == "unrolled"


def test_a_model_loaded_before_a_fork_runs_in_the_child(paths):
    """A server that loads the model, then forks workers (gunicorn's preload, multiprocessing's
    fork): each child computes what the parent does, without hanging on the parent's threads."""
    import multiprocessing

    model = runtime.load(paths["full"], threads=2)
    stream = runtime.load(paths["stream"], batch=2)
    xs = sequences(2, seed=8)
    want, stream_want = model.predict(xs), stream.feed(xs)
    stream.reset()
    with multiprocessing.get_context("fork").Pool(2) as pool:
        got = pool.map_async(_predict_in_child, [(model, stream, xs)] * 3).get(timeout=60)
    for full_out, stream_out in got:
        np.testing.assert_array_equal(full_out, want)
        np.testing.assert_array_equal(stream_out, stream_want)


def _predict_in_child(args):
    model, stream, xs = args
    return model.predict(xs), stream.feed(xs)
