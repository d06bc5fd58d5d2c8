"""The rnnx contract (format 2, and format 1 converted): one strict schema, then the graph check."""

import copy
import json
import re

import numpy as np
import pytest

import runtime
from runtime.contract import Contract, state_names

DOC = {
    "format": 2, "variant": "stream", "chunk": 1, "precision": "fp32",
    "inputs": [{"name": "x", "shape": [None, 1, 5], "dtype": "float32", "time_axis": 1,
                "preprocessing": {"uint8_scale": 1 / 255}, "range": None, "vocab_size": None},
               {"name": "tokens", "shape": [None, 1], "dtype": "int64", "time_axis": 1,
                "preprocessing": None, "vocab_size": 50},
               {"name": "speaker", "shape": [None, 3], "dtype": "float32", "time_axis": None}],
    "outputs": [{"name": "y", "shape": [None, 4], "dtype": "float32", "meaning": "class_probabilities",
                 "per_step": False, "labels": ["a", "b", "c", "d"]},
                {"name": "z", "shape": [None, 1, 2], "dtype": "float32", "meaning": "values", "per_step": True,
                 "labels": None}],
    "states": [{"input": "h_in_0", "output": "h_out_0", "shape": [None, 8], "dtype": "float32",
                "init": 0.0, "layer": "lstm", "kind": "h"},
               {"input": "conv_in_1", "output": "conv_out_1", "shape": [None, 2, 4], "dtype": "float32",
                "init": 0.0, "layer": "conv", "kind": "conv"}],
    "source": {"name": "m"}, "parity": {},
}

V1 = {
    "format": 1, "variant": "stream", "chunk": 1, "precision": "fp32",
    "input": {"name": "x", "shape": [None, 1, 5], "dtype": "float32", "time_axis": 1,
              "preprocessing": {"uint8_scale": 1 / 255}},
    "output": {"name": "y", "shape": [None, 4], "dtype": "float32", "meaning": "class_probabilities",
               "per_step": False, "labels": ["a", "b", "c", "d"]},
    "states": [{"input": "h_in_0", "output": "h_out_0", "shape": [None, 8], "init": 0.0,
                "layer": "lstm", "kind": "h"}],
    "source": {}, "parity": {},
}


def edited(doc, edit):
    doc = copy.deepcopy(doc)
    edit(doc)
    return doc


def test_format2_reads_every_field():
    c = Contract.from_dict(DOC)
    assert [t.name for t in c.inputs] == ["x", "tokens", "speaker"] and c.input.name == "x"
    assert c.inputs[1].vocab_size == 50 and c.inputs[2].time_axis is None
    assert c.input_range == (0.0, 1.0) and c.uint8_scale == pytest.approx(1 / 255)
    assert c.outputs[1].per_step and c.labels == ("a", "b", "c", "d") and c.output_meaning == "class_probabilities"
    assert c.states[1].shape == (None, 2, 4) and c.states[1].kind == "conv" and c.states[0].units == 8
    assert Contract.from_dict(c.to_dict()) == Contract.from_dict(c.to_dict())  # a stable round trip
    assert Contract.from_json(json.dumps(DOC)).inputs == c.inputs


def test_format1_is_converted():
    c = Contract.from_dict(V1)
    assert c.format == 1 and len(c.inputs) == 1 and len(c.outputs) == 1
    assert c.input.time_axis == 1 and c.states[0].dtype == "float32" and c.states[0].shape == (None, 8)
    assert c.to_dict()["format"] == 2 and c.to_dict()["inputs"][0]["name"] == "x"
    two = Contract.from_dict(c.to_dict())
    assert two.inputs == c.inputs and two.outputs == c.outputs and two.states == c.states


def test_state_names_accept_any_lowercase_kind():
    assert state_names(2, "conv") == ("conv_in_2", "conv_out_2")
    for bad in ("H", "", "c-1", 3):
        with pytest.raises(ValueError):
            state_names(0, bad)


