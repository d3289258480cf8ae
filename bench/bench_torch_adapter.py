"""fastconv.torch against plain PyTorch, as a user would compare them:

  1. VGG-16 (224x224), unpatched torch vs fastconv.torch.patch(model): forward at batch 1
     (eval, inference_mode) and a training step at batch 8 (forward, cross-entropy, backward,
     SGD). Each variant runs in its own process, in alternating order, --rounds times; the ratio
     of each round is torch time / patched time (> 1: patched faster). Targets: forward >= 1.2x,
     training step >= 1.1x.
  2. The adapter's own cost per call on a tiny conv (1x1x4x4 input, 3x3 kernel), where the kernel
     itself takes ~1 us and everything else is per-call overhead. Overhead is defined as
       adapter overhead = time of fastconv.torch.conv2d on the tensors
                          - time of fastconv.functional.conv2d on the same memory as numpy arrays,
     once with no graph (no_grad / no argument requiring a gradient) and once recording autograd
     (the input requires a gradient; forward only). Target <= 15 us for both. For scale it also
     shows the raw compiled kernel call (fastconv._C.conv2d_direct into a fresh output, no Python
     layer at all: "whole stack" = adapter time minus that), and torch's own floor for a custom
     autograd op: an empty torch.autograd.Function.apply, which the autograd figure cannot go
     below. All cases run in one process, alternated, median of --rounds rounds, on one thread,
     timed in process CPU time: the adapter's cost is Python work on the calling thread, and on
     a shared machine wall time would mostly measure how soon the OS schedules us.

Run on a quiet machine:  python bench/bench_torch_adapter.py [--threads 2] [--rounds 3] [--skip-vgg]
(with PYTHONPATH=. after tools/dev_build.sh). Both libraries get the same thread count.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
# The harness imports fastconv into the unpatched worker too; it stays idle there, and
# bench/bench_import_order.py shows torch's speed does not change with fastconv imported.
from fastconv.timing import cpu_time_rounds, markdown_table, median_call_time, settle  # noqa: E402


# ---------------------------------------------------------------- 1. VGG-16, one process per variant

def vgg_worker(variant, threads, repeats):
    """Times of one variant in this process: {"forward": s, "train": s} (median of repeats after
    the timings settle)."""
    import torch
    from bench_nets import torch_vgg16

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = torch_vgg16()
    if variant == "patched":
        import fastconv.torch
        fastconv.set_num_threads(threads)
        fastconv.torch.patch(model)
    g = torch.Generator().manual_seed(1)
    x1 = torch.randn(1, 3, 224, 224, generator=g)
    x8 = torch.randn(8, 3, 224, 224, generator=g)
    y8 = torch.randint(0, 1000, (8,), generator=g)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)

    def forward():
        with torch.inference_mode():
            model(x1)

    def train_step():
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(x8), y8).backward()
        optimizer.step()

    model.eval()
    settle(forward)
    t_forward = median_call_time(forward, repeats)
    model.train()
    settle(train_step, max_seconds=30)
    t_train = median_call_time(train_step, max(1, repeats - 2))
    return {"forward": t_forward, "train": t_train}


def run_worker(variant, args):
    cmd = [sys.executable, __file__, "--worker", variant, "--threads", str(args.threads), "--repeats", str(args.repeats)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def bench_vgg(args):
    ratios = {"forward": [], "train": []}
    for r in range(args.rounds):
        order = ("torch", "patched") if r % 2 == 0 else ("patched", "torch")
        times = {variant: run_worker(variant, args) for variant in order}
        for task in ratios:
            ratios[task].append(times["torch"][task] / times["patched"][task])
        print(f"round {r + 1}: " + ", ".join(f"{v} {t['forward'] * 1e3:.0f} ms fwd / {t['train']:.2f} s step"
                                             for v, t in times.items()), flush=True)
    rows = []
    for task, label, target in (("forward", "VGG-16 forward, batch 1", 1.2),
                                ("train", "VGG-16 training step, batch 8", 1.1)):
        rs = ratios[task]
        rows.append([label, f"{statistics.median(rs):.2f}", f"{min(rs):.2f}-{max(rs):.2f}", f">= {target}"])
    print(markdown_table(["torch / patched", "median ratio", "min-max", "target"], rows))


# ---------------------------------------------------------------- 2. adapter overhead per call

def bench_overhead(args):
    import torch

    import fastconv
    import fastconv.functional as F
    import fastconv.torch as ft

    torch.set_num_threads(1)
    fastconv.set_num_threads(1)
    g = torch.Generator().manual_seed(2)
    x, w = torch.randn(1, 1, 4, 4, generator=g), torch.randn(1, 1, 3, 3, generator=g)
    xg = x.clone().requires_grad_()
    xa, wa = x.numpy(), w.numpy()
    calls = 2000

    class Empty(torch.autograd.Function):
        """torch's floor for a custom autograd op: apply() with a forward that only allocates the result."""

        @staticmethod
        def forward(ctx, input, weight):
            return input.new_empty((1, 1, 2, 2))

        @staticmethod
        def backward(ctx, grad_output):
            return None, None

    def raw_kernel():
        fastconv._C.conv2d_direct(xa, wa, None, np.empty((1, 1, 2, 2), np.float32), (1, 1), (0, 0), (1, 1), 1)

    cases = {"raw": lambda: F.conv2d(xa, wa), "inference": lambda: ft.conv2d(x, w),
             "autograd": lambda: ft.conv2d(xg, w), "torch": lambda: torch.nn.functional.conv2d(x, w),
             "kernel": raw_kernel, "empty_apply": lambda: Empty.apply(xg, w)}
    samples = cpu_time_rounds(cases, rounds=args.rounds, calls=calls)
    raw = samples["raw"]
    med = {k: statistics.median(v) for k, v in samples.items()}
    rows = [["fastconv._C.conv2d_direct (the kernel call alone)", f"{med['kernel']:.1f}", "", "", ""],
            ["fastconv.functional.conv2d (numpy)", f"{med['raw']:.1f}", "", "", f"{med['raw'] - med['kernel']:.1f}"]]
    for name, label in (("inference", "fastconv.torch.conv2d, no graph (no_grad / inference)"),
                        ("autograd", "fastconv.torch.conv2d, recording autograd")):
        over = [a - b for a, b in zip(samples[name], raw)]
        rows.append([label, f"{med[name]:.1f}", f"**{statistics.median(over):.1f}**", f"{min(over):.1f}-{max(over):.1f}",
                     f"{med[name] - med['kernel']:.1f}"])
    rows.append(["empty torch.autograd.Function.apply (torch's floor)", f"{med['empty_apply']:.1f}", "", "", ""])
    rows.append(["torch.nn.functional.conv2d (for scale)", f"{med['torch']:.1f}", "", "", ""])
    print(markdown_table(["tiny conv, per call, 1 thread", "CPU us", "adapter overhead us (median; target <= 15)",
                          "min-max", "whole stack over the kernel us"], rows))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--repeats", type=int, default=3, help="timed runs per VGG-16 forward (training: 2 fewer, >= 1)")
    p.add_argument("--skip-vgg", action="store_true")
    p.add_argument("--worker", choices=("torch", "patched"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        print(json.dumps(vgg_worker(args.worker, args.threads, args.repeats)))
        return
    from fastconv.timing import machine_line
    print(machine_line(args.threads) + f", {time.strftime('%H:%M UTC', time.gmtime())}")
    bench_overhead(args)
    if not args.skip_vgg:
        bench_vgg(args)


if __name__ == "__main__":
    main()
