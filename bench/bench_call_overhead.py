"""Per-call cost of fastconv's Python layers on inputs so small that the kernels take ~1 us:
what a small network (LeNet-5 at batch 64 runs ~25 ops a step) pays per op besides the kernel.

For each op: process CPU time per call (median of 5 loops, --rounds rounds alternating) of
fastconv.functional / fastconv.nn on a 1x1x4x4 input with a 3x3 kernel (2x2 for pooling), and
for the convolutions the compiled kernel call alone (fastconv._C into a fresh output, no Python
layer), so that "overhead" = op time - kernel time. One thread, CPU time: the cost is Python
work on the calling thread, and on a shared machine wall time mostly measures scheduling.

    PYTHONPATH=. python bench/bench_call_overhead.py [--rounds 3]
"""
from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent.parent))
import fastconv  # noqa: E402
from fastconv import _C, nn  # noqa: E402
from fastconv import functional as F  # noqa: E402
from fastconv.timing import cpu_time_rounds, machine_line, markdown_table  # noqa: E402


def cases():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 1, 4, 4), dtype=np.float32)
    w = rng.standard_normal((1, 1, 3, 3), dtype=np.float32)
    b = rng.standard_normal((1,), dtype=np.float32)
    dy = rng.standard_normal((1, 1, 2, 2), dtype=np.float32)
    xl, wl = rng.standard_normal((4, 8), dtype=np.float32), rng.standard_normal((3, 8), dtype=np.float32)
    conv = nn.Conv2d(1, 1, 3)
    one, zero = (1, 1), (0, 0)

    def kernel_forward():
        _C.conv2d_direct(x, w, b, np.empty((1, 1, 2, 2), np.float32), one, zero, one, 1)

    def kernel_input_grad():
        _C.conv2d_direct_input_grad(dy, w, np.empty((1, 1, 4, 4), np.float32), one, zero, one, 1)

    def kernel_weight_grad():
        _C.conv2d_direct_weight_grad(x, dy, np.empty((1, 1, 3, 3), np.float32), one, zero, one, 1)

    def layer_step():
        conv.forward(x)
        conv.backward(dy)

    # name: (op, the kernel call it wraps or None)
    return {
        "functional.conv2d (bias, tuple args)": (lambda: F.conv2d(x, w, b, one, zero, one, 1), kernel_forward),
        "functional.conv2d_input": (lambda: F.conv2d_input(x.shape, w, dy), kernel_input_grad),
        "functional.conv2d_weight": (lambda: F.conv2d_weight(x, w.shape, dy), kernel_weight_grad),
        "functional.max_pool2d (indices)": (lambda: F.max_pool2d(x, 2, 2, return_indices=True), None),
        "functional.relu": (lambda: F.relu(x), None),
        "functional.linear": (lambda: F.linear(xl, wl), None),
        "nn.Conv2d forward": (lambda: conv.forward(x), kernel_forward),
        "nn.Conv2d forward + backward": (layer_step, None),
    }


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    fastconv.set_num_threads(1)
    table = cases()
    fns = {name: op for name, (op, _) in table.items()}
    fns.update({f"kernel:{name}": k for name, (_, k) in table.items() if k is not None})
    samples = cpu_time_rounds(fns, rounds=args.rounds, calls=3000)
    med = {name: statistics.median(v) for name, v in samples.items()}
    rows = []
    for name, (_, k) in table.items():
        kernel = med.get(f"kernel:{name}")
        rows.append([name, f"{med[name]:.1f}", "" if kernel is None else f"{kernel:.1f}",
                     "" if kernel is None else f"{med[name] - kernel:.1f}"])
    print(machine_line(1))
    print(markdown_table(["tiny op, per call, 1 thread", "CPU us", "kernel call alone us", "overhead us"], rows))


if __name__ == "__main__":
    main()
