"""Does sharing a process with torch slow fastconv down, or fastconv slow torch down?

fastconv's timings (a LeNet-5 training epoch on MNIST through fastconv.train.fit, a LeNet-sized
conv and 2x2 max-pool, three VGG-16 layers at batch 1) in three orders:
  no_torch        torch never imported
  torch_first     torch imported and used (set_num_threads, one conv) before fastconv
  fastconv_first  fastconv imported first, then torch imported and used
and torch's own timings (LeNet-5 epoch, the same VGG-16 layers) with and without fastconv
imported and used first. Target: every order within 10% of the baseline (no_torch; torch
without fastconv).

Each measurement runs in its own process (what loads first can only be chosen once per
process); the orders alternate within a round, the order of the orders rotates between
rounds, and each ratio is the median over rounds with its min-max spread.

    python bench/bench_import_order.py [--rounds 3] [--threads 2] [--images 4000]
        [--no-threadpoolctl]   # as after a plain pip install: fit cannot limit BLAS threads
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from _mnist import mnist_dir



def median_time(fn, repeats, warmup=2):
    """Median wall time of fn() over `repeats` calls after `warmup` calls. Written out here
    rather than taken from fastconv.timing: importing that imports fastconv, and the torch-alone
    child must run with no fastconv in the process."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


FASTCONV_ORDERS = ("no_torch", "torch_first", "fastconv_first")
TORCH_ORDERS = ("torch_alone", "torch_after_fastconv")
# (name, input NCHW, weight OIHW, padding): VGG-16 at 224x224, batch 1.
VGG_LAYERS = (("vgg conv1_2", (1, 64, 224, 224), (64, 64, 3, 3), 1),
              ("vgg conv3_2", (1, 256, 56, 56), (256, 256, 3, 3), 1),
              ("vgg conv5_2", (1, 512, 14, 14), (512, 512, 3, 3), 1))


def use_torch(threads):
    import torch
    torch.set_num_threads(threads)
    torch.nn.functional.conv2d(torch.ones(1, 3, 16, 16), torch.ones(4, 3, 3, 3))
    return torch


def mnist_batches(args):
    from fastconv import data
    x, y = data.mnist(args.mnist, "test", dtype="float32", pad=2)
    return (x[:args.images] - 0.1307) / 0.3081, y[:args.images]


def time_fastconv(args):
    import numpy as np

    import fastconv.functional as F
    from fastconv import models, nn, train
    x, y = mnist_batches(args)
    model = models.lenet5("relu", "max", seed=0)
    opt = nn.SGD(model.parameters(), lr=0.01, momentum=0.9)
    epoch = lambda: train.fit(model, (x, y), 1, batch_size=64, optimizer=opt, progress=False)  # noqa: E731
    out = {"lenet epoch": median_time(epoch, repeats=3, warmup=1)}
    rng = np.random.default_rng(0)
    small = rng.standard_normal((64, 6, 14, 14)).astype(np.float32)
    small_w = rng.standard_normal((16, 6, 5, 5)).astype(np.float32)
    out["lenet conv (64x6x14x14, 16x6x5x5)"] = median_time(lambda: F.conv2d(small, small_w), repeats=200)
    pool_in = rng.standard_normal((64, 6, 28, 28)).astype(np.float32)
    out["max_pool2d 2x2 (64x6x28x28)"] = median_time(lambda: F.max_pool2d(pool_in, 2), repeats=200)
    for name, xs, ws, pad in VGG_LAYERS:
        xv, wv = rng.standard_normal(xs).astype(np.float32), rng.standard_normal(ws).astype(np.float32)
        out[name] = median_time(lambda: F.conv2d(xv, wv, padding=pad), repeats=5)
    return out


