"""A fastconv conv called right after a torch op, against the same call with no torch op
before it (issue 22's coexistence target: <= 1.05x, geomean over VGG-16's 3x3 layers).

After each op, torch's OpenMP workers spin for a while (libgomp's default wait policy). A
kernel that starts other threads right then shares the cores with them. Where torch has
loaded its libgomp globally, fastconv hands its loops to that team instead
(csrc/common/host_openmp.h); FASTCONV_HOST_OPENMP=0 keeps fastconv's own pool, the behaviour
before. Each setting runs in its own process, torch imported first and in its fast state
(fastconv.timing.ensure_fast_allocator), 2 threads each.

In a round, each layer is timed in blocks: `calls` fastconv calls back to back ("alone"), then
`calls` fastconv calls each right after a torch ReLU over the layer's input ("after torch"; only
the fastconv call is timed). Ratio = after / alone per round; median over rounds, min-max.

    python bench/bench_after_torch.py [--rounds 5] [--calls 7] [--threads 2]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time


def measure(rounds, calls, threads):
    """Child: {layer: [ratio per round]} and the thread pool's mode, as JSON on stdout."""
    import torch
    torch.set_num_threads(threads)
    import numpy as np
    import fastconv
    import fastconv.functional as F
    from fastconv._shapes import vgg16_convs
    fastconv.set_num_threads(threads)
    rng = np.random.default_rng(0)
    ratios, alone_ms = {}, {}
    for s in vgg16_convs(1):
        x = rng.standard_normal((s.batch, s.in_channels, s.size, s.size)).astype(np.float32)
        w = rng.standard_normal((s.out_channels, s.in_channels, 3, 3)).astype(np.float32)
        xt = torch.from_numpy(x.copy())

        def alone():
            t0 = time.perf_counter()
            F.conv2d(x, w, padding=1)
            return time.perf_counter() - t0

        def after_torch():
            torch.relu(xt)
            t0 = time.perf_counter()
            F.conv2d(x, w, padding=1)
            return time.perf_counter() - t0

        for _ in range(3):
            alone(), after_torch()
        per_round, alone_times = [], []
        for _ in range(rounds):
            a = statistics.median(alone() for _ in range(calls))
            b = statistics.median(after_torch() for _ in range(calls))
            per_round.append(b / a)
            alone_times.append(a)
        ratios[s.name] = per_round
        alone_ms[s.name] = 1e3 * statistics.median(alone_times)
    print(json.dumps({"ratios": ratios, "alone_ms": alone_ms,
                      "runs_on": fastconv.capabilities()["thread_pool"]["runs_on"]}))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--calls", type=int, default=7)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.rounds < 3:
        ap.error("--rounds must be >= 3")
    if args.child:
        return measure(args.rounds, args.calls, args.threads)
    from fastconv.timing import ensure_fast_allocator, geomean, machine_line, markdown_table
    ensure_fast_allocator()  # inherited by the children
    print(f"Machine: {machine_line(args.threads)}\n")
    settings = {"host OpenMP team (default)": {}, "own pool (FASTCONV_HOST_OPENMP=0)": {"FASTCONV_HOST_OPENMP": "0"}}
    results = {}
    for label, env in settings.items():
        out = subprocess.run([sys.executable, __file__, "--child", "--rounds", str(args.rounds), "--calls",
                              str(args.calls), "--threads", str(args.threads)],
                             env=dict(os.environ, **env), capture_output=True, text=True, check=True)
        results[label] = json.loads(out.stdout.strip().splitlines()[-1])
    layers = list(next(iter(results.values()))["ratios"])
    rows = []
    for layer in layers:
        row = [layer]
        for label in settings:
            r = results[label]["ratios"][layer]
            row += [f"{results[label]['alone_ms'][layer]:.2f}", f"{statistics.median(r):.2f} ({min(r):.2f}-{max(r):.2f})"]
        rows.append(row)
    geo = ["geomean"]
    for label in settings:
        geo += [f"{geomean(list(results[label]['alone_ms'].values())):.2f}",
                f"{geomean([statistics.median(results[label]['ratios'][k]) for k in layers]):.2f}"]
    rows.append(geo)
    print("fastconv conv: its time alone (ms), and its time right after a torch op / alone "
          "(1.00 = no loss; median of rounds, min-max)\n")
    headers = ["layer (batch 1)"]
    for label in settings:
        headers += [f"{label}: alone ms", f"{label}: after torch / alone"]
    print(markdown_table(headers, rows))
    print("\nRuns on: " + "; ".join(f"{label}: {results[label]['runs_on']}" for label in settings))


if __name__ == "__main__":
    main()
