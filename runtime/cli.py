"""``python -m runtime``: print a model's predictions for inputs saved as ``.npy``.

Uses argparse (the edge install has no click). Errors are one line on stderr
and a non-zero exit: 1 for a model or input rnnx refuses, 2 for bad usage.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import warnings

import numpy as np

from .errors import RnnxError
from .model import Model
from .session import open_model
from .streaming import StreamingModel


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m runtime",
        description="Run an rnnx ONNX export on inputs from a .npy file and print the predictions. "
                    "A stream/unrolled model gets each sequence fed chunk by chunk.")
    parser.add_argument("model", nargs="?", help="the .onnx (or .ort) file")
    parser.add_argument("--input", "-i", metavar="FILE.npy",
                        help="inputs with a leading batch axis (one sample without it is accepted)")
    parser.add_argument("--selftest", metavar="DIR",
                        help="instead: run every file of the export set DIR on its self-test vectors "
                             "(selftest.npz) and print one pass/FAIL line per file")
    parser.add_argument("--providers", default=None, metavar="LIST",
                        help="comma-separated execution providers, e.g. cpu or cuda,cpu (default: CUDA if available)")
    parser.add_argument("--threads", type=_positive_int, default=None, help="intra-op threads")
    parser.add_argument("--top", type=_positive_int, default=1, metavar="K",
                        help="classes to print per sample for class probabilities (default 1)")
    parser.add_argument("--raw", action="store_true", help="print the raw output arrays")
    parser.add_argument("--output", "-o", metavar="FILE.npy", help="also save the raw outputs here (an .npz archive, one array per name, for several outputs)")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.selftest is not None:
        if args.model or args.input:
            parser.error("--selftest DIR takes no model file or --input")
        from .selftest import main as selftest

        return selftest(args.selftest)
    if not args.model or not args.input:
        parser.error("a model file and --input FILE.npy are required (or --selftest DIR)")
    try:
        if args.output:
            _check_output(args.output)
        x = _read_input(args.input)
        providers = args.providers.split(",") if args.providers else None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a plain ONNX file is fine from the command line
            loaded = open_model(args.model, providers=providers, threads=args.threads)
        model = _model_for(loaded, x)
        y = _predict(model, x)
        if args.output:
            _save(args.output, y)
        _print(model, y, top=args.top, raw=args.raw)
    except RnnxError as exc:
        print(f"rnnx: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        return 0
    return 0


def _read_input(path: str) -> np.ndarray:
    try:
        with open(path, "rb") as handle:
            magic = handle.read(6)
    except FileNotFoundError:
        raise InputFileError(f"input file {path} does not exist; expected a .npy array") from None
    except OSError as exc:
        raise InputFileError(f"cannot read {path}: {exc.strerror}") from None
    if not magic:
        raise InputFileError(f"{path} is empty (0 bytes); expected a .npy array saved with numpy.save")
    if magic != b"\x93NUMPY":
        raise InputFileError(f"{path} is not a .npy file (save the array with numpy.save)")
    _check_npy_size(path)
    try:
        x = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise InputFileError(f"cannot read {path} as a .npy array: {exc}") from None
    except MemoryError:
        raise InputFileError(f"{path} holds an array too large for this machine's memory") from None
    if x.size == 0:
        raise InputFileError(f"{path} holds an empty array of shape {x.shape}; expected at least one sample")
    return x


def _check_npy_size(path: str) -> None:
    """The array the .npy header claims must fit in the bytes the file holds (before any allocation)."""
    fmt = np.lib.format
    try:
        with open(path, "rb") as handle:
            version = fmt.read_magic(handle)
            read_header = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
            shape, _, dtype = read_header(handle)
            data_bytes = os.fstat(handle.fileno()).st_size - handle.tell()
    except (ValueError, OSError, EOFError) as exc:
        raise InputFileError(f"cannot read {path} as a .npy array: {exc}") from None
    if dtype.hasobject:
        raise InputFileError(f"{path} holds Python objects (dtype {dtype}); expected a numeric array")
    claimed = math.prod(shape) * dtype.itemsize
    if claimed > data_bytes:
        raise InputFileError(f"{path} claims an array of shape {shape} ({claimed} bytes of {dtype}) but holds "
                             f"{data_bytes} bytes of data: the file is truncated or its header is wrong")


class InputFileError(RnnxError):
    """The --input file is missing, empty, or not a .npy array."""


class OutputFileError(RnnxError):
    """The --output path cannot be written."""


def _check_output(path: str) -> None:
    """Refuse an --output path that cannot be written, before any work is done."""
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise OutputFileError(f"--output {path} is a directory; expected a .npy file path")
    if not os.path.isdir(folder):
        what = "is not a directory" if os.path.exists(folder) else "does not exist"
        raise OutputFileError(f"cannot write --output {path}: its folder {folder} {what}")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputFileError(f"cannot write --output {path}: no permission to write in {folder}")


def _save(path: str, y) -> None:
    """Write the outputs atomically: a temporary file in the same folder, then a rename."""
    folder = os.path.dirname(os.path.abspath(path))
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=".rnnx-", suffix=".npy", dir=folder)
        with os.fdopen(fd, "wb") as handle:
            if isinstance(y, dict):  # several outputs: one array per output name
                np.savez(handle, **y)
            else:
                np.save(handle, y, allow_pickle=False)
        os.replace(tmp, path)
        tmp = None
    except OSError as exc:
        raise OutputFileError(f"cannot write --output {path}: {exc.strerror or exc}") from None
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass


def _model_for(loaded, x: np.ndarray):
    """A Model, or a StreamingModel running as many streams as x has sequences
    (its batch axis; 1 when x is one sequence without it)."""
    contract = loaded.contract
    if contract is None or not contract.streaming:
        return Model(loaded)
    streams = int(x.shape[0]) if x.ndim == len(contract.input.shape) and x.shape[0] else 1
    return StreamingModel(loaded, batch=streams)


def _predict(model, x: np.ndarray) -> np.ndarray:
    if isinstance(model, StreamingModel):
        return model.feed(x)
    rank = len(model.input_shape)
    if rank and x.ndim == rank - 1:  # one sample without the batch axis
        return model.predict(x[None])
    return model.predict(x)


def _print(model, y, *, top: int, raw: bool) -> None:
    if isinstance(y, dict):
        for name, arr in y.items():
            print(f"{name}:\n{np.array2string(arr, precision=5, suppress_small=True)}")
        return
    contract = model.contract
    labels = [_printable(label) for label in model.labels] if model.labels else model.labels
    probabilities = contract is not None and contract.output_meaning in ("class_probabilities", "probabilities")
    if raw or not (labels or probabilities):
        print(np.array2string(y, precision=5, suppress_small=True, threshold=10_000))
        return
    if contract.per_step:  # one class per step: print each sequence as a string of labels
        idx = y.argmax(axis=-1)
        for row in np.atleast_2d(idx):
            names = [labels[i] if labels else str(i) for i in row]
            joiner = "" if labels and all(len(n) == 1 for n in labels) else " "
            print(joiner.join(names))
        return
    for i, probs in enumerate(np.atleast_2d(y)):
        order = np.argsort(probs)[::-1][:top]
        cells = [f"{labels[k] if labels else k}\t{probs[k]:.4f}" for k in order]
        print(f"{i}\t" + "\t".join(cells))


def _printable(label: str) -> str:
    """A label as text a terminal shows: control characters (escape codes, newlines) as \\xNN/\\uNNNN."""
    if all(ch.isprintable() for ch in label):
        return label
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in label)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value
