"""Each algorithm of each convolution gradient, side by side on issue 9's 18 shapes (VGG-16's
nine 3x3 layers at batch 1 / 224x224 and at batch 8 / 56x56): direct, F(2,3), F(4,3) and F(6,3)
for the input gradient (conv2d_input) and for the weight gradient (conv2d_weight), with what
`auto` picks and how far that is from the fastest. It is the measurement the backward cost
models in fastconv/_cpu.py are fitted to.

    python3 bench/bench_backward_algorithms.py [--threads 2] [--grads input weight] [--save t.json]
    python3 bench/bench_backward_algorithms.py --load t.json --fit     # refit without re-timing

--fit prints model constants fitted to the times: the direct constant as the median over shapes
of measured / modelled time (as _cpu._DIRECT was), the Winograd constants by non-negative least
squares on relative error over every (shape, tile), each time taken relative to direct's on the
same shape and run (see fit). `--load a.json b.json --fit` fits several runs together. Times go through fastconv.timing.compare
(settle, alternate, >= 3 rounds); each figure is a median per-call time in ms.
"""
from __future__ import annotations

import argparse
import json
import math
import sys

import numpy as np

import fastconv
import fastconv.functional as F
from fastconv import _cpu
from fastconv._geometry import conv_geometry
from fastconv._shapes import ISSUE_SHAPES
from fastconv.timing import compare, ensure_fast_allocator, geomean, machine_line, markdown_table

ALGOS = ("direct", "winograd_f2", "winograd_f4", "winograd_f6")


def geometry(s):
    return conv_geometry(s.input_shape, s.weight_shape, 1, s.padding, 1, 1)


def time_shape(s, grads, rounds, rng):
    """{grad: {algo: ms}} for shape s."""
    x = rng.standard_normal(s.input_shape).astype(np.float32)
    w = (rng.standard_normal(s.weight_shape) / np.sqrt(9 * s.in_channels)).astype(np.float32)
    dy = rng.standard_normal((s.batch, s.out_channels, s.out_size, s.out_size)).astype(np.float32)
    p = s.padding
    calls = {
        "input": lambda a: (lambda: F.conv2d_input(x.shape, w, dy, padding=p, algorithm=a)),
        "weight": lambda a: (lambda: F.conv2d_weight(x, w.shape, dy, padding=p, algorithm=a)),
    }
    out = {}
    for grad in grads:
        cmp = compare({a: calls[grad](a) for a in ALGOS}, rounds=rounds, calls=3, settle_seconds=1.0)
        out[grad] = {a: cmp.median_time(a) * 1e3 for a in ALGOS}
    return out


def auto_choice(s, grad):
    g = geometry(s)
    return _cpu.choose_algorithm("auto", s.input_shape, s.weight_shape, g, input_grad=grad == "input",
                                 weight_grad=grad == "weight")


def table(times, grad):
    rows, losses = [], []
    for s in ISSUE_SHAPES:
        t = times[s.label][grad]
        best = min(t, key=t.get)
        auto = auto_choice(s, grad)
        losses.append(t[auto] / t[best])
        rows.append([s.label] + [f"{t[a]:.2f}" + (" *" if a == best else "") for a in ALGOS]
                    + [auto, f"{t[auto] / t[best]:.2f}"])
    print(f"### {grad} gradient, ms per call (* fastest)\n\n"
          f"{markdown_table(['layer'] + list(ALGOS) + ['auto', 'auto / fastest'], rows)}\n")
    print(f"auto within {max(losses):.2f}x of the fastest on every shape; geomean auto / fastest "
          f"{geomean(losses):.3f}\n")


# ---------------------------------------------------------------- model fitting