def time_torch(args, torch):
    import numpy as np
    torch.manual_seed(0)
    x, y = (torch.from_numpy(a) for a in mnist_batches(args))
    tnn = torch.nn
    model = tnn.Sequential(tnn.Conv2d(1, 6, 5), tnn.ReLU(), tnn.MaxPool2d(2), tnn.Conv2d(6, 16, 5), tnn.ReLU(),
                           tnn.MaxPool2d(2), tnn.Flatten(), tnn.Linear(400, 120), tnn.ReLU(), tnn.Linear(120, 84),
                           tnn.ReLU(), tnn.Linear(84, 10))
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    ce = tnn.CrossEntropyLoss()

    def epoch():
        for i in range(0, len(x), 64):
            opt.zero_grad()
            ce(model(x[i:i + 64]), y[i:i + 64]).backward()
            opt.step()

    out = {"torch lenet epoch": median_time(epoch, repeats=3, warmup=1)}
    rng = np.random.default_rng(0)
    with torch.no_grad():
        for name, xs, ws, pad in VGG_LAYERS:
            xv = torch.from_numpy(rng.standard_normal(xs).astype(np.float32))
            wv = torch.from_numpy(rng.standard_normal(ws).astype(np.float32))
            out["torch " + name] = median_time(lambda: torch.nn.functional.conv2d(xv, wv, padding=pad), repeats=5)
    return out


def use_fastconv(threads):
    import numpy as np

    import fastconv
    import fastconv.functional as F
    fastconv.set_num_threads(threads)
    F.conv2d(np.ones((1, 3, 16, 16), np.float32), np.ones((4, 3, 3, 3), np.float32))


def child(args):
    if args.no_threadpoolctl:
        sys.modules["threadpoolctl"] = None  # import fails, as when it is not installed
    order = args.child
    torch = use_torch(args.threads) if order in ("torch_first", "torch_alone") else None
    if order != "torch_alone":
        use_fastconv(args.threads)
    if order in ("fastconv_first", "torch_after_fastconv"):
        torch = use_torch(args.threads)
    result = time_torch(args, torch) if order in TORCH_ORDERS else time_fastconv(args)
    print(json.dumps(result))


def run_child(args, order):
    cmd = [sys.executable, __file__, "--child", order, "--threads", str(args.threads), "--images", str(args.images),
           "--mnist", args.mnist] + (["--no-threadpoolctl"] if args.no_threadpoolctl else [])
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def cpu_name():
    with open("/proc/cpuinfo") as f:
        return next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "unknown CPU")


def report(title, orders, rounds):
    """rounds: [{order: {name: seconds}}]; ratio = time / baseline time (first order)."""
    print(f"\n{title}: median time, and time / {orders[0]} (median over rounds, min-max)")
    print("| measurement | " + " | ".join(orders) + " |")
    print("|---" * (len(orders) + 1) + "|")
    worst = 0.0
    for name in rounds[0][orders[0]]:
        cells = []
        for order in orders:
            times = [r[order][name] for r in rounds]
            ratios = [r[order][name] / r[orders[0]][name] for r in rounds]
            t = statistics.median(times)
            cell = f"{t * 1e3:.3g} ms" if t < 1 else f"{t:.3g} s"
            if order != orders[0]:
                cell += f", {statistics.median(ratios):.2f}x ({min(ratios):.2f}-{max(ratios):.2f})"
                worst = max(worst, abs(statistics.median(ratios) - 1))
            cells.append(cell)
        print(f"| {name} | " + " | ".join(cells) + " |")
    print(f"largest median deviation from {orders[0]}: {worst * 100:.1f}% (target: within 10%)")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--images", type=int, default=4000, help="MNIST test images per LeNet-5 epoch")
    parser.add_argument("--mnist", default=mnist_dir())
    parser.add_argument("--no-threadpoolctl", action="store_true")
    parser.add_argument("--only", choices=("fastconv", "torch"), help="run one of the two comparisons")
    parser.add_argument("--child", choices=FASTCONV_ORDERS + TORCH_ORDERS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args)
    print(f"{cpu_name()}, {os.cpu_count()} CPUs, {args.threads} threads, {args.rounds} rounds, "
          f"threadpoolctl {'blocked' if args.no_threadpoolctl else 'as installed'}")
    for which, orders in (("fastconv", FASTCONV_ORDERS), ("torch", TORCH_ORDERS)):
        if args.only not in (None, which):
            continue
        rounds = []
        for r in range(args.rounds):
            rotated = orders[r % len(orders):] + orders[:r % len(orders)]
            rounds.append({order: run_child(args, order) for order in rotated})
        report(f"{which}'s speed by import order", orders, rounds)


if __name__ == "__main__":
    main()
