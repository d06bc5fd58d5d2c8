"""Interleaved timing: engines take turns in rounds, and ratios are medians of paired per-round ratios.

On a shared machine, load comes and goes within seconds. Timing engine A for
five seconds and then engine B puts that load on one of them only. Here every
engine of a *group* (the engines compared with each other: same batch, same
threads) runs one short block of calls per round, A B C, then B C A, ...
(the order rotates so that no engine always follows the same one), for
``rounds`` rounds. Each block gives the engine's fastest call of that round:
load from other processes only ever lengthens a call, and it hits engines
unevenly (a TensorFlow call that hands work between threads suffers far more
from an oversubscribed CPU than a single-threaded onnxruntime call), so the
fastest of a few calls is the steadiest estimate of what the engine itself
costs. The ratio of two engines is the median over rounds of their per-round
ratio, with a distribution-free 95% interval (order statistics of the median).
Latency percentiles (p50/p90/p99) come from every timed call of every block,
load included.

Example::

    engines = {"a": lambda: f(x), "b": lambda: g(x)}
    got = interleave(engines, rounds=15, calls=20, block_ms=20)
    got["a"]["stats"]["p50"], paired_ratio(got["b"]["blocks"], got["a"]["blocks"])
"""

from __future__ import annotations

import math
import time
from typing import Callable, Mapping

import numpy as np

from .timing import percentiles

MAX_WARMUP_S = 0.15
CONFIDENCE = 0.95
MIN_BLOCK_CALLS = 3     # the fastest of fewer calls than this is mostly luck


def calls_per_block(estimate_ms: float, calls: int, block_ms: float) -> int:
    """Timed calls per block: ``calls``, fewer when that would take longer than ``block_ms``, but
    at least MIN_BLOCK_CALLS (or ``calls`` when that is fewer)."""
    floor = min(MIN_BLOCK_CALLS, max(1, calls))
    if estimate_ms <= 0:
        return max(1, calls)
    return int(max(floor, min(calls, math.floor(block_ms / estimate_ms))))


def _warm(fn: Callable[[], object], warmup: int) -> float:
    """Call ``fn`` ``warmup`` times (at most MAX_WARMUP_S once 2 calls are done); its median call ms."""
    clock = time.perf_counter_ns
    times = []
    start = clock()
    for i in range(max(2, warmup)):
        t0 = clock()
        fn()
        times.append(clock() - t0)
        if i >= 1 and clock() - start > MAX_WARMUP_S * 1e9:
            break
    return float(np.median(times)) / 1e6


def interleave(engines: Mapping[str, Callable[[], object]], *, rounds: int, calls: int, block_ms: float,
               warmup: int = 10, on_round: Callable[[int], None] | None = None, settle_ms: float = 0.0) -> dict:
    """Time ``engines`` in interleaved rounds.

    Args:
        engines: name -> zero-argument callable (one call = one measured unit).
        rounds: how many times every engine gets a block.
        calls: timed calls per block at most.
        block_ms: a block stops adding calls beyond this many milliseconds (estimated at warmup);
            a slow engine still gets one call per block.
        warmup: untimed calls before the rounds (at most MAX_WARMUP_S once two are done); each block of
            an engine faster than ``block_ms`` also starts with one untimed call.
        on_round: called with the round index before each round (e.g. to sample the machine load).
        settle_ms: a pause before each block. onnxruntime's intra-op pool threads keep spinning
            for a while after a multi-threaded run; in a group of several such sessions the next
            block's threads then wait for a scheduler tick (~4 ms a call at batch 64, LSTM(128),
            2 threads on 2 cores). A pause lets them stop; 1-thread sessions have no pool.

    Returns:
        name -> {"stats": percentiles of every call (ms), "blocks": per-round fastest call (ms),
        "calls_per_block": int}.
    """
    if rounds < 1 or calls < 1:
        raise ValueError(f"rounds and calls must be >= 1; got {rounds}, {calls}")
    names = list(engines)
    estimate = {n: _warm(engines[n], warmup) for n in names}
    per_block = {n: calls_per_block(estimate[n], calls, block_ms) for n in names}
    # a cheap engine's first call after others ran is slower (caches): one untimed call re-warms it;
    # an engine slower than a block is timed as it comes (that call is the whole block)
    rewarm = {n: estimate[n] < block_ms for n in names}
    samples = {n: [] for n in names}
    blocks = {n: [] for n in names}
    clock = time.perf_counter_ns
    for r in range(rounds):
        if on_round is not None:
            on_round(r)
        k = r % len(names)
        for name in names[k:] + names[:k]:
            fn = engines[name]
            if settle_ms > 0:
                time.sleep(settle_ms / 1000)
            if rewarm[name]:
                fn()
            block = []
            append = block.append
            for _ in range(per_block[name]):
                t0 = clock()
                fn()
                append(clock() - t0)
            samples[name] += block
            blocks[name].append(min(block) / 1e6)
    return {n: {"stats": percentiles(samples[n]), "blocks": blocks[n], "calls_per_block": per_block[n]}
            for n in names}


def median_interval(values, confidence: float = CONFIDENCE) -> tuple[float, float, float]:
    """(median, low, high): a distribution-free interval for the median of ``values``.

    The interval is (x_(j), x_(n-j+1)) of the sorted values with the largest j whose
    binomial(n, 1/2) coverage is >= ``confidence``; with fewer than 6 values no such j
    exists and the interval is (min, max).
    """
    arr = np.sort(np.asarray(values, dtype=np.float64))
    n = arr.size
    if n == 0:
        raise ValueError("no values")
    med = float(np.median(arr))
    j = _order_index(n, confidence)
    if j is None:
        return med, float(arr[0]), float(arr[-1])
    return med, float(arr[j - 1]), float(arr[n - j])


def _order_index(n: int, confidence: float) -> int | None:
    """Largest j >= 1 with P(j <= B < n - j + 1) >= confidence for B ~ binomial(n, 1/2)."""
    best = None
    for j in range(1, n // 2 + 1):
        cover = sum(math.comb(n, i) for i in range(j, n - j + 1)) / 2 ** n
        if cover >= confidence:
            best = j
        else:
            break
    return best


def paired_ratio(numerator_blocks, denominator_blocks) -> dict:
    """Median of per-round ``numerator / denominator`` and its 95% interval.

    With the numerator a baseline's per-round time and the denominator onnxruntime's, this is
    the speed-up of onnxruntime over the baseline (> 1: onnxruntime is faster).
    """
    num, den = np.asarray(numerator_blocks, float), np.asarray(denominator_blocks, float)
    if num.shape != den.shape or num.size == 0:
        raise ValueError(f"paired blocks must have the same non-zero length; got {num.size} and {den.size}")
    med, lo, hi = median_interval(num / den)
    return {"ratio": med, "low": lo, "high": hi, "rounds": int(num.size)}