@pytest.mark.parametrize("edit, field, message", [
    (lambda d: d["inputs"][0]["preprocessing"].update(uint8_scale="0.0039"),
     "inputs[0].preprocessing.uint8_scale", "finite number"),
    (lambda d: d["outputs"][0].update(labels=["a", "b"]), "outputs[0].labels", "2 labels for 4 output values"),
    (lambda d: d["outputs"][0].update(labels=["a", "b", 3, "d"]), "outputs[0].labels[2]", "must be a string"),
    (lambda d: d.update(variant="streaming"), "variant", "not one of"),
    (lambda d: d.update(precision="int4"), "precision", "not one of"),
    (lambda d: d.update(format=3), "format", "not a supported format"),
    (lambda d: d.update(format=True), "format", "not a supported format"),
    (lambda d: d.update(chunk=0), "chunk", "integer >= 1"),
    (lambda d: d.update(chunk="1"), "chunk", "integer >= 1"),
    (lambda d: d.update(inputs={"name": "x"}), "inputs", "non-empty list"),
    (lambda d: d.update(inputs=[]), "inputs", "non-empty list"),
    (lambda d: d.update(outputs=[["y"]]), "outputs[0]", "must be an object"),
    (lambda d: d["inputs"].__setitem__(0, "x"), "inputs[0]", "must be an object"),
    (lambda d: d["inputs"][0].update(shape=[None, 1.5, 5]), "inputs[0].shape[1]", "positive integer"),
    (lambda d: d["inputs"][0].update(shape=[None, True, 5]), "inputs[0].shape[1]", "positive integer"),
    (lambda d: d["inputs"][0].update(shape="(None, 1, 5)"), "inputs[0].shape", "list of dimensions"),
    (lambda d: d["inputs"][0].update(dtype="float"), "inputs[0].dtype", "not one of"),
    (lambda d: d["inputs"][0].update(time_axis=3), "inputs[0].time_axis", "not an axis"),
    (lambda d: d["inputs"][0].update(range=[1, 0]), "inputs[0].range", "low must be below high"),
    (lambda d: d["inputs"][0].update(dtype="bool", vocab_size=10, preprocessing=None, range=None), "inputs[0].vocab_size",
     "token-id inputs (integer or float)"),
    (lambda d: d["inputs"][1].update(vocab_size=-1), "inputs[1].vocab_size", "integer >= 1"),
    (lambda d: d["inputs"][0].update(colour="red"), "inputs[0].colour", "not a field"),
    (lambda d: d["inputs"][0].update(shape=[None, 2, 5]), "inputs[0].shape", "chunk is 1"),
    (lambda d: d["inputs"][1].update(name="x"), "inputs[1].name", "used twice"),
    (lambda d: d["inputs"][1].update(name="h_in_3"), "inputs[1].name", "state name"),
    (lambda d: d["outputs"][0].update(per_step="no"), "outputs[0].per_step", "true or false"),
    (lambda d: d["outputs"][0].update(meaning="logits"), "outputs[0].meaning", "not one of"),
    (lambda d: d["states"][0].update(input="hidden0"), "states[0].input", "<kind>_in_<k>"),
    (lambda d: d["states"][0].update(output="h_out_1"), "states[0].output", "expected 'h_out_0'"),
    (lambda d: d["states"][1].update(input="h_in_0", output="h_out_0", kind="h"), "states[1].input", "used twice"),
    (lambda d: d["states"][0].update(kind="c"), "states[0].kind", "disagrees"),
    (lambda d: d["states"][0].update(shape=[1, 8]), "states[0].shape[0]", "must be null"),
    (lambda d: d["states"][1].update(shape=[None, None, 4]), "states[1].shape", "fixed dims"),
    (lambda d: d["states"][0].update(init="0"), "states[0].init", "finite number"),
    (lambda d: d.update(states={"h_in_0": [None, 8]}), "states", "must be a list"),
    (lambda d: d.update(source=[1]), "source", "must be an object"),
    (lambda d: d.update(variant="full", chunk=None), "states", "'full' model carries no state"),
    (lambda d: d.update(input=d["inputs"][0]), "input", "format-1 field"),
])
def test_format2_malformed_fields_are_named(edit, field, message):
    with pytest.raises(runtime.ModelFormatError) as err:
        Contract.from_dict(edited(DOC, edit))
    text = str(err.value)
    assert f"rnnx metadata field '{field}'" in text and message in text, text


def test_labels_message_is_exactly_as_documented():
    doc = edited(DOC, lambda d: d["outputs"][0].update(shape=[None, 3], labels=["a", "b"]))
    with pytest.raises(runtime.ModelFormatError) as err:
        Contract.from_dict(doc)
    assert str(err.value) == "rnnx metadata field 'outputs[0].labels': 2 labels for 3 output values"


@pytest.mark.parametrize("edit, field", [
    (lambda d: d["input"].update(shape=[None, 1, "5"]), "input.shape[2]"),
    (lambda d: d["states"][0].update(shape=[None, 2, 8]), "states[0].shape"),
    (lambda d: d["states"][0].update(dtype="float32"), "states[0].dtype"),
    (lambda d: d.update(inputs=[d["input"]]), "inputs"),
    (lambda d: d.pop("output"), "output"),
])
def test_format1_malformed_fields_are_named(edit, field):
    with pytest.raises(runtime.ModelFormatError, match=re.escape(f"field '{field}'")):
        Contract.from_dict(edited(V1, edit))


@pytest.mark.parametrize("text, message", [
    ("[1, 2]", "must be a JSON object; got a list"),
    ('"stream"', "must be a JSON object; got a string"),
    ("null", "must be a JSON object; got null"),
    ("{not json", "not valid JSON"),
    ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
])
def test_non_object_and_deeply_nested_json(text, message):
    with pytest.raises(runtime.ModelFormatError, match=message):
        Contract.from_json(text)


