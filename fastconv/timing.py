"""The one timing harness: bench/ scripts, `fastconv bench` and the demo report all measure
through it, so every ratio fastconv prints is taken the same way.

Rules it enforces (a ratio between two libraries is only as fair as the worst of these):
- both sides are warmed up until their timings settle, not for a fixed count;
- the candidates alternate inside every round, and the order rotates between rounds, so a
  slow spell of the machine lands on all of them;
- a round times each candidate over several calls and keeps the median; the ratio is taken
  per round, and the result is the median ratio over >= 3 rounds with its min-max spread.
Giving both sides the same work (allocation on both, or `out=` on both; the same threads and
dtype) is the caller's job: the harness cannot see inside the callables.

PyTorch's fast state. With glibc's default malloc, a freed block above the (dynamic) mmap
threshold goes back to the kernel, so the next call's output and oneDNN scratch arrive as fresh
pages: a torch 64->64 conv at 224x224 page-faults ~7,500 times per call (~30 MB), and its time
moves by up to 2x with what ran before it, because freeing a large block raises the threshold.
`ensure_fast_allocator()` re-executes a benchmark with the thresholds pinned high
(FAST_ALLOCATOR_ENV): both libraries then reuse their freed memory and the same conv faults 0
times per call. It is the benchmark process's environment, set before either library loads and
the same for both; `import fastconv` changes nothing of the kind.
"""
from __future__ import annotations

import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List


def median_call_time(fn: Callable[[], object], calls: int) -> float:
    """Median wall time of `calls` calls of fn(), in seconds."""
    times = []
    for _ in range(calls):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def cpu_time_rounds(fns: Dict[str, Callable[[], object]], *, rounds: int, calls: int,
                    loops: int = 5) -> Dict[str, List[float]]:
    """{name: one CPU time per call (us) per round} for per-call overhead on one thread: each
    round times every function (in turn, the order reversed every other round) as the median over
    `loops` loops of `calls` calls. Process CPU time, not wall time: on a shared machine wall
    time would mostly measure how soon the OS schedules the caller."""
    def per_call_us(fn):
        fn()
        per_call = []
        for _ in range(loops):
            t0 = time.process_time()
            for _ in range(calls):
                fn()
            per_call.append((time.process_time() - t0) / calls * 1e6)
        return statistics.median(per_call)
    samples = {name: [] for name in fns}
    for r in range(rounds):
        for name in (list(fns) if r % 2 == 0 else list(fns)[::-1]):
            samples[name].append(per_call_us(fns[name]))
    return samples


def settle(fn: Callable[[], object], *, window: int = 3, tolerance: float = 0.1, max_seconds: float = 5.0,
           min_calls: int = 2) -> int:
    """Call fn() until the medians of two consecutive windows of `window` calls agree within
    `tolerance` (caches, allocator pools, JIT and page faults have settled), or `max_seconds`
    have passed. Returns the number of calls made."""
    for _ in range(min_calls):
        fn()
    calls, start = min_calls, time.perf_counter()
    previous = median_call_time(fn, window)
    calls += window
    while time.perf_counter() - start < max_seconds:
        current = median_call_time(fn, window)
        calls += window
        if abs(current - previous) <= tolerance * min(current, previous):
            break
        previous = current
    return calls


@dataclass(frozen=True)
class Ratio:
    """time(numerator) / time(denominator) over the rounds: > 1 means the denominator is faster."""
    median: float
    low: float
    high: float

    def __str__(self) -> str:
        return f"{self.median:.2f} ({self.low:.2f}-{self.high:.2f})"


@dataclass
class Comparison:
    """Per-round median call times (seconds) of each candidate."""
    times: Dict[str, List[float]] = field(default_factory=dict)

    def median_time(self, name: str) -> float:
        return statistics.median(self.times[name])

    def ratio(self, numerator: str, denominator: str) -> Ratio:
        per_round = [a / b for a, b in zip(self.times[numerator], self.times[denominator])]
        return Ratio(statistics.median(per_round), min(per_round), max(per_round))


