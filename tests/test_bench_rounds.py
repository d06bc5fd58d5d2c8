"""The interleaved timing's statistics and the load record: pure functions on known numbers."""

import math
import time

import numpy as np
import pytest

from exporters.bench import machine
from exporters.bench.rounds import calls_per_block, interleave, median_interval, paired_ratio


def test_median_interval_uses_order_statistics():
    values = list(range(1, 16))                     # n = 15: ranks 4 and 12 cover 96.5%
    med, lo, hi = median_interval(values)
    assert (med, lo, hi) == (8.0, 4.0, 12.0)
    med, lo, hi = median_interval([3.0, 1.0, 2.0])  # too few for 95%: min..max
    assert (med, lo, hi) == (2.0, 1.0, 3.0)
    with pytest.raises(ValueError):
        median_interval([])


def test_interval_covers_the_true_median_about_95_percent_of_the_time():
    rng = np.random.default_rng(1)
    hits = sum(lo <= 0.0 <= hi for _, lo, hi in (median_interval(rng.standard_normal(15)) for _ in range(2000)))
    assert 0.94 <= hits / 2000 <= 0.99


def test_paired_ratio_cancels_load_shared_by_a_round():
    load = np.array([1, 5, 1, 3, 1, 8, 2, 1, 1, 4], float)     # every round slowed alike
    got = paired_ratio(3.0 * load, load)
    assert got["ratio"] == pytest.approx(3.0) and got["low"] == pytest.approx(3.0) and got["rounds"] == 10
    with pytest.raises(ValueError):
        paired_ratio([1.0, 2.0], [1.0])


def test_calls_per_block():
    assert calls_per_block(0.01, 20, 20.0) == 20          # fast: capped by calls
    assert calls_per_block(5.0, 20, 20.0) == 4            # 4 x 5 ms fit in 20 ms
    assert calls_per_block(50.0, 20, 20.0) == 3           # slow: three calls anyway (the fastest counts)
    assert calls_per_block(50.0, 2, 20.0) == 2            # never more than asked


def test_interleave_rotates_and_measures_each_engine():
    order = []
    engines = {n: (lambda n=n, d=d: (order.append(n), time.sleep(d))) for n, d in (("a", 0.0005), ("b", 0.002))}
    got = interleave(engines, rounds=4, calls=3, block_ms=100, warmup=2)
    assert set(got) == {"a", "b"}
    for name in "ab":
        assert len(got[name]["blocks"]) == 4 and got[name]["stats"]["reps"] == 12
    assert got["b"]["stats"]["p50"] > got["a"]["stats"]["p50"]
    r = paired_ratio(got["b"]["blocks"], got["a"]["blocks"])
    assert r["ratio"] > 1.5
    timed = order[2 * 2:]                          # after 2 warmup calls each: blocks of 1 + 3 calls
    starts = [timed[i] for i in range(0, len(timed), 4)]
    assert starts == ["a", "b", "b", "a", "a", "b", "b", "a"]   # the order rotates each round


def test_settle_pauses_before_each_block_outside_the_timed_calls():
    engines = {n: (lambda: None) for n in "ab"}
    start = time.perf_counter()
    got = interleave(engines, rounds=3, calls=2, block_ms=10, warmup=2, settle_ms=30)
    assert time.perf_counter() - start >= 3 * 2 * 0.030          # one pause per block
    assert max(got["a"]["blocks"] + got["b"]["blocks"]) < 5.0    # the pause is not in any call (ms)


def test_load_summary_warns_when_the_load_moves():
    base = machine.load_sample()
    assert base["load1"] is None or base["load1"] >= 0
    quiet = [{"t": 1.0, "load1": 0.5, "jiffies": [100, 0, 0, 900, 0, 0, 0, 0]},
             {"t": 2.0, "load1": 0.6, "jiffies": [200, 0, 0, 1800, 0, 0, 0, 0]}]
    got = machine.load_summary(quiet, cores=2)
    assert got["warning"] is None and got["steal_pct"] == 0.0 and got["load1_max"] == 0.6
    moving = [dict(quiet[0]), {"t": 2.0, "load1": 2.5, "jiffies": [200, 0, 0, 1000, 0, 0, 0, 100]}]
    got = machine.load_summary(moving, cores=2)
    assert "moved from 0.50 to 2.50" in got["warning"] and "stolen" in got["warning"]
    assert math.isclose(got["steal_pct"], 100 * 100 / 300, rel_tol=1e-3)
