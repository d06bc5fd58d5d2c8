"""Task views: shapes, value ranges, determinism, and that clip order carries the direction."""

import numpy as np
import pytest

from exporters.errors import ConfigError
from pipeline import tasks


def test_rows_are_scaled_sequences(fashion):
    view = tasks.rows(fashion.x_test[:50], fashion.y_test[:50], fashion.labels)
    assert view.x.shape == (50, 28, 28) and view.x.dtype == np.float32
    assert 0.0 <= view.x.min() and view.x.max() <= 1.0
    np.testing.assert_allclose(view.x[3] * 255, fashion.x_test[3], atol=1e-4)


def test_clips_shapes_labels_and_determinism(fashion):
    x, y = fashion.x_test[:64], fashion.y_test[:64]
    a = tasks.clips(x, y, fashion.labels, frames=8, canvas=28, item=14, seed=3)
    b = tasks.clips(x, y, fashion.labels, frames=8, canvas=28, item=14, seed=3)
    c = tasks.clips(x, y, fashion.labels, frames=8, canvas=28, item=14, seed=4)
    assert a.x.shape == (64, 8, 28, 28, 1) and a.x.dtype == np.float32
    np.testing.assert_array_equal(a.x, b.x)
    np.testing.assert_array_equal(a.y, b.y)
    assert not np.array_equal(a.y, c.y)
    np.testing.assert_array_equal(a.y // 4, y)             # class survives in the label
    assert len(a.labels) == 40 and a.labels[1] == "T-shirt/top left"


def test_opposite_directions_show_the_same_frames_in_reverse(fashion):
    """Only the order of frames tells right from left: a bag of frames cannot."""
    x = np.repeat(fashion.x_test[:1], 200, axis=0)
    y = np.repeat(fashion.y_test[:1], 200)
    view = tasks.clips(x, y, fashion.labels, seed=0)
    direction = view.y % 4
    # find a rightward and a leftward clip with the same cross offset
    rows_of = lambda clip: clip[0, :, :, 0].sum(axis=1).nonzero()[0][0]  # noqa: E731
    right = [i for i in range(200) if direction[i] == 0]
    left = [i for i in range(200) if direction[i] == 1]
    pair = next((r, l) for r in right for l in left if rows_of(view.x[r]) == rows_of(view.x[l]))
    np.testing.assert_array_equal(view.x[pair[0]], view.x[pair[1]][::-1])


def test_shuffle_frames_permutes_each_clip(fashion):
    view = tasks.clips(fashion.x_test[:10], fashion.y_test[:10], fashion.labels, seed=0)
    shuffled = tasks.shuffle_frames(view.x, seed=1)
    assert not np.array_equal(shuffled, view.x)
    np.testing.assert_allclose(np.sort(shuffled.sum(axis=(2, 3, 4)), axis=1),
                               np.sort(view.x.sum(axis=(2, 3, 4)), axis=1), rtol=1e-6)


def test_clips_refuse_a_canvas_too_small():
    with pytest.raises(ConfigError, match="canvas"):
        tasks.clips(np.zeros((1, 28, 28), np.uint8), np.zeros(1), tuple("abcdefghij"), canvas=16, item=14)


def test_chars_is_next_character_with_wrap():
    task = tasks.chars("*abca.")
    assert task.vocab == ("*", ".", "a", "b", "c")
    assert task.x.shape == (1, 6, 5) and task.y.shape == (1, 6, 5)
    assert task.decode(task.x) == "*abca."
    assert task.decode(task.y) == "abca.*"
    np.testing.assert_array_equal(task.encode("ab"), task.x[0, 1:3])


def test_chars_refuses_an_empty_sentence():
    with pytest.raises(ConfigError, match="sentence"):
        tasks.chars("")
