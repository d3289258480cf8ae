"""fastconv.interpret against the same loops written with torch autograd, each library in its
own process (whole networks), alternating, >= 3 rounds; the ratio is torch / fastconv (> 1:
fastconv faster), reported as the median with its min-max spread.

  1. class_model on LeNet-5, the 10 digits as one batch of 10, 200 steps (target >= 2x).
     Same work on both sides: per step a forward, the input gradient of the 10 target logits,
     the softmax probability and image norm of the trace, and the same Adam ascent step on
     score - l2 ||I||^2; torch's parameters have requires_grad=False (no weight gradients).
  2. class_model on VGG-16 at 224x224, one image, a few steps: time per step (target >= 1x).
  3. top_patches over the 10,000 MNIST test images for every channel of LeNet-5's second conv
     (features.3, 16 channels, k=9): fastconv alone (target < 2 s).

Run on a quiet machine:  python bench/bench_interpret.py [--threads 2] [--mnist DIR] [--rounds 3]
                         [--vgg-steps 3] [--skip-vgg]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from _mnist import mnist_dir


sys.path.insert(0, str(Path(__file__).parent))

LR, L2 = 0.05, 1e-3


# ------------------------------------------------------------------ workers (one per process)

def _fastconv_net(task, weights):
    from fastconv import load_into, models
    if task == "lenet":
        net = models.lenet5("relu", "max", seed=0)
        if weights:
            load_into(net, weights)
        return net, list(range(10))
    return models.vgg16(seed=0), [0]


def worker_fastconv(task, steps, weights):
    from fastconv.interpret import class_model
    net, targets = _fastconv_net(task, weights)
    class_model(net, targets, steps=2, lr=LR, l2=L2)  # warm-up
    t0 = time.perf_counter()
    class_model(net, targets, steps=steps, lr=LR, l2=L2)
    return time.perf_counter() - t0


def _torch_net(task, weights):
    import torch
    sys.path.insert(0, str(Path(__file__).parent))
    from bench_nets import torch_lenet, torch_vgg16
    if task == "lenet":
        net = torch_lenet()
        if weights:
            from safetensors.numpy import load_file
            net.load_state_dict({k: torch.from_numpy(v) for k, v in load_file(weights).items()})
        return net, list(range(10)), 32
    return torch_vgg16(), [0], 224


def worker_torch(task, steps, weights):
    import torch
    net, targets, size = _torch_net(task, weights)
    net.eval()
    for p in net.parameters():
        p.requires_grad_(False)
    rows = torch.arange(len(targets))
    target = torch.as_tensor(targets)

    def run(n):
        gen = torch.Generator().manual_seed(0)
        x = (0.1 * torch.randn(len(targets), 3 if task == "vgg" else 1, size, size, generator=gen)).requires_grad_()
        opt = torch.optim.Adam([x], lr=LR, maximize=True)
        trace = []
        for _ in range(n):
            opt.zero_grad()
            logits = net(x)
            score = logits[rows, target]
            (score.sum() - L2 * (x * x).sum()).backward()
            with torch.no_grad():
                prob = torch.softmax(logits.double(), 1)[rows, target]
                trace.append((score.detach().numpy(), prob.numpy(), x.flatten(1).norm(dim=1).numpy()))
            opt.step()
        return trace

    run(2)  # warm-up
    t0 = time.perf_counter()
    run(steps)
    return time.perf_counter() - t0


def worker_top_patches(weights, mnist):
    from fastconv import data
    from fastconv.interpret import top_patches
    net, _ = _fastconv_net("lenet", weights)
    x, _ = data.mnist(mnist, "test", pad=2, dtype="float32")
    top_patches(net, "features.3", x[:512])  # warm-up
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        top_patches(net, "features.3", x, k=9)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


# ------------------------------------------------------------------ driver

def _spawn(args, *worker_args):
    cmd = [sys.executable, __file__, "--threads", str(args.threads), "--worker", *worker_args]
    out = subprocess.run(cmd, capture_output=True, text=True, env=os.environ.copy())
    if out.returncode:
        raise RuntimeError(f"worker {worker_args} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])["seconds"]


def _side_by_side(args, task, steps, weights):
    ours, theirs = [], []
    for r in range(args.rounds):
        order = ("fastconv", "torch") if r % 2 == 0 else ("torch", "fastconv")  # alternate who goes first
        for lib in order:
            t = _spawn(args, lib, task, str(steps), weights or "")
            (ours if lib == "fastconv" else theirs).append(t)
    ratios = [t / o for o, t in zip(ours, theirs)]
    return ours, theirs, ratios


def _train_lenet(mnist, path):
    from fastconv import data, models, nn, save
    from fastconv.train import fit
    x, y = data.mnist(mnist, "test", pad=2, dtype="float32")
    net = models.lenet5("relu", "max", seed=0)
    fit(net, (x[:8000], y[:8000]), epochs=3, batch_size=64, optimizer=nn.Adam(net.parameters(), lr=3e-3),
        progress=False)
    save(net, path)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--mnist", default=mnist_dir())
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--vgg-steps", type=int, default=3)
    ap.add_argument("--skip-vgg", action="store_true")
    ap.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        lib, *rest = args.worker
        if lib == "torch":
            import torch  # first, as in the other benches
            torch.set_num_threads(args.threads)
        else:
            __import__("fastconv").set_num_threads(args.threads)
        if lib == "fastconv":
            seconds = worker_fastconv(rest[0], int(rest[1]), rest[2] or None)
        elif lib == "torch":
            seconds = worker_torch(rest[0], int(rest[1]), rest[2] or None)
        else:
            seconds = worker_top_patches(rest[0], rest[1])
        print(json.dumps({"seconds": seconds}))
        return

    import torch  # noqa: F401  (machine_line reports its version)
    from fastconv.timing import machine_line
    print(machine_line(args.threads))
    with tempfile.TemporaryDirectory() as tmp:
        weights = None
        if args.mnist:
            weights = str(Path(tmp) / "lenet5.safetensors")
            _train_lenet(args.mnist, weights)
        rows = []
        ours, theirs, ratios = _side_by_side(args, "lenet", 200, weights)
        rows.append(("class_model LeNet-5, 10 classes x 200 steps", ours, theirs, ratios, 2.0))
        if not args.skip_vgg:
            steps = args.vgg_steps
            ours, theirs, ratios = _side_by_side(args, "vgg", steps, None)
            rows.append((f"class_model VGG-16 224x224, per step ({steps} steps)", [o / steps for o in ours],
                         [t / steps for t in theirs], ratios, 1.0))
        print("| benchmark | fastconv (median) | torch (median) | ratio median | ratio min-max | target |")
        print("|---|---|---|---|---|---|")
        for name, ours, theirs, ratios, target in rows:
            print(f"| {name} | {statistics.median(ours):.3f} s | {statistics.median(theirs):.3f} s | "
                  f"{statistics.median(ratios):.2f}x | {min(ratios):.2f}-{max(ratios):.2f}x | >= {target:g}x |")
        if args.mnist:
            t = _spawn(args, "top_patches", weights, args.mnist)
            print(f"\ntop_patches, LeNet-5 features.3 (16 channels, k=9), 10,000 MNIST test images: {t:.2f} s "
                  f"(median of 3; target < 2 s)")
        else:
            print("\ntop_patches skipped: no MNIST (--mnist DIR or FASTCONV_MNIST_DIR)")


if __name__ == "__main__":
    main()
