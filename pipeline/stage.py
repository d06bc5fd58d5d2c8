"""The command line every DVC stage shares: `python -m pipeline.STAGE NAME [--params] [--DIR ...]`.

A stage module defines what it does for one model; this parses the common
arguments, reads params.yaml, holds the machine's stage lock while the stage
runs (`pipeline/lock.py`: exclusive for the benchmark, so no queued
experiment's stage runs while one is timed; shared for the others) and turns
an RnnxError into one line on stderr with exit code 1 (DVC then stops the
pipeline with that line on screen).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Callable

from exporters.errors import RnnxError
from pipeline import lock
from pipeline.models import MODEL_NAMES
from pipeline.params import load_params


def stage_main(argv, *, module: str, doc: str, action: Callable[..., int | None],
               dirs: tuple[str, ...] = ("models", "metrics")) -> int:
    """Parse `NAME --params --<dir>...`, call ``action(name, params, **dirs)``, return its exit code."""
    ap = argparse.ArgumentParser(prog=f"python -m {module}", description=doc.strip().splitlines()[0])
    ap.add_argument("name", help=f"model: one of {', '.join(MODEL_NAMES)}")
    ap.add_argument("--params", default="params.yaml", help="pipeline parameters (default: params.yaml)")
    for d in dirs:
        ap.add_argument(f"--{d}", default=Path(d), type=Path, help=f"{d} folder (default: {d}/)")
    args = ap.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        params = load_params(args.params)
        with lock.for_stage(module, args.name):
            return action(args.name, params, **{d: getattr(args, d) for d in dirs}) or 0
    except RnnxError as exc:
        print(f"rnnx: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
