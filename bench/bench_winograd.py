"""Winograd vs direct vs PyTorch on the nine VGG-16 3x3 layers (224x224 input), CPU, fp32.

Times fastconv and torch.nn.functional.conv2d side by side in one process: warm-up, then the
median of repeats, both on the same number of threads (default 2). Prints per layer the time,
effective GFLOP/s (direct-equivalent FLOPs 2*N*K*C*9*OH*OW / time) and the ratio
torch / fastconv (> 1: fastconv faster), geometric means, the measured max relative error
per tile against float64, the algorithm "auto" chose, and the peak RSS of the process.

    python bench/bench_winograd.py [--batch 1 8] [--quick] [--threads 2] [--layers 0 3]
"""
from __future__ import annotations

import argparse
import math
import resource
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _timing import geomean, median_time  # noqa: E402

import fastconv
from fastconv import _cpu
from fastconv._geometry import conv_geometry
from fastconv import functional as F

VGG16 = [(3, 64, 224), (64, 64, 224), (64, 128, 112), (128, 128, 112), (128, 256, 56),
         (256, 256, 56), (256, 512, 28), (512, 512, 28), (512, 512, 14)]
FWD = ["direct", "winograd_f2", "winograd_f4", "winograd_f6", "auto"]


def rel_err(a, ref):
    return float(np.abs(a.astype(np.float64) - ref).max() / np.abs(ref).max())


def peak_rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def workspace_mib(n, c, k, h, tile, threads=2):
    """Scratch the Winograd driver holds (mirrors winograd.cpp): U plus the V/M tile blocks
    (one per thread when there are enough blocks for each thread to take whole blocks)."""
    a2 = (tile + 2) ** 2
    per_tile = a2 * (c + k) * 4
    nb = max((1 << 20) // per_tile, 128 if a2 * k * c * 4 > (1 << 20) else 32)
    nb = min(nb, max(32, (32 << 20) // threads // per_tile), 1024)
    tiles = n * (-(-h // tile)) ** 2
    nb = min(-(-nb // 16) * 16, tiles)
    blocks = -(-tiles // nb)
    holders = threads if blocks >= 2 * threads else 1
    return (a2 * k * c * 4 + holders * nb * per_tile) / 2**20


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, nargs="+", default=[1, 8])
    ap.add_argument("--quick", action="store_true", help="fewer repeats")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--layers", type=int, nargs=2, default=[0, len(VGG16)], help="layer index range [a, b)")
    ap.add_argument("--no-grad", action="store_true", help="skip the input-gradient comparison")
    args = ap.parse_args()

    import torch
    torch.set_num_threads(args.threads)
    fastconv.set_num_threads(args.threads)
    print(f"fastconv {fastconv.capabilities()['isa']}, torch {torch.__version__}, threads {args.threads}")
    rng = np.random.default_rng(0)
    summary = {}
    max_err = {a: 0.0 for a in FWD}
    for n in args.batch:
        ratios = {a: [] for a in FWD + ["grad"]}
        print(f"\n== batch {n} ==")
        print(f"{'layer':>16} {'algo':>12} {'ms':>9} {'GFLOP/s':>8} {'torch ms':>9} {'torch/fc':>8}  workspace")
        for (c, k, h) in VGG16[args.layers[0]:args.layers[1]]:
            x = rng.standard_normal((n, c, h, h), dtype=np.float32)
            w = (rng.standard_normal((k, c, 3, 3), dtype=np.float32) / math.sqrt(9 * c)).astype(np.float32)
            b = rng.standard_normal(k, dtype=np.float32)
            flops = 2.0 * n * k * c * 9 * h * h
            big = flops > 2e10
            reps = (3 if big else 5) if args.quick else (5 if big else 11)
            xt, wt, bt = torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b)
            t_torch = median_time(lambda: torch.nn.functional.conv2d(xt, wt, bt, padding=1), reps, warmup=1)
            ref = None
            if n == 1 and c * k <= 256 * 512:  # float64 reference on small problems only
                ref = torch.nn.functional.conv2d(xt.double(), wt.double(), bt.double(), padding=1).numpy()
            name = f"{c}->{k} @{h}"
            g = conv_geometry((n, c, h, h), (k, c, 3, 3), 1, 1, 1, 1)
            chosen = _cpu.choose_algorithm("auto", (n, c, h, h), (k, c, 3, 3), g)
            for algo in FWD:
                y = F.conv2d(x, w, b, padding=1, algorithm=algo)
                if ref is not None:
                    max_err[algo] = max(max_err[algo], rel_err(y, ref))
                t = median_time(lambda: F.conv2d(x, w, b, padding=1, algorithm=algo, out=y), reps, warmup=1)
                ratios[algo].append(t_torch / t)
                tile = _cpu.WINOGRAD_TILES.get(chosen if algo == "auto" else algo)
                ws = f"{workspace_mib(n, c, k, h, tile, args.threads):7.1f} MiB" if tile else ""
                label = f"auto={chosen}" if algo == "auto" else algo
                print(f"{name:>16} {label:>12} {t * 1e3:9.2f} {flops / t / 1e9:8.1f} {t_torch * 1e3:9.2f} "
                      f"{t_torch / t:8.2f}  {ws}", flush=True)
            if not args.no_grad:
                dy = rng.standard_normal((n, k, h, h), dtype=np.float32)
                dyt = torch.from_numpy(dy)
                t_tg = median_time(lambda: torch.nn.grad.conv2d_input(xt.shape, wt, dyt, padding=1), reps, warmup=1)
                dx = F.conv2d_input(x.shape, w, dy, padding=1)
                t_g = median_time(lambda: F.conv2d_input(x.shape, w, dy, padding=1, out=dx), reps, warmup=1)
                gchosen = _cpu.choose_algorithm("auto", (n, c, h, h), (k, c, 3, 3), g, input_grad=True)
                ratios["grad"].append(t_tg / t_g)
                print(f"{name:>16} {'dx ' + gchosen:>12} {t_g * 1e3:9.2f} {flops / t_g / 1e9:8.1f} "
                      f"{t_tg * 1e3:9.2f} {t_tg / t_g:8.2f}", flush=True)
        summary[n] = {a: geomean(r) for a, r in ratios.items() if r}
        for a, r in ratios.items():
            if r:
                print(f"  geomean torch/fastconv {a:>12}: {geomean(r):5.2f}  (min {min(r):.2f})")
    print("\nmax relative error vs float64 (batch-1 layers):",
          ", ".join(f"{a} {e:.1e}" for a, e in max_err.items() if e))
    print(f"peak RSS {peak_rss_mib():.0f} MiB")


if __name__ == "__main__":
    main()
