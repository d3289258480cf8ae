"""Each algorithm of each convolution op, side by side on issue 9's 18 shapes (VGG-16's nine 3x3
layers at batch 1 / 224x224 and at batch 8 / 56x56): direct, F(2,3), F(4,3) and F(6,3) for the
forward (functional.conv2d; "forward_reused": with functional.winograd_weights kept between
calls, as nn.Conv2d does), the input gradient (conv2d_input) and the weight gradient
(conv2d_weight), with what `auto` picks and how far that is from the fastest. It is the
measurement the cost models in fastconv/_cpu.py are fitted to.

    python3 bench/bench_conv_algorithms.py [--threads 2] [--ops forward input weight] [--save t.json]
    python3 bench/bench_conv_algorithms.py --load t.json --fit     # refit without re-timing

--fit prints model constants fitted to the times: the direct constant as the median over shapes
of measured / modelled time, the Winograd constants by non-negative least squares on relative
error over every (shape, tile), each time taken relative to direct's on the same shape and run
(see fit). The forward model (_cpu._heuristic) is fitted to the forward, forward_reused and
input-gradient times together (the input gradient runs the forward's drivers); the weight
gradient has its own. `--load a.json b.json --fit` fits several runs together. Times go through
fastconv.timing.compare (settle, alternate, >= 3 rounds); each figure is a median per-call time
in ms.
"""
from __future__ import annotations

import argparse
import json
import sys

import numpy as np

import fastconv
import fastconv.functional as F
from fastconv import _C, _cpu
from fastconv._geometry import conv_geometry
from fastconv._shapes import ISSUE_SHAPES
from fastconv.timing import compare, ensure_fast_allocator, geomean, machine_line, markdown_table

ALGOS = ("direct", "winograd_f2", "winograd_f4", "winograd_f6")
WINO = ALGOS[1:]


def geometry(s):
    return conv_geometry(s.input_shape, s.weight_shape, 1, s.padding, 1, 1)


def time_shape(s, ops, rounds, rng):
    """{op: {algo: ms}} for shape s ("forward" also fills "forward_reused")."""
    x = rng.standard_normal(s.input_shape).astype(np.float32)
    w = (rng.standard_normal(s.weight_shape) / np.sqrt(9 * s.in_channels)).astype(np.float32)
    dy = rng.standard_normal((s.batch, s.out_channels, s.out_size, s.out_size)).astype(np.float32)
    p = s.padding
    wws = {a: F.winograd_weights(w, tile=int(a[-1])) for a in WINO}
    calls = {
        "forward": lambda a: (lambda: F.conv2d(x, w, padding=p, algorithm=a)),
        "input": lambda a: (lambda: F.conv2d_input(x.shape, w, dy, padding=p, algorithm=a)),
        "weight": lambda a: (lambda: F.conv2d_weight(x, w.shape, dy, padding=p, algorithm=a)),
    }
    out = {}
    for op in ops:
        candidates = {a: calls[op](a) for a in ALGOS}
        if op == "forward":  # reused weights alternate with the same shape's direct and per-call runs
            candidates.update({a + " reused": (lambda ww: lambda: F.conv2d(x, ww, padding=p))(wws[a]) for a in WINO})
        cmp = compare(candidates, rounds=rounds, calls=3, settle_seconds=1.0)
        out[op] = {a: cmp.median_time(a) * 1e3 for a in ALGOS}
        if op == "forward":
            out["forward_reused"] = {"direct": out[op]["direct"],
                                     **{a: cmp.median_time(a + " reused") * 1e3 for a in WINO}}
    return out


def auto_choice(s, op):
    g = geometry(s)
    if op == "forward_reused":  # what nn.Conv2d runs: Winograd whenever auto would transform
        return _cpu.choose_algorithm("auto", s.input_shape, s.weight_shape, g, weights_reused=True)
    return _cpu.choose_algorithm("auto", s.input_shape, s.weight_shape, g, input_grad=op == "input",
                                 weight_grad=op == "weight")


def table(times, grad):
    rows, losses = [], []
    for s in ISSUE_SHAPES:
        t = times[s.label][grad]
        best = min(t, key=t.get)
        auto = auto_choice(s, grad)
        losses.append(t[auto] / t[best])
        rows.append([s.label] + [f"{t[a]:.2f}" + (" *" if a == best else "") for a in ALGOS]
                    + [auto, f"{t[auto] / t[best]:.2f}"])
    print(f"### {grad}, ms per call (* fastest)\n\n"
          f"{markdown_table(['layer'] + list(ALGOS) + ['auto', 'auto / fastest'], rows)}\n")
    print(f"auto within {max(losses):.2f}x of the fastest on every shape; geomean auto / fastest "
          f"{geomean(losses):.3f}\n")