def test_deeply_nested_free_object_does_not_escape():
    doc = json.dumps(DOC)[:-1] + ', "source": ' + "[" * 200_000 + "]" * 200_000 + "}"
    with pytest.raises(runtime.ModelFormatError):
        Contract.from_json(doc)


# -- the graph check, on real exports ---------------------------------------------------------------

keras = pytest.importorskip("keras")
from runtime_fixtures import format2, lstm_exports, read_metadata, with_metadata  # noqa: E402


@pytest.fixture(scope="module")
def paths():
    return lstm_exports()


def _load_edited(src, tmp_path, edit, name="edited.onnx"):
    meta = format2(read_metadata(src))
    edit(meta)
    return runtime.load(with_metadata(src, tmp_path / name, meta))


def test_format2_metadata_of_a_real_export_loads(paths, tmp_path):
    for variant in ("full", "stream"):
        model = _load_edited(paths[variant], tmp_path, lambda m: None, f"{variant}.onnx")
        assert model.contract.format == 2
        assert model.contract.inputs == runtime.load(paths[variant]).contract.inputs


@pytest.mark.parametrize("variant, edit, message", [
    ("full", lambda m: m["inputs"][0].update(shape=[None, None, 7]),
     r"input 'x' has 5 on axis 2 in the graph .* but 7 in the rnnx metadata"),
    ("full", lambda m: m["inputs"][0].update(shape=[None, 5]), r"input 'x' has rank 3 in the graph"),
    ("full", lambda m: m["inputs"][0].update(dtype="float64"), r"input 'x' is tensor\(float\) in the graph but float64"),
    ("full", lambda m: m["outputs"][0].update(shape=[None, 5], labels=None),
     r"output 'y' has 4 on axis 1 in the graph"),
    ("full", lambda m: m["outputs"][0].update(name="probs"), r"expected inputs \['x'\] and outputs \['probs'\]"),
    ("stream", lambda m: m.update(variant="full", chunk=None, states=[]),
     r"state inputs \['h_in_0', 'c_in_0', 'h_in_1', 'c_in_1'\] but its rnnx metadata says variant 'full'"),
    ("stream", lambda m: m.update(states=[]), r"state inputs .* that the rnnx metadata's 'states' does not declare"),
    ("stream", lambda m: m["states"][1].update(shape=[None, 9]), r"state tensor 'c_in_0' has 8 on axis 1"),
    ("stream", lambda m: m["states"][0].update(dtype="float16"), r"state tensor 'h_in_0' is tensor\(float\)"),
])
def test_contract_that_disagrees_with_the_graph(paths, tmp_path, variant, edit, message):
    with pytest.raises(runtime.ModelFormatError, match=message):
        _load_edited(paths[variant], tmp_path, edit)


def test_swapped_state_pairs_are_detected(paths, tmp_path):
    def swap(meta):  # layer 0 (8 units) and layer 1 (6 units) declared the other way round
        s = meta["states"]
        s[0]["shape"], s[2]["shape"] = s[2]["shape"], s[0]["shape"]

    with pytest.raises(runtime.ModelFormatError, match=r"state tensor 'h_in_0' .* looks swapped with state 'h_in_1'"):
        _load_edited(paths["stream"], tmp_path, swap)


def test_tampered_metadata_text_is_a_format_error(paths, tmp_path):
    for i, text in enumerate(["[]", "{", '{"format": 2, "variant": "stream", "inputs": 5}']):
        with pytest.raises(runtime.ModelFormatError, match="rnnx metadata"):
            runtime.load(with_metadata(paths["stream"], tmp_path / f"t{i}.onnx", text))


def _as_format1(meta: dict) -> dict:
    """A single-input export's format-2 metadata written the format-1 way (as older rnnx wrote it)."""
    old = {k: v for k, v in meta.items() if k not in ("inputs", "outputs", "states")}
    old["format"] = 1
    old["input"] = {k: v for k, v in meta["inputs"][0].items() if k not in ("range", "vocab_size")}
    old["output"] = dict(meta["outputs"][0])
    old["states"] = [{k: v for k, v in s.items() if k != "dtype"} for s in meta["states"]]
    return old


@pytest.mark.parametrize("variant", ["full", "stream"])
def test_format1_files_still_load_and_run_the_same(paths, tmp_path, variant):
    meta = read_metadata(paths[variant])
    assert meta["format"] == 2  # what the exporter writes now
    old = runtime.load(with_metadata(paths[variant], tmp_path / "v1.onnx", _as_format1(meta)))
    new = runtime.load(paths[variant])
    assert old.contract.format == 1 and old.contract.inputs == new.contract.inputs
    assert old.contract.states == new.contract.states and old.labels == new.labels
    xs = np.random.default_rng(0).random((2, 6, 5), dtype=np.float32)
    if variant == "full":
        np.testing.assert_array_equal(old.predict(xs), new.predict(xs))
    else:
        np.testing.assert_array_equal(old.feed(xs[0]), new.feed(xs[0]))
