"""Side-by-side timing helpers shared by the benchmark scripts (not part of the package)."""
from __future__ import annotations

import statistics
import time

from fastconv.timing import geomean, machine_line  # noqa: F401  (re-exported for the scripts)


def median_time(fn, repeats=7, warmup=2, min_time=0.0):
    """Median wall time of fn() in seconds, after warm-up calls."""
    for _ in range(warmup):
        fn()
    times = []
    start = time.perf_counter()
    while len(times) < repeats or time.perf_counter() - start < min_time:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def best_time(fn, repeats=5, warmup=1):
    """Fastest wall time of fn() in seconds, after warm-up calls (for whole-network runs, where
    the minimum is the least disturbed by the rest of the machine)."""
    for _ in range(warmup):
        fn()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def setup_threads(threads):
    import fastconv
    import torch
    torch.set_num_threads(threads)
    fastconv.set_num_threads(threads)


def print_table(headers, rows):
    print("| " + " | ".join(headers) + " |")
    print("|" + "|".join("---" for _ in headers) + "|")
    for r in rows:
        print("| " + " | ".join(str(c) for c in r) + " |")
