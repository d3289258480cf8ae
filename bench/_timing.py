"""Side-by-side timing helpers shared by the benchmark scripts (not part of the package)."""
from __future__ import annotations

import math
import os
import platform
import statistics
import time


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


def geomean(values):
    values = [v for v in values if v > 0]
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else float("nan")


def machine_line(threads):
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    import fastconv
    import torch
    return (f"{cpu}, {os.cpu_count()} cores, {threads} threads, Python {platform.python_version()}, "
            f"torch {torch.__version__}, fastconv ISA {fastconv.capabilities()['isa']}, "
            f"{time.strftime('%Y-%m-%d')}")


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