# ---------------------------------------------------------------- model fitting

FORWARD_MODEL_OPS = ("forward", "forward_reused", "input")


def features(s, op, m):
    """The cost model's terms for shape s, the op and tile m (per group; groups = 1 here): those
    of _cpu._heuristic for the forward-model ops, of _cpu._weight_grad_heuristic for "weight"."""
    n, c, h, _ = s.input_shape
    k = s.out_channels
    oh = ow = s.out_size
    if op == "input":  # the conv actually run: grad_output (K channels) -> C channels
        c, k, oh, ow = k, c, h, h
    a = m + 2
    tiles = n * -(-oh // m) * -(-ow // m)
    if op == "weight":
        blocks = -(-tiles // _C.winograd_weight_grad_block(m, k, c, tiles))
        return [a * a * k * c * tiles, a ** 3 * tiles * (c + k), a * a * k * c * blocks]
    tiles32 = -(-tiles // 32) * 32
    reused = op == "forward_reused"
    blocked = op == "input" and _cpu.dx_blocked(n, h, h, m)
    weight = a * a * k * c
    return [weight * tiles32, a ** 3 * tiles * (c + k),
            weight if not reused and not blocked else 0, weight if reused else 0, weight if blocked else 0]


def direct_feature(s):
    n, c = s.input_shape[:2]
    k = s.out_channels
    return n * k * c * 9 * s.out_size ** 2 * max(1.0, 16.0 / min(c, k)) ** 0.5


def fit(runs, ops):
    """Constants for one model from one or more runs ({shape label: {op: {algo: ms}}}); ops: the
    model's ops present in the runs. Each Winograd time enters relative to the direct time of the
    same shape, op and run (they were alternated in the same rounds), scaled by the fitted direct
    model: machine load cancels, and what is fitted is what auto decides, Winograd's cost against
    direct's. The direct constant comes from the first op (the forward for the forward model)."""
    from scipy.optimize import nnls
    direct = float(np.median([t[s.label][ops[0]]["direct"] / direct_feature(s) for t in runs for s in ISSUE_SHAPES]))
    rows = []
    for t in runs:
        for op in ops:
            for s in ISSUE_SHAPES:
                scale = direct * direct_feature(s) / t[s.label][op]["direct"]
                for m in (2, 4, 6):
                    target = t[s.label][op][f"winograd_f{m}"] * scale
                    rows.append([f / target for f in features(s, op, m)])  # relative error
    coef, _ = nnls(np.array(rows), np.ones(len(rows)))
    names = ("_WG_DIRECT", "_WG_GEMM", "_WG_TRANSFORM", "_WG_FIXED") if ops == ["weight"] else \
        ("_DIRECT", "_GEMM", "_TRANSFORM", "_WEIGHT", "_WEIGHT_REUSED", "_DX_WEIGHT_BLOCKED")
    print(f"{'/'.join(ops)} fit: " + ", ".join(f"{n} = {v:.3g}" for n, v in zip(names, [direct, *coef])))
    errs = [abs(float(np.dot(r, coef)) - 1) for r in rows]
    print(f"  Winograd model: median |relative error| {np.median(errs):.2f}, worst {max(errs):.2f}\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--ops", nargs="+", default=["forward", "input", "weight"], choices=["forward", "input", "weight"])
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
    else:
        ensure_fast_allocator()
        fastconv.set_num_threads(args.threads)
        print(f"Machine: {machine_line(args.threads)}\n")
        rng = np.random.default_rng(0)
        times = {}
        for s in ISSUE_SHAPES:
            times[s.label] = time_shape(s, args.ops, args.rounds, rng)
            print(f"# {s.label}: {json.dumps(times[s.label])}", file=sys.stderr, flush=True)
        if args.save:
            with open(args.save, "w") as f:
                json.dump(times, f, indent=1)
        runs = [times]
    ops = [op for op in ("forward", "forward_reused", "input", "weight")
           if all(op in r[s.label] for r in runs for s in ISSUE_SHAPES)]
    for op in ops:
        table(times, op)
    if args.fit:
        forward_ops = [op for op in FORWARD_MODEL_OPS if op in ops]
        if forward_ops:
            fit(runs, forward_ops)
        if "weight" in ops:
            fit(runs, ["weight"])


if __name__ == "__main__":
    main()
