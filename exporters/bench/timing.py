"""Timing primitives of the benchmark: per-call latency percentiles and throughput.

Every measurement warms up first, then times calls one by one with
``time.perf_counter_ns`` so that p50/p90/p99 come from the same samples.
Medians are what the report compares: on a shared machine they move far less
than means.
"""

from __future__ import annotations

import math
import time
from typing import Callable

import numpy as np

BUDGET_S = 5.0   # timed seconds per figure at most (after MIN_REPS calls)
MIN_REPS = 10


def percentiles(samples_ns) -> dict:
    """p50/p90/p99/min/mean of call times given in nanoseconds, in milliseconds."""
    arr = np.sort(np.asarray(samples_ns, dtype=np.float64)) / 1e6
    if arr.size == 0:
        raise ValueError("no timed calls")

    def pct(q: float) -> float:
        # nearest rank: a value that was really measured, and p50 <= p90 <= p99 by construction
        return float(arr[min(arr.size - 1, max(0, math.ceil(q * arr.size) - 1))])

    return {"p50": pct(0.50), "p90": pct(0.90), "p99": pct(0.99), "min": float(arr[0]),
            "mean": float(arr.mean()), "reps": int(arr.size)}


def time_calls(fn: Callable[[], object], reps: int, warmup: int | None = None,
               budget_s: float = BUDGET_S) -> dict:
    """Call ``fn`` ``warmup`` times untimed, then ``reps`` times timed; percentiles in ms.

    A slow callable (eager Keras takes milliseconds a call) stops after
    ``budget_s`` seconds of timed calls once it has ``MIN_REPS`` of them;
    ``reps`` in the result says how many were timed.
    """
    if reps < 1:
        raise ValueError(f"reps must be >= 1; got {reps}")
    for _ in range(default_warmup(reps) if warmup is None else warmup):
        fn()
    clock = time.perf_counter_ns
    samples = []
    append = samples.append
    deadline = clock() + int(budget_s * 1e9)
    floor = min(reps, MIN_REPS)
    for i in range(reps):
        t0 = clock()
        fn()
        t1 = clock()
        append(t1 - t0)
        if t1 > deadline and i + 1 >= floor:
            break
    return percentiles(samples)


def throughput(fn: Callable[[], object], batch: int, reps: int, warmup: int | None = None,
               budget_s: float = BUDGET_S) -> dict:
    """Samples per second of ``fn`` processing ``batch`` samples per call (median call time)."""
    stats = time_calls(fn, reps, warmup, budget_s)
    return {"samples_per_s": batch / (stats["p50"] / 1e3), "batch": int(batch), "call_ms": stats}


def default_warmup(reps: int) -> int:
    return max(3, min(50, reps // 10))


def timed_once(fn: Callable[[], object]) -> tuple[object, float]:
    """(fn(), seconds it took)."""
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0