def features(s, grad, m):
    """The cost model's terms for shape s, the gradient and tile m (per group; groups = 1 here)."""
    n, c, h, _ = s.input_shape
    k = s.out_channels
    oh = ow = s.out_size
    if grad == "input":  # the conv actually run: grad_output (K channels) -> C channels
        c, k, oh, ow = k, c, h, h
    a = m + 2
    tiles = n * -(-oh // m) * -(-ow // m)
    if grad == "input":  # _cpu._heuristic(input_grad=True): GEMM, transforms, weight transform (whole or blocked)
        blocked = _cpu.dx_blocked(n, h, h, m)
        return [a * a * k * c * tiles, a ** 3 * tiles * (c + k), 0 if blocked else a * a * k * c,
                a * a * k * c if blocked else 0]
    blocks = -(-tiles // _cpu._wg_block(a, c, k))  # _cpu._weight_grad_heuristic
    return [a * a * k * c * tiles, a ** 3 * tiles * (c + k), a * a * k * c * blocks]


def direct_feature(s):
    n, c = s.input_shape[:2]
    k = s.out_channels
    return n * k * c * 9 * s.out_size ** 2 * max(1.0, 16.0 / min(c, k)) ** 0.5


def fit(runs, grad):
    """Constants for one gradient from one or more runs ({shape label: {grad: {algo: ms}}}).
    Each Winograd time enters relative to the direct time of the same shape and run (they were
    alternated in the same rounds), scaled by the fitted direct model: machine load cancels, and
    what is fitted is what auto decides, Winograd's cost against direct's."""
    from scipy.optimize import nnls
    direct = float(np.median([t[s.label][grad]["direct"] / direct_feature(s) for t in runs for s in ISSUE_SHAPES]))
    rows, targets = [], []
    for t in runs:
        for s in ISSUE_SHAPES:
            scale = direct * direct_feature(s) / t[s.label][grad]["direct"]
            for m in (2, 4, 6):
                target = t[s.label][grad][f"winograd_f{m}"] * scale
                rows.append([f / target for f in features(s, grad, m)])  # relative error
                targets.append(target)
    coef, _ = nnls(np.array(rows), np.ones(len(rows)))
    names = ("_DIRECT", "_GEMM", "_TRANSFORM", "_WEIGHT", "_DX_WEIGHT_BLOCKED") if grad == "input" else \
        ("_WG_DIRECT", "_WG_GEMM", "_WG_TRANSFORM", "_WG_FIXED")
    print(f"{grad} gradient fit: " + ", ".join(f"{n} = {v:.3g}" for n, v in zip(names, [direct, *coef])))
    errs = [abs(float(np.dot(r, coef)) - 1) for r in rows]
    print(f"  Winograd model: median |relative error| {np.median(errs):.2f}, worst {max(errs):.2f}\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--grads", nargs="+", default=["input", "weight"], choices=["input", "weight"])
    ap.add_argument("--save", help="write the times (JSON) here")
    ap.add_argument("--load", nargs="+", help="read times saved by --save instead of measuring (several runs: "
                                              "the tables show the first, --fit uses all)")
    ap.add_argument("--fit", action="store_true", help="print cost-model constants fitted to the times")
    args = ap.parse_args()
    if args.load:
        runs = []
        for path in args.load:
            with open(path) as f:
                runs.append(json.load(f))
        times = runs[0]
        grads = [g for g in args.grads if all(g in r[s.label] for r in runs for s in ISSUE_SHAPES)]
    else:
        ensure_fast_allocator()
        fastconv.set_num_threads(args.threads)
        print(f"Machine: {machine_line(args.threads)}\n")
        rng = np.random.default_rng(0)
        times, grads = {}, args.grads
        for s in ISSUE_SHAPES:
            times[s.label] = time_shape(s, grads, args.rounds, rng)
            print(f"# {s.label}: {json.dumps(times[s.label])}", file=sys.stderr, flush=True)
        if args.save:
            with open(args.save, "w") as f:
                json.dump(times, f, indent=1)
        runs = [times]
    for grad in grads:
        table(times, grad)
    if args.fit:
        for grad in grads:
            fit(runs, grad)


if __name__ == "__main__":
    main()
