"""Task views built from a dataset: what each model in the zoo learns.

- ``rows``: each image as a sequence of 28 rows of 28 features in [0, 1]
  (the seeds' LSTM/GRU setup).
- ``clips``: short videos in which an item of the dataset moves across a
  canvas; the label is ``class * 4 + direction``, so a model must know both
  what the item is and which way it moves. The frames of one clip cover the
  same positions whichever way along an axis the item moves, so a model that
  ignores frame order cannot tell right from left (or down from up).
- ``chars``: seed 003's task: a one-hot character sequence whose target is the
  next character, to learn and regenerate from its first character.

All views are deterministic from their seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from exporters.errors import ConfigError

DIRECTIONS = ("right", "left", "down", "up")
DEFAULT_SENTENCE = "*Der Cottbuser Postkutscher putzt den Cottbuser Postkutschkasten."


@dataclass(frozen=True)
class TaskData:
    """Inputs (float32, model-ready) and integer labels for one split."""

    x: np.ndarray
    y: np.ndarray
    labels: tuple


def rows(images: np.ndarray, labels: np.ndarray, class_names: tuple) -> TaskData:
    """Images (N, 28, 28) uint8 -> sequences of 28 rows, float32 in [0, 1]."""
    return TaskData(images.astype(np.float32) / np.float32(255.0), labels.astype(np.int64), tuple(class_names))


def clip_labels(class_names: tuple) -> tuple:
    return tuple(f"{c} {d}" for c in class_names for d in DIRECTIONS)


def clips(images: np.ndarray, labels: np.ndarray, class_names: tuple, *, frames: int = 8,
          canvas: int = 28, item: int = 14, seed: int = 0) -> TaskData:
    """Make one clip per image: the item, shrunk to ``item`` pixels, moves across the canvas.

    Returns x of shape (N, frames, canvas, canvas, 1) float32 in [0, 1] and
    y = class * 4 + direction index (see DIRECTIONS).
    """
    travel = canvas - item
    if item < 2 or travel < frames - 1 or frames < 2:
        raise ConfigError(f"clips need frames >= 2 and canvas - item >= frames - 1; "
                          f"got frames={frames}, canvas={canvas}, item={item}")
    rng = np.random.default_rng(seed)
    n = len(images)
    small = _shrink(images, item)
    direction = rng.integers(0, 4, size=n)
    cross = rng.integers(0, travel + 1, size=n)            # offset across the motion axis
    along = np.rint(np.linspace(0, travel, frames)).astype(int)   # positions along it
    x = np.zeros((n, frames, canvas, canvas), dtype=np.float32)
    for i in range(n):
        d = direction[i]
        steps = along if d in (0, 2) else along[::-1]
        for t, p in enumerate(steps):
            r, c = (cross[i], p) if d < 2 else (p, cross[i])
            x[i, t, r:r + item, c:c + item] = small[i]
    y = labels.astype(np.int64) * 4 + direction
    return TaskData(x[..., None], y, clip_labels(class_names))


def shuffle_frames(x: np.ndarray, seed: int = 0) -> np.ndarray:
    """The same clips with their frame order shuffled (one permutation per clip)."""
    rng = np.random.default_rng(seed)
    order = np.argsort(rng.random((x.shape[0], x.shape[1])), axis=1)
    return np.take_along_axis(x, order.reshape(order.shape + (1,) * (x.ndim - 2)), axis=1)


def _shrink(images: np.ndarray, size: int) -> np.ndarray:
    """Resize (N, H, W) uint8 images to (N, size, size) float32 in [0, 1] by area averaging."""
    n, h, w = images.shape
    ri = (np.arange(size + 1) * h) // size
    ci = (np.arange(size + 1) * w) // size
    img = images.astype(np.float32) / np.float32(255.0)
    acc = np.add.reduceat(np.add.reduceat(img, ri[:-1], axis=1), ci[:-1], axis=2)
    counts = np.outer(np.diff(ri), np.diff(ci)).astype(np.float32)
    return acc / counts


@dataclass(frozen=True)
class CharTask:
    """One sentence as a next-character task; ``vocab`` lists the one-hot positions."""

    sentence: str
    vocab: tuple
    x: np.ndarray      # (1, L, V) one-hot of sentence[t]
    y: np.ndarray      # (1, L, V) one-hot of sentence[t + 1], wrapping to sentence[0]

    def encode(self, text: str) -> np.ndarray:
        idx = [self.vocab.index(ch) for ch in text]
        return np.eye(len(self.vocab), dtype=np.float32)[idx]

    def decode(self, probs: np.ndarray) -> str:
        return "".join(self.vocab[i] for i in np.asarray(probs).reshape(-1, len(self.vocab)).argmax(-1))


def chars(sentence: str = DEFAULT_SENTENCE) -> CharTask:
    if not isinstance(sentence, str) or len(sentence) < 2:
        raise ConfigError(f"chars.sentence must be a string of at least 2 characters, got {sentence!r}")
    vocab = tuple(sorted(set(sentence)))
    onehot = np.eye(len(vocab), dtype=np.float32)
    idx = np.array([vocab.index(ch) for ch in sentence])
    return CharTask(sentence, vocab, onehot[idx][None], onehot[np.roll(idx, -1)][None])
