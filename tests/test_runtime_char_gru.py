"""Seed 003's character GRU regenerates its sentence through the runtime alone."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("keras")

import runtime  # noqa: E402
from runtime_fixtures import char_gru_stream  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def char_model():
    return char_gru_stream()


def test_char_gru_stream_regenerates_the_sentence(char_model):
    path, sentence = char_model
    model = runtime.load(path)
    assert isinstance(model, runtime.StreamingModel)
    vocab = list(model.labels)
    assert sorted(vocab) == sorted(set(sentence))
    assert model.state_names == ("h_in_0", "h_in_1")  # two GRUs: h only
    onehot = np.eye(len(vocab), dtype=np.float32)
    text, ch = sentence[0], sentence[0]
    for _ in range(len(sentence)):  # the sentence, then back to its first character
        probs = model.step(onehot[vocab.index(ch)])  # one frame: no batch, no time axis
        assert probs.shape == (len(vocab),)
        ch = vocab[int(probs.argmax())]
        text += ch
    assert text == sentence + sentence[0]


def test_char_generate_example_needs_only_the_runtime(char_model):
    path, sentence = char_model
    code = ("import runpy, sys; sys.argv = ['char_generate.py', sys.argv[1]]; "
            "runpy.run_path('examples/char_generate.py', run_name='__main__')")
    # fail the run if the example (or the runtime under it) imported TensorFlow or Keras
    guard = ("import sys; sys.modules['tensorflow'] = None; sys.modules['keras'] = None; "
             "sys.modules['onnx'] = None; ")
    out = subprocess.run([sys.executable, "-c", guard + code, str(path)], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == sentence
