"""Per-frame cost of a streamed convolution front-end on the stream clock against the same model
written with a hand-written causal padding (prints figures; not a test).

One keyword-spotting shape, 40 features per frame: Conv1D(32, 5) + BatchNorm + ReLU,
Conv1D(32, 3), GRU(64) per step, Dense(4). Every variant has the same weights; only the
padding (and strides) on time differ:

- ``causal``: both convolutions ``padding="causal"`` (a cache per layer, no clock);
- ``valid``: ``padding="valid"`` (look-back: frames come 6 late);
- ``same``: ``padding="same"`` (look-ahead: a latency of 3 frames, flushed at the end);
- ``strided``: the first convolution valid with ``strides=2`` (one output frame per 2 input frames).

Each is exported as ``stream`` at ``--chunk`` (default 1 and 4) and fed by the runtime's
``StreamingModel.step``, 1 thread, 1 and 8 streams, timed interleaved in rounds
(``exporters.bench.rounds``). A figure is the median over rounds of each round's fastest call,
in microseconds per input frame per stream; the ratio is against ``causal`` at the same chunk
and streams, per round. The graph's node count is printed beside it.

    python scripts/bench_windows.py --rounds 15
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

FEATURES = 40
KINDS = {"causal": ("causal", "causal", 1), "valid": ("valid", "valid", 1), "same": ("same", "same", 1),
         "strided": ("valid", "valid", 2)}


def build(kind: str):
    import keras
    from keras import layers as L

    first, second, stride = KINDS[kind]
    inp = keras.Input((None, FEATURES))
    h = L.Conv1D(32, 5, padding=first, strides=stride, name="conv_a")(inp)
    h = L.ReLU()(L.BatchNormalization(name="bn")(h))
    h = L.Conv1D(32, 3, padding=second, name="conv_b")(h)
    h = L.GRU(64, return_sequences=True, name="gru")(h)
    return keras.Model(inp, L.Dense(4, activation="softmax", name="head")(h), name=f"kws_{kind}")


def export_all(work: Path, chunks: tuple) -> dict:
    """(kind, chunk) -> stream file; every kind with the causal model's weights."""
    import keras

    from exporters.export import export_model

    keras.utils.set_random_seed(0)
    base = build("causal")
    rng = np.random.default_rng(0)
    weights = [rng.normal(0, 0.3, w.shape).astype(np.float32) for w in base.get_weights()]
    for k, w in enumerate(base.weights):
        if w.path.endswith("moving_variance"):
            weights[k] = np.abs(weights[k]) + 0.5
    files = {}
    for kind in KINDS:
        model = build(kind)
        model.set_weights(weights)
        for chunk in chunks:
            out = work / f"{kind}_c{chunk}"
            res = export_model(model, out, variants=["stream"], chunk=chunk)
            files[(kind, chunk)] = res.paths["stream"]
            print(f"exported {kind} chunk {chunk}", file=sys.stderr, flush=True)
    return files


def _open(path: Path, batch: int):
    import runtime

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", runtime.UncheckedModelWarning)
        return runtime.load(path, providers=["cpu"], threads=1, batch=batch)


def costs(files: dict, chunks: tuple, streams: tuple, rounds: int) -> dict:
    """(kind, chunk, streams) -> {"us": per input frame per stream, "ratio": vs causal}."""
    from exporters.bench.rounds import interleave, paired_ratio

    out = {}
    for chunk in chunks:
        for n in streams:
            engines = {}
            for kind in KINDS:
                model = _open(files[(kind, chunk)], n)
                frames = np.random.default_rng(1).random((n, chunk, FEATURES), dtype=np.float32)
                engines[kind] = lambda m=model, f=frames: m.step(f)
            got = interleave(engines, rounds=rounds, calls=200, block_ms=20)
            for kind in KINDS:
                us = float(np.median(got[kind]["blocks"])) * 1000 / (chunk * n)
                ratio = paired_ratio(got[kind]["blocks"], got["causal"]["blocks"])
                out[(kind, chunk, n)] = {"us": us, "ratio": ratio["ratio"], "low": ratio["low"], "high": ratio["high"]}
            print(f"  chunk {chunk}, {n} streams: " + "  ".join(f"{k} {out[(k, chunk, n)]['us']:.2f}"
                                                            for k in KINDS), file=sys.stderr, flush=True)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--chunk", type=int, action="append", default=None, help="stream chunk (repeatable; 1 and 4)")
    ap.add_argument("--streams", type=int, action="append", default=None, help="streams (repeatable; 1 and 8)")
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    chunks, streams = tuple(args.chunk or (1, 4)), tuple(args.streams or (1, 8))
    import onnx

    with tempfile.TemporaryDirectory(prefix="rnnx-bench-windows-") as tmp:
        files = export_all(Path(tmp), chunks)
        nodes = {key: len(onnx.load(str(path)).graph.node) for key, path in files.items()}
        figures = costs(files, chunks, streams, args.rounds)
    print(f"{'front-end':<10}{'chunk':>6}{'streams':>8}{'nodes':>7}{'us/frame':>10}{'x causal':>10}  (95% interval)")
    for (kind, chunk, n), f in figures.items():
        print(f"{kind:<10}{chunk:>6}{n:>8}{nodes[(kind, chunk)]:>7}{f['us']:>10.2f}{f['ratio']:>10.2f}"
              f"  ({f['low']:.2f}-{f['high']:.2f})")
    print("(us per input frame per stream: median over rounds of the fastest StreamingModel.step; 1 thread)")
    if args.json:
        args.json.write_text(json.dumps({f"{k}/c{c}/s{n}": f for (k, c, n), f in figures.items()}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
