"""Stream a saved sequence through a StreamingModel, frame by frame, like an edge app
that sees one sensor frame at a time, and print the running prediction.

    python examples/stream_frames.py MODEL_stream.onnx SEQUENCE.npy [--every N]

SEQUENCE.npy holds one sequence (T, *features), e.g. a Fashion-MNIST image
(28, 28) read as 28 rows of 28 pixels (uint8 is fine when the model scales
pixels itself), or several, (streams, T, *features), run side by side as
independent streams. Needs only numpy and onnxruntime.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

import runtime  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="a stream or unrolled .onnx export")
    parser.add_argument("sequence", help=".npy with (T, *features) or (streams, T, *features)")
    parser.add_argument("--every", type=int, default=1, metavar="N", help="print every N-th chunk (default 1)")
    args = parser.parse_args(argv)
    try:
        frames = np.load(args.sequence, allow_pickle=False)
        probe = runtime.load(args.model)
        if not isinstance(probe, runtime.StreamingModel):
            raise runtime.ModelFormatError(f"{args.model} is a full model; stream a 'stream' or 'unrolled' export")
        rank = 2 + len(probe.features)  # (streams, time, *features)
        if frames.ndim == rank - 1:
            frames = frames[None]
        model = probe if frames.shape[0] == 1 else runtime.load(args.model, batch=frames.shape[0])
        stream(model, frames, args.every)
    except (runtime.RnnxError, OSError, ValueError) as exc:
        print(f"stream_frames: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


def stream(model: runtime.StreamingModel, frames: np.ndarray, every: int) -> None:
    labels = model.labels
    chunk, steps = model.chunk, frames.shape[1]
    if steps % chunk:
        raise runtime.InputShapeError(f"the sequence has {steps} steps, not a multiple of the model's chunk {chunk}")
    print(f"{model.batch} stream(s), {steps} steps, {chunk} per call, on {model.providers[0]}")
    for n, t in enumerate(range(0, steps, chunk), start=1):
        y = model.step(frames[:, t:t + chunk])  # states are carried inside the model
        if n % every and t + chunk < steps:
            continue
        scores = y[:, -1] if model.contract.per_step else y  # the latest step's output
        cells = []
        for row in scores.reshape(model.batch, -1):
            k = int(row.argmax())
            cells.append(f"{labels[k] if labels else k} ({row[k]:.2f})")
        print(f"t={t + chunk:3d}  " + "  |  ".join(cells))


if __name__ == "__main__":
    sys.exit(main())
