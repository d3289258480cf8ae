"""Network-level benchmarks, fastconv vs PyTorch side by side (same threads, same shapes):

  1. LeNet-5 (ReLU + max-pool) training epoch on 8,000 MNIST images, batch 64, SGD momentum
     (target: fastconv >= 2x faster than torch: small tensors, per-call overhead dominates)
  2. VGG-16 forward, batch 1, 224x224 (target >= 1.0x)
  3. VGG-16 training step (forward + backward + SGD), batch 8, 224x224 (target >= 1.0x)
  4. LeNet-5 accuracy: fit on the first 8,000 MNIST test images, evaluate on the last 2,000
     (target >= 98%), with epochs and seconds

Run on a quiet machine:  python bench/bench_nets.py [--threads 2] [--mnist DIR] [--skip-vgg]
Ratios are torch_time / fastconv_time (> 1 means fastconv is faster).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from collections import OrderedDict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _timing import best_time  # noqa: E402


def torch_lenet():
    import torch.nn as tnn
    return tnn.Sequential(OrderedDict(
        features=tnn.Sequential(tnn.Conv2d(1, 6, 5), tnn.ReLU(), tnn.MaxPool2d(2, 2), tnn.Conv2d(6, 16, 5),
                                tnn.ReLU(), tnn.MaxPool2d(2, 2)),
        flatten=tnn.Flatten(),
        classifier=tnn.Sequential(tnn.Linear(400, 120), tnn.ReLU(), tnn.Linear(120, 84), tnn.ReLU(),
                                  tnn.Linear(84, 10))))


def torch_vgg16():
    import torch.nn as tnn
    layers, c = [], 3
    for out, n in ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3)):
        for _ in range(n):
            layers += [tnn.Conv2d(c, out, 3, padding=1), tnn.ReLU(inplace=True)]
            c = out
        layers.append(tnn.MaxPool2d(2, 2))
    return tnn.Sequential(OrderedDict(
        features=tnn.Sequential(*layers), avgpool=tnn.AdaptiveAvgPool2d(7), flatten=tnn.Flatten(),
        classifier=tnn.Sequential(tnn.Linear(25088, 4096), tnn.ReLU(True), tnn.Dropout(),
                                  tnn.Linear(4096, 4096), tnn.ReLU(True), tnn.Dropout(), tnn.Linear(4096, 1000))))


def load_digits_images(args):
    from fastconv import data
    root = args.mnist or os.environ.get("FASTCONV_MNIST_DIR")
    if root:
        x, y = data.mnist(root, "test", pad=2)
        return x, y, "MNIST"
    rng = np.random.default_rng(0)  # timing only needs the shapes
    return rng.integers(0, 256, (10000, 1, 32, 32), dtype=np.uint8), rng.integers(0, 10, 10000), "random"


def bench_lenet_epoch(args, x, y):
    import torch
    from fastconv import data, models, nn
    n = args.train_images
    loader = data.DataLoader(x[:n], y[:n], batch_size=64, seed=0, mean=0.1307, std=0.3081)
    model = models.lenet5("relu", "max", seed=0)
    opt = nn.SGD(model.parameters(), lr=0.01, momentum=0.9)
    ce = nn.CrossEntropyLoss()

    def ours():
        for xb, yb in loader:
            ce(model.forward(xb), yb)
            model.zero_grad()
            model.backward(ce.backward(), need_input_grad=False)
            opt.step()

    tm = torch_lenet()
    topt = torch.optim.SGD(tm.parameters(), lr=0.01, momentum=0.9)
    tce = torch.nn.CrossEntropyLoss()

    def theirs():
        for xb, yb in loader:  # same batches (numpy), converted without copies
            topt.zero_grad()
            tce(tm(torch.from_numpy(xb)), torch.from_numpy(yb)).backward()
            topt.step()

    from fastconv.train import limit_blas_threads
    with limit_blas_threads(1):  # as fit() does: BLAS threads would fight the OpenMP team
        t_ours = best_time(ours, args.repeats)
    t_torch = best_time(theirs, args.repeats)
    report(f"LeNet-5 training epoch ({n} images, batch 64)", t_ours, t_torch, 2.0)


def bench_vgg(args):
    import torch
    from fastconv import models, nn
    model = models.vgg16(seed=0)
    tm = torch_vgg16()
    tm.load_state_dict({k: torch.from_numpy(v) for k, v in model.state_dict().items()})
    model.eval()
    tm.eval()
    x1 = np.random.default_rng(0).standard_normal((1, 3, 224, 224)).astype(np.float32)
    with torch.no_grad():
        t_torch = best_time(lambda: tm(torch.from_numpy(x1)), args.repeats)
    t_ours = best_time(lambda: model.forward(x1), args.repeats)
    report("VGG-16 forward, batch 1, 224x224", t_ours, t_torch, 1.0)

    model.train()
    tm.train()
    x8 = np.random.default_rng(1).standard_normal((8, 3, 224, 224)).astype(np.float32)
    y8 = np.arange(8)
    opt = nn.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    ce = nn.CrossEntropyLoss()

    def ours():
        ce(model.forward(x8), y8)
        model.zero_grad()
        model.backward(ce.backward(), need_input_grad=False)
        opt.step()

    topt = torch.optim.SGD(tm.parameters(), lr=1e-3, momentum=0.9)

    def theirs():
        topt.zero_grad()
        torch.nn.functional.cross_entropy(tm(torch.from_numpy(x8)), torch.from_numpy(y8)).backward()
        topt.step()

    t_ours, t_torch = best_time(ours, max(1, args.repeats - 1)), best_time(theirs, max(1, args.repeats - 1))
    report("VGG-16 training step, batch 8, 224x224", t_ours, t_torch, 1.0)


def bench_accuracy(args, x, y, source):
    from fastconv import data, models, nn
    from fastconv.train import evaluate, fit
    if source != "MNIST":
        print("LeNet-5 accuracy: skipped (no MNIST files; pass --mnist DIR)")
        return
    n = args.train_images
    train = data.DataLoader(x[:n], y[:n], batch_size=64, seed=0, mean=0.1307, std=0.3081)
    held = data.DataLoader(x[-2000:], y[-2000:], batch_size=500, shuffle=False, mean=0.1307, std=0.3081)
    model = models.lenet5("relu", "max", seed=0)
    opt = nn.Adam(model.parameters(), lr=2e-3)
    t0 = time.perf_counter()
    hist = fit(model, train, args.epochs, optimizer=opt, scheduler=nn.CosineAnnealingLR(opt, args.epochs),
               val_data=held, progress=False)
    acc = evaluate(model, held)["accuracy"]
    print(f"LeNet-5 accuracy: {acc:.4f} on the held-out 2,000 after {args.epochs} epochs on {n} images "
          f"({time.perf_counter() - t0:.1f} s; per-epoch held-out: "
          f"{', '.join(f'{a:.4f}' for a in hist['val_accuracy'])})  target >= 0.98")


def report(name, t_ours, t_torch, target):
    ratio = t_torch / t_ours
    verdict = "meets" if ratio >= target else "below"
    print(f"{name}: fastconv {t_ours * 1e3:.1f} ms, torch {t_torch * 1e3:.1f} ms, ratio {ratio:.2f}x "
          f"({verdict} target {target:.1f}x)", flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--mnist", default=None, help="MNIST IDX folder (default $FASTCONV_MNIST_DIR)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--epochs", type=int, default=8, help="epochs for the accuracy run")
    p.add_argument("--train-images", type=int, default=8000)
    p.add_argument("--skip-vgg", action="store_true")
    p.add_argument("--skip-accuracy", action="store_true")
    args = p.parse_args()
    import torch
    import fastconv
    fastconv.set_num_threads(args.threads)
    torch.set_num_threads(args.threads)
    print(f"threads {args.threads}; fastconv {fastconv.capabilities()}; torch {torch.__version__}")
    x, y, source = load_digits_images(args)
    bench_lenet_epoch(args, x, y)
    if not args.skip_vgg:
        bench_vgg(args)
    if not args.skip_accuracy:
        bench_accuracy(args, x, y, source)


if __name__ == "__main__":
    main()
