"""Micro-benchmark over fastconv._C.kernel_list(): every kernel this CPU runs, timed on one
operator call under fastconv.use_isa(its ISA), with its speed-up over the baseline (scalar)
kernel of the same operator and dtype. GEMM tiles run one full tile per call (kc = 1024, the
panels in L2; a call includes the Python overhead and the copy of B into an aligned panel, so
the GFLOP/s compare tiles with one another, not with the machine's peak). Kernels that need an ISA this CPU lacks are listed
as skipped. The time is the median of --calls calls, per --rounds round, median over rounds;
the ISAs alternate within a round.

    python bench/bench_kernels.py [--threads 1] [--rounds 5] [--calls 5] [--op gemm color_adjust]
"""
from __future__ import annotations

import argparse
import re
import statistics

import numpy as np

import fastconv
import fastconv.functional as F
from fastconv import _C
from fastconv.augment import functional as AF
from fastconv.timing import median_call_time
from fastconv.augment import matrices as M


def gemm_call(entry, rng):
    dt = np.dtype(entry["dtype"])
    mr, nr = map(int, re.match(r"gemm_(\d+)x(\d+)__", entry["name"]).groups())
    kc = 1024
    a, b = rng.standard_normal((kc, mr)).astype(dt), rng.standard_normal((kc, nr)).astype(dt)
    c = np.zeros((mr, nr), dt)
    return (lambda: _C.gemm_tile(entry["name"], a, b, c, True)), 2 * mr * nr * kc


def op_call(entry, rng):
    """One representative call of the operator a listed kernel serves (None: not timed here)."""
    op, dt = entry["op"], np.dtype(entry["dtype"])
    imgs = rng.integers(0, 256, (16, 224, 224, 3), dtype=np.uint8)
    batch = imgs if dt == np.uint8 else (imgs.transpose(0, 3, 1, 2) / 255).astype(dt)
    layout = "NHWC" if dt == np.uint8 else "NCHW"
    if op == "max_pool2d":
        x = rng.standard_normal((8, 64, 112, 112)).astype(dt)
        return lambda: F.max_pool2d(x, 2)
    if op in ("winograd_transforms", "transpose_panel"):
        x = rng.standard_normal((1, 64, 56, 56)).astype(dt)
        w = rng.standard_normal((64, 64, 3, 3)).astype(dt)
        if op == "winograd_transforms":
            return lambda: F.conv2d(x, w, padding=1, algorithm="winograd_f4")
        dy = F.conv2d(x, w, padding=1)
        return lambda: F.conv2d_weight(x, w.shape, dy, padding=1)
    n = batch.shape[0]
    if op == "color_adjust":
        return lambda: AF.adjust_color(batch, 1.1, 0.9, 1.2, 0.05, layout=layout)
    if op == "gaussian_blur":
        return lambda: AF.gaussian_blur(batch, 1.5, layout=layout)
    if op == "warp_affine":
        m = M.about(M.rotation(np.full(n, 20.0)), *M.center((224, 224)))
        return lambda: AF.warp_affine(batch, m, layout=layout)
    if op == "flip":
        return lambda: AF.flip(batch, True, layout=layout)
    if op == "gaussian_noise":
        keys = np.arange(n, dtype=np.uint64)
        return lambda: AF.gaussian_noise(batch, 0.05, keys, layout=layout)
    return None


def timed(fn, isa, calls):
    with fastconv.use_isa(isa):
        return median_call_time(fn, calls)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--calls", type=int, default=5)
    ap.add_argument("--op", nargs="+", help="operators to run (default: all)")
    args = ap.parse_args()
    fastconv.set_num_threads(args.threads)
    isas = fastconv.capabilities()["available_isas"]
    rng = np.random.default_rng(0)
    print(f"# fastconv kernel list, {args.threads} thread(s); CPU best ISA {isas[-1]}; median over {args.rounds} "
          f"rounds of the median of {args.calls} calls")
    print(f"{'kernel':34s} {'dtype':8s} {'time':>10s} {'vs scalar':>9s} {'GFLOP/s':>8s}")
    families = {}
    for e in _C.kernel_list():
        if not args.op or e["op"] in args.op:
            families.setdefault((e["op"], e["dtype"]), []).append(e)
    for (op, dtype), entries in families.items():
        runnable = [e for e in entries if e["isa"] in isas]
        calls = {}
        for e in runnable:
            fn, flops = gemm_call(e, rng) if op == "gemm" else (op_call(e, rng), 0)
            if fn is not None:
                fn()  # warm-up
                calls[e["name"]] = (fn, flops, e["isa"])
        times = {name: [] for name in calls}
        for r in range(args.rounds):
            names = list(calls)
            for k in range(len(names)):
                name = names[(k + r) % len(names)]
                times[name].append(timed(calls[name][0], calls[name][2], args.calls))
        base = next((statistics.median(times[e["name"]]) for e in runnable
                     if e["isa"] == "scalar" and e["name"] in times), None)
        for e in entries:
            if e["name"] not in times:
                why = f"needs {e['isa']}" if e["isa"] not in isas else "no timing call for this op"
                print(f"{e['name']:34s} {dtype:8s} {'skipped: ' + why:>30s}")
                continue
            t = statistics.median(times[e["name"]])
            flops = calls[e["name"]][1]
            speedup = f"{base / t:8.2f}x" if base and op != "gemm" else f"{'':9s}"
            gflops = f"{flops / t / 1e9:8.1f}" if flops else ""
            print(f"{e['name']:34s} {dtype:8s} {t * 1e3:8.3f}ms {speedup} {gflops}")


if __name__ == "__main__":
    main()
