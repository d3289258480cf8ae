"""Does on-the-fly augmentation help generalisation? LeNet-5 trained on 2,000 real MNIST
digits with and without fastconv.augment, evaluated on 2,000 held-out digits that were
rotated (+-25 deg) and shifted (+-3 px) - and on the same digits unmodified.

Both nets start from the same seed and see the same batches; the augmented one gets a fresh
random affine warp (rotation, shift, zoom) of every training batch at every iteration, so it
never sees the same digit twice.

    FASTCONV_MNIST_DIR=/path/to/mnist python bench/augment_generalisation.py [--backend fastconv|torch]

--backend fastconv (default) trains fastconv.models.lenet5 with fastconv.train.fit; torch
trains the same architecture in PyTorch (a cross-check, and usable before fastconv.train
exists). The augmentation is fastconv.augment in both cases.
"""
from __future__ import annotations

import argparse
import gzip
import pathlib
import time

import numpy as np

from fastconv.augment import Affine, Compose
from _mnist import mnist_dir

ROOT = pathlib.Path(__file__).resolve().parents[1]


def load_mnist(root=None):
    """The MNIST test split as float32 (N, 1, 32, 32) in [0, 1] (padded by 2) and int64 labels."""
    root = pathlib.Path(root or mnist_dir())
    with gzip.open(root / "t10k-images-idx3-ubyte.gz") as f:
        images = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28)
    with gzip.open(root / "t10k-labels-idx1-ubyte.gz") as f:
        labels = np.frombuffer(f.read(), np.uint8, offset=8).astype(np.int64)
    x = np.pad(images, ((0, 0), (2, 2), (2, 2))).astype(np.float32)[:, None] / 255
    return x, labels


def split(n_train=2000, n_test=2000, root=None):
    """First n_train digits to train; the last n_test digits, plain and rotated/shifted."""
    x, y = load_mnist(root)
    xtr, ytr, xte, yte = x[:n_train], y[:n_train], x[-n_test:], y[-n_test:]
    # A fixed, different seed: the test distortion is not the training augmentation's draws.
    distort = Compose([Affine(rotate=(-25, 25), translate=3 / 32)], seed=12345)
    return (xtr, ytr), (xte, yte), (distort(xte), yte)


def train_augment(seed=1):
    return Compose([Affine(rotate=20, translate=0.1, scale=(0.9, 1.1))], seed=seed)


def run_fastconv(train, tests, augment, epochs, lr, seed=0):
    from fastconv.models import lenet5
    from fastconv.nn import SGD
    from fastconv.train import evaluate, fit
    model = lenet5(activation="relu", pool="max", seed=seed)
    fit(model, train, epochs=epochs, batch_size=64, optimizer=SGD(model.parameters(), lr=lr, momentum=0.9),
        augment=augment, progress=False, seed=seed)
    return [evaluate(model, t)["accuracy"] for t in tests]


def run_torch(train, tests, augment, epochs, lr, seed=0):
    import torch
    from torch import nn
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Conv2d(1, 6, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5), nn.ReLU(),
                          nn.MaxPool2d(2), nn.Flatten(), nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84),
                          nn.ReLU(), nn.Linear(84, 10))
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    x, y = train
    rng = np.random.default_rng(seed)
    for _ in range(epochs):
        order = rng.permutation(len(x))
        for i in range(0, len(x), 64):
            idx = order[i:i + 64]
            xb = x[idx] if augment is None else augment(x[idx])
            loss = nn.functional.cross_entropy(model(torch.from_numpy(xb)), torch.from_numpy(y[idx]))
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        return [float((model(torch.from_numpy(tx)).argmax(1).numpy() == ty).mean()) for tx, ty in tests]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backend", choices=["fastconv", "torch"], default="fastconv")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    args = ap.parse_args()
    train, plain, distorted = split()
    run = run_fastconv if args.backend == "fastconv" else run_torch
    print(f"# LeNet-5 ({args.backend}), 2,000 MNIST training digits, {args.epochs} epochs; accuracy on 2,000 held-out digits")
    print(f"{'seed':>4s} {'augment':>8s} {'plain':>7s} {'rot/shift':>9s} {'seconds':>8s}")
    for seed in args.seeds:
        for name, aug in (("no", None), ("yes", train_augment(seed + 1))):
            t0 = time.perf_counter()
            acc_plain, acc_dist = run(train, [plain, distorted], aug, args.epochs, args.lr, seed)
            print(f"{seed:4d} {name:>8s} {acc_plain:7.4f} {acc_dist:9.4f} {time.perf_counter() - t0:8.1f}", flush=True)


if __name__ == "__main__":
    main()
