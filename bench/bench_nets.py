"""Whole networks, fastconv vs PyTorch, each library alone in its own process (the way a user
compares them), the processes alternating, >= 3 rounds, both on the same threads:

  lenet        LeNet-5 (ReLU, max-pool) training epoch: 8,000 MNIST images, batch 64, SGD momentum
  vgg_forward  VGG-16 forward, batch 1, 224x224, eval mode
  vgg_train    VGG-16 training step (forward, backward, SGD), batch 8, 224x224
  alexnet_forward, alexnet_train   the same two for AlexNet (fastconv.models.alexnet(),
               torchvision's layout), batch 1 and batch 8

and, with --accuracy, LeNet-5 trained with fit() on the first 8,000 MNIST test images and
evaluated on the last 2,000.

    python3 bench/bench_nets.py [--nets lenet vgg_forward vgg_train alexnet_forward alexnet_train]
                                [--mnist DIR] [--accuracy] [--clock cpu]

--clock cpu times each call in process CPU time instead of wall time: on a machine shared with
other jobs, wall time mostly measures scheduling (a 2-thread torch epoch was seen taking 20-40x
its quiet time), while CPU time still measures the work; use it with --threads 1, where it
equals the single-thread run time, and say so when quoting it.

The parent prepares the data (the same normalised, shuffled batches for both libraries, in a
temporary .npz file, so the torch process runs no fastconv code: it imports fastconv.timing for
the clock only, after torch has loaded), then runs
`bench_nets.py --worker LIB --net NET`, which builds the net, warms it up, and prints the median
time of a few calls (fastconv.timing.time_in_processes). Ratio = torch time / fastconv time.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections import OrderedDict

import numpy as np
from _mnist import mnist_dir

LENET_IMAGES, LENET_BATCH = 8000, 64
# (warm-up calls, timed calls) per process: a VGG-16 training step takes seconds
CALLS = {"lenet": (2, 3), "vgg_forward": (3, 5), "vgg_train": (2, 3), "alexnet_forward": (5, 15),
         "alexnet_train": (3, 5)}
TITLES = {"lenet": f"LeNet-5 training epoch ({LENET_IMAGES} MNIST images, batch {LENET_BATCH}, SGD)",
          "vgg_forward": "VGG-16 forward, batch 1, 224x224, eval", "vgg_train": "VGG-16 training step, batch 8, 224x224",
          "alexnet_forward": "AlexNet forward, batch 1, 224x224, eval",
          "alexnet_train": "AlexNet training step, batch 8, 224x224"}


# ---- torch side (imports torch and numpy only)

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


def torch_alexnet():
    import torch.nn as tnn
    return tnn.Sequential(OrderedDict(
        features=tnn.Sequential(
            tnn.Conv2d(3, 64, 11, stride=4, padding=2), tnn.ReLU(), tnn.MaxPool2d(3, 2),
            tnn.Conv2d(64, 192, 5, padding=2), tnn.ReLU(), tnn.MaxPool2d(3, 2),
            tnn.Conv2d(192, 384, 3, padding=1), tnn.ReLU(), tnn.Conv2d(384, 256, 3, padding=1), tnn.ReLU(),
            tnn.Conv2d(256, 256, 3, padding=1), tnn.ReLU(), tnn.MaxPool2d(3, 2)),
        avgpool=tnn.AdaptiveAvgPool2d(6), flatten=tnn.Flatten(),
        classifier=tnn.Sequential(tnn.Dropout(), tnn.Linear(9216, 4096), tnn.ReLU(), tnn.Dropout(),
                                  tnn.Linear(4096, 4096), tnn.ReLU(), tnn.Linear(4096, 1000))))


def torch_model(net):
    return {"lenet": torch_lenet, "vgg": torch_vgg16, "alexnet": torch_alexnet}[net.split("_")[0]]()


def fastconv_model(net):
    from fastconv import models
    builders = {"lenet": lambda: models.lenet5("relu", "max", seed=0), "vgg": lambda: models.vgg16(seed=0),
                "alexnet": lambda: models.alexnet(seed=0)}
    return builders[net.split("_")[0]]()


def torch_step(net, batches):
    import torch
    torch.manual_seed(0)
    f = torch.nn.functional
    if net.endswith("_forward"):
        model, x = torch_model(net).eval(), torch.from_numpy(batches[0][0])

        def forward():
            with torch.no_grad():
                return model(x)
        return forward
    model = torch_model(net)
    opt = torch.optim.SGD(model.parameters(), lr=0.01 if net == "lenet" else 1e-3, momentum=0.9)
    batches = [(torch.from_numpy(x), torch.from_numpy(y)) for x, y in batches]

    def epoch():
        for x, y in batches:
            opt.zero_grad()
            f.cross_entropy(model(x), y).backward()
            opt.step()
    return epoch


# ---- fastconv side

def fastconv_step(net, batches):
    from fastconv import nn
    from fastconv.train import limit_blas_threads
    if net.endswith("_forward"):
        model, x = fastconv_model(net).eval(), batches[0][0]

        def forward():  # as torch's side: inference keeps no activations for a backward
            with nn.no_grad():
                return model.forward(x)
        return forward
    model = fastconv_model(net)
    opt = nn.SGD(model.parameters(), lr=0.01 if net == "lenet" else 1e-3, momentum=0.9)
    ce = nn.CrossEntropyLoss()

    def epoch():
        with limit_blas_threads(1):  # what fit() does
            for x, y in batches:
                ce(model.forward(x), y)
                model.zero_grad()
                model.backward(ce.backward(), need_input_grad=False)
                opt.step()
    return epoch


def _median_cpu_time(fn, calls):
    """Median process CPU time of `calls` calls of fn(), in seconds (see --clock)."""
    times = []
    for _ in range(calls):
        t0 = time.process_time()
        fn()
        times.append(time.process_time() - t0)
    return sorted(times)[len(times) // 2]


def worker(lib, net, threads, data_file, clock="wall"):
    if lib == "torch":
        import torch  # before anything of fastconv's
        torch.set_num_threads(threads)
    else:
        import fastconv
        fastconv.set_num_threads(threads)
    from fastconv.timing import median_call_time, report_seconds
    arrays = np.load(data_file)
    xs, ys = arrays["x"], arrays["y"]
    batches = [(xs[i], ys[i]) for i in range(len(xs))]
    step = (torch_step if lib == "torch" else fastconv_step)(net, batches)
    warm, timed = CALLS[net]
    for _ in range(warm):
        step()
    report_seconds((median_call_time if clock == "wall" else _median_cpu_time)(step, timed))


# ---- parent

def prepare_data(net, mnist, path):
    """The batches one call runs, identical for both libraries, saved to path (.npz)."""
    rng = np.random.default_rng(0)
    if net == "lenet":
        from fastconv import data
        x, y = data.mnist(mnist, "test", pad=2)
        loader = data.DataLoader(x[:LENET_IMAGES], y[:LENET_IMAGES], LENET_BATCH, drop_last=True, seed=0,
                                 mean=0.1307, std=0.3081)
        xs, ys = zip(*loader)
    elif net.endswith("_forward"):
        xs, ys = [rng.standard_normal((1, 3, 224, 224), dtype=np.float32)], [np.zeros(1, np.int64)]
    else:
        xs, ys = [rng.standard_normal((8, 3, 224, 224), dtype=np.float32)], [np.arange(8, dtype=np.int64)]
    np.savez(path, x=np.stack(xs), y=np.stack(ys))


def time_nets(args):
    from fastconv.timing import markdown_table, time_in_processes
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for net in args.nets:
            path = os.path.join(tmp, f"{net}.npz")
            prepare_data(net, args.mnist, path)
            cmd = [sys.executable, __file__, "--worker", "--net", net, "--threads", str(args.threads), "--data", path,
                   "--clock", args.clock]
            cmp = time_in_processes({lib: cmd[:3] + [lib] + cmd[3:] for lib in ("torch", "fastconv")},
                                    rounds=args.rounds)
            r = cmp.ratio("torch", "fastconv")
            rows.append([TITLES[net], f"{cmp.median_time('torch') * 1e3:.1f}", f"{cmp.median_time('fastconv') * 1e3:.1f}",
                         f"**{r}**"])
            print(f"# {rows[-1]}", file=sys.stderr, flush=True)
    unit = "ms" if args.clock == "wall" else "ms CPU time"
    print(markdown_table(["network", f"torch {unit}", f"fastconv {unit}", "ratio"], rows) + "\n")


def accuracy(args):
    from fastconv import data, models, nn
    from fastconv.train import evaluate, fit
    x, y = data.mnist(args.mnist, "test", pad=2)
    train = data.DataLoader(x[:LENET_IMAGES], y[:LENET_IMAGES], LENET_BATCH, seed=0, mean=0.1307, std=0.3081)
    held = data.DataLoader(x[-2000:], y[-2000:], batch_size=500, shuffle=False, mean=0.1307, std=0.3081)
    model = models.lenet5("relu", "max", seed=0)
    opt = nn.Adam(model.parameters(), lr=2e-3)
    t0 = time.perf_counter()
    fit(model, train, args.epochs, optimizer=opt, scheduler=nn.CosineAnnealingLR(opt, args.epochs), progress=False)
    seconds = time.perf_counter() - t0
    acc = evaluate(model, held)["accuracy"]
    print(f"LeNet-5 (Adam, cosine schedule), {args.epochs} epochs on the first {LENET_IMAGES} MNIST test images: "
          f"{acc:.2%} on the last 2,000, training took {seconds:.1f} s.\n")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--nets", nargs="+", default=list(CALLS), choices=list(CALLS))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--mnist", default=mnist_dir(), help="MNIST IDX folder (default: the shipped test split)")
    p.add_argument("--accuracy", action="store_true", help="also train LeNet-5 to report its accuracy")
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                   help="time calls in wall time (default) or process CPU time (shared machines; with --threads 1)")
    p.add_argument("--worker", choices=["torch", "fastconv"], help=argparse.SUPPRESS)
    p.add_argument("--net", choices=list(CALLS), help=argparse.SUPPRESS)
    p.add_argument("--data", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        return worker(args.worker, args.net, args.threads, args.data, args.clock)
    from fastconv.timing import ensure_fast_allocator, machine_line
    ensure_fast_allocator()  # inherited by the workers
    if ("lenet" in args.nets or args.accuracy) and not args.mnist:
        p.error("LeNet-5 needs MNIST: pass --mnist DIR or set FASTCONV_MNIST_DIR")
    print(f"Machine: {machine_line(args.threads)}\n")
    time_nets(args)
    if args.accuracy:
        accuracy(args)


if __name__ == "__main__":
    main()