def compare(candidates: Dict[str, Callable[[], object]], *, rounds: int = 3, calls: int = 5,
            settle_seconds: float = 5.0) -> Comparison:
    """Time each candidate callable side by side (see the module docstring)."""
    if rounds < 3:
        raise ValueError(f"rounds must be >= 3 for a median with a spread, got {rounds}")
    if calls < 1:
        raise ValueError(f"calls must be >= 1, got {calls}")
    if len(candidates) < 1:
        raise ValueError("candidates must name at least one callable")
    names = list(candidates)
    for name in names:
        settle(candidates[name], max_seconds=settle_seconds)
    result = Comparison({name: [] for name in names})
    for r in range(rounds):
        order = names[r % len(names):] + names[:r % len(names)]
        for name in order:
            result.times[name].append(median_call_time(candidates[name], calls))
    return result


def time_in_processes(commands: Dict[str, List[str]], *, rounds: int = 3, timeout: float = 600.0) -> Comparison:
    """Time whole programs the way a user compares libraries: each command runs in its own
    process, the commands alternate (order rotating between rounds) and each process prints, as
    its last stdout line, JSON {"seconds": its own median call time}. Returns the per-round times."""
    if rounds < 3:
        raise ValueError(f"rounds must be >= 3 for a median with a spread, got {rounds}")
    names = list(commands)
    result = Comparison({name: [] for name in names})
    for r in range(rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            done = subprocess.run(commands[name], capture_output=True, text=True, timeout=timeout)
            if done.returncode != 0:
                raise RuntimeError(f"{name} failed ({done.returncode}): {done.stderr[-2000:]}")
            result.times[name].append(float(json.loads(done.stdout.strip().splitlines()[-1])["seconds"]))
    return result


def report_seconds(seconds: float) -> None:
    """The child side of time_in_processes: print the measured time as its last line."""
    print(json.dumps({"seconds": seconds}), flush=True)


# glibc malloc thresholds (bytes) that keep freed blocks for reuse; see the module docstring.
FAST_ALLOCATOR_ENV = {"MALLOC_MMAP_THRESHOLD_": str(1 << 30), "MALLOC_TRIM_THRESHOLD_": str(1 << 30)}


def ensure_fast_allocator() -> None:
    """Re-execute this script (same interpreter, same arguments) with FAST_ALLOCATOR_ENV unless
    it is already in effect. Call it first thing in a benchmark's main, before any work."""
    if all(os.environ.get(k) == v for k, v in FAST_ALLOCATOR_ENV.items()):
        return
    os.execve(sys.executable, [sys.executable] + sys.argv, {**os.environ, **FAST_ALLOCATOR_ENV})


def markdown_table(headers, rows) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def geomean(values) -> float:
    values = [v for v in values if v > 0]
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else float("nan")


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def machine_line(threads: int) -> str:
    """One line naming the machine and software a table was measured on."""
    import fastconv
    parts = [cpu_model(), f"{os.cpu_count()} cores", f"{threads} threads", f"Python {platform.python_version()}"]
    try:
        import torch
        parts.append(f"torch {torch.__version__}")
    except ImportError:
        pass
    # Where fastconv came from: `python3 bench/x.py` puts bench/, not the checkout, on sys.path, so
    # without PYTHONPATH=. a table silently measures whatever fastconv is installed.
    parts.append(f"fastconv ISA {fastconv.capabilities()['isa']} from {os.path.dirname(os.path.dirname(fastconv.__file__))}")
    if all(os.environ.get(k) == v for k, v in FAST_ALLOCATOR_ENV.items()):
        parts.append("malloc thresholds pinned (fastconv.timing.FAST_ALLOCATOR_ENV)")
    parts.append(time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))
    return ", ".join(parts)
