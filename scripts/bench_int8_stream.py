"""Per-stream step cost of int8 stream graphs against fp32 (prints figures; not a test).

A one-step stream model (``rnnx export --variants stream --chunk 1``) is quantized
int8-dynamic two ways:

- ``ort``: onnxruntime's ``quantize_dynamic`` on the file as it is: an LSTM becomes
  ``DynamicQuantizeLSTM``; a GRU stays a float ``GRU`` op (onnxruntime has no int8 GRU);
- ``rnnx``: ``rnnx quantize --mode int8-dynamic`` (``exporters.quantize``), which writes
  the one step out as plain ops first: one integer GEMM of ``[x, h]`` with the weights of
  both, one activation per gate group, the Transpose/Unsqueeze/Squeeze wrappers of the
  native op folded away (``exporters/quantize/unroll.py``, ``fold_round_trips``).

Each file, with the fp32 source and any ``--also`` files, runs ``StreamingModel.step`` for
1, 8, 64 and 256 streams on one thread, timed interleaved in rounds
(``exporters.bench.rounds``); a figure is the median over rounds of each round's fastest
call, divided by the number of streams (microseconds per stream-step). Accuracy is each
file's on ``--eval`` (a .npz with ``x`` and ``y``), fed step by step.

    python scripts/bench_int8_stream.py models/onnx/lstm/stream.onnx --eval test.npz
    python scripts/bench_int8_stream.py models/onnx/gru/stream.onnx --also models/onnx/gru/stream.int8-dynamic.onnx
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

STREAMS = (1, 8, 64, 256)


def _open(path: Path, batch: int):
    import runtime

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", runtime.UncheckedModelWarning)
        return runtime.load(path, providers=["cpu"], threads=1, batch=batch)


def candidates(src: Path, work: Path) -> dict:
    """name -> file: fp32, onnxruntime's own int8-dynamic, rnnx's int8-dynamic."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from exporters.quantize import quantize_model

    ort_file, rnnx_file = work / "ort.onnx", work / "rnnx.onnx"
    quantize_dynamic(str(src), str(ort_file), weight_type=QuantType.QInt8, per_channel=True)
    quantize_model(src, rnnx_file, "int8-dynamic", per_channel=True, force=True, latency_reps=0)
    return {"fp32": src, "int8 ort": ort_file, "int8 rnnx": rnnx_file}


def accuracy(path: Path, x: np.ndarray, y: np.ndarray) -> float:
    model = _open(path, len(x))
    got = model.feed(x)
    return float(np.mean(np.argmax(got[:, -1] if got.ndim == 3 else got, -1) == y))


def step_costs(files: dict, rounds: int) -> dict:
    """name -> {streams: us per stream-step}."""
    from exporters.bench.rounds import interleave

    out = {name: {} for name in files}
    for n in STREAMS:
        engines = {}
        for name, path in files.items():
            model = _open(path, n)
            shape = (n, model.chunk) + tuple(model.contract.input.shape[2:])
            frame = np.random.default_rng(0).random(shape, dtype=np.float32)
            engines[name] = lambda m=model, f=frame: m.step(f)
        got = interleave(engines, rounds=rounds, calls=max(20, 4000 // n), block_ms=20)
        for name in files:
            out[name][n] = float(np.median(got[name]["blocks"])) * 1000 / n
        print(f"  {n} streams: " + "  ".join(f"{k} {out[k][n]:.3f}" for k in files), file=sys.stderr, flush=True)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("stream", type=Path, help="a one-step fp32 stream export, e.g. models/onnx/lstm/stream.onnx")
    ap.add_argument("--also", type=Path, action="append", default=[], help="another stream file to time with them")
    ap.add_argument("--eval", type=Path, default=None, help=".npz with x and integer labels y (accuracy)")
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    import runtime

    try:
        model = _open(args.stream, 1)
    except runtime.RnnxError as exc:
        raise SystemExit(f"bench_int8_stream: {type(exc).__name__}: {exc}") from None
    if getattr(model, "chunk", None) != 1:
        raise SystemExit(f"bench_int8_stream: {args.stream} is not a one-step stream model "
                         f"(chunk {getattr(model, 'chunk', None)}); export it with --variants stream --chunk 1")
    with tempfile.TemporaryDirectory(prefix="rnnx-int8-stream-") as tmp:
        files = candidates(args.stream, Path(tmp))
        files.update({p.name: p for p in args.also})
        sizes = {k: p.stat().st_size for k, p in files.items()}
        acc = {}
        if args.eval:
            data = np.load(args.eval)
            acc = {k: accuracy(p, data["x"], data["y"]) for k, p in files.items()}
        costs = step_costs(files, args.rounds)
    print(f"{'file':<32}{'size':>9}{'accuracy':>10}" + "".join(f"{str(n) + ' str':>10}" for n in STREAMS))
    for k in files:
        a = f"{acc[k]:.4f}" if k in acc else "-"
        print(f"{k:<32}{sizes[k]:>9}{a:>10}" + "".join(f"{costs[k][n]:>10.3f}" for n in STREAMS))
    print("(us per stream-step: median over rounds of the fastest StreamingModel.step, / streams; 1 thread)")
    if args.json:
        args.json.write_text(json.dumps({"sizes": sizes, "accuracy": acc, "us_per_stream_step": costs}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
