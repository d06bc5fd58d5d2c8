"""Score every .npy file of a folder with a full model, on a pool of worker processes.

    python examples/score_folder.py MODEL_full.onnx FOLDER [--processes N] [--threads 1]
                                    [--output scores.npz] [--repeat R]

Each file holds one batch of sequences (n, T, *features), or one sequence
without the batch axis. The model is opened once here and shipped to each
worker by pickle (its bytes and settings travel, not the onnxruntime session),
which is what multiprocessing, Ray or Spark do with a ``runtime.Model``.
Prints one line per file (its most frequent label) and the throughput;
``--output`` saves the outputs, one array per file name, as an .npz archive.
``--repeat`` scores the folder R times (for a steadier throughput figure).
Needs only numpy and onnxruntime.
"""

from __future__ import annotations

import argparse
import collections
import multiprocessing
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

import runtime  # noqa: E402

_model = None  # the worker's copy of the model, unpickled once per process


def _start_worker(model: runtime.Model) -> None:
    global _model
    _model = model


def _score(path: str) -> tuple[str, np.ndarray]:
    x = np.load(path, allow_pickle=False)
    if x.ndim == len(_model.input_shape) - 1:  # one sequence without the batch axis
        x = x[None]
    return Path(path).name, _model.predict(x)


def score_folder(model: runtime.Model, files: list[Path], processes: int) -> list[tuple[str, np.ndarray]]:
    """(file name, output) for each file, scored on ``processes`` worker processes (spawned,
    so that it works the same on Linux, macOS and Windows)."""
    context = multiprocessing.get_context("spawn")
    with context.Pool(processes, initializer=_start_worker, initargs=(model,)) as pool:
        return pool.map(_score, [str(f) for f in files], chunksize=max(1, len(files) // (4 * processes)))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="a full .onnx export")
    parser.add_argument("folder", help="folder of .npy files")
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 1, help="worker processes")
    parser.add_argument("--threads", type=int, default=1, help="onnxruntime threads per worker (default 1)")
    parser.add_argument("--output", help="save the outputs here (.npz, one array per file)")
    parser.add_argument("--repeat", type=int, default=1, help="score the folder this many times (default 1)")
    parser.add_argument("--quiet", action="store_true", help="print only the throughput")
    args = parser.parse_args(argv)
    try:
        if args.processes < 1 or args.repeat < 1:
            raise runtime.SettingError("--processes and --repeat must be positive integers")
        files = sorted(Path(args.folder).glob("*.npy"))
        if not files:
            raise runtime.InputShapeError(f"{args.folder} holds no .npy files")
        model = runtime.load(args.model, providers=["cpu"], threads=args.threads)
        if not isinstance(model, runtime.Model):
            raise runtime.ModelFormatError(f"{args.model} is a stream model; score folders with a full export")
        t0 = time.perf_counter()
        for _ in range(args.repeat):
            results = score_folder(model, files, args.processes)
        seconds = time.perf_counter() - t0
    except (runtime.RnnxError, OSError, ValueError) as exc:
        print(f"score_folder: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    rows = {name: len(next(iter(y.values())) if isinstance(y, dict) else y) for name, y in results}
    samples = sum(rows.values())
    if not args.quiet:
        for name, y in results:
            if isinstance(y, dict) or model.labels is None:
                print(f"{name}\t{rows[name]} samples")
                continue
            top, count = collections.Counter(model.labels[i] for i in y.argmax(-1)).most_common(1)[0]
            print(f"{name}\t{len(y)} samples\tmost often {top} ({count})")
    print(f"{samples * args.repeat} samples in {seconds:.2f} s with {args.processes} process(es): "
          f"{samples * args.repeat / seconds:,.0f} samples/s (pool start-up included)")
    if args.output:
        out = Path(args.output)
        fd, tmp = tempfile.mkstemp(prefix=".score-", suffix=".npz", dir=out.parent if str(out.parent) else ".")
        with os.fdopen(fd, "wb") as handle:
            np.savez(handle, **{name: y for name, y in results if not isinstance(y, dict)})
        os.replace(tmp, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
