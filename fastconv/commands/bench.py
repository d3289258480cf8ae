"""`fastconv bench`: a short side-by-side timing of fastconv against PyTorch on a few LeNet-5
layers and one VGG-16 layer, through fastconv.timing.compare (the harness bench/ uses).

The timing runs in a child process that imports torch first, then fastconv (the project's rule
for sharing a process between the two), with both libraries set to the same thread count; the
parent process never imports torch. run_benchmark() is also the demo report's benchmark."""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

from fastconv.commands.common import UserError, add_command

EXAMPLE = """\
  fastconv bench                 # all cores, about 20 s
  fastconv bench --threads 1 --quick"""

# (label, what runs, input shape, weight shape or pool size, padding)
LAYERS = [
    ("LeNet-5 C1 conv 5x5, forward", "conv", (64, 1, 32, 32), (6, 1, 5, 5), 0),
    ("LeNet-5 C3 conv 5x5, forward", "conv", (64, 6, 14, 14), (16, 6, 5, 5), 0),
    ("LeNet-5 C3 conv 5x5, input + weight gradients", "conv_backward", (64, 6, 14, 14), (16, 6, 5, 5), 0),
    ("LeNet-5 S2 max-pool 2x2, forward + backward", "pool", (64, 6, 28, 28), 2, 0),
    ("VGG-16 conv3_1 3x3 (128->256, 56x56, batch 1), forward", "conv", (1, 128, 56, 56), (256, 128, 3, 3), 1),
]


def torch_available():
    try:
        return importlib.util.find_spec("torch") is not None
    except ValueError:  # sys.modules["torch"] is None: imports of torch are blocked
        return False


def _candidates(kind, x_shape, w_shape, padding, rng):
    """{'fastconv': fn, 'torch': fn} doing the same work (allocating outputs on both sides)."""
    import numpy as np
    import torch

    import fastconv.functional as F
    x = rng.standard_normal(x_shape).astype(np.float32)
    tx = torch.from_numpy(x)
    if kind == "pool":
        y, idx = F.max_pool2d(x, w_shape, return_indices=True)
        dy = np.ones_like(y)
        tdy = torch.from_numpy(dy)

        def torch_pool():
            ty, tidx = torch.nn.functional.max_pool2d(tx, w_shape, return_indices=True)
            torch.ops.aten.max_pool2d_with_indices_backward(tdy, tx, [w_shape] * 2, [w_shape] * 2, [0, 0], [1, 1],
                                                            False, tidx)

        def fastconv_pool():
            _, i = F.max_pool2d(x, w_shape, return_indices=True)
            F.max_pool2d_backward(dy, i, x.shape)
        return {"fastconv": fastconv_pool, "torch": torch_pool}
    w = (rng.standard_normal(w_shape) * 0.1).astype(np.float32)
    tw = torch.from_numpy(w)
    if kind == "conv":
        return {"fastconv": lambda: F.conv2d(x, w, padding=padding),
                "torch": lambda: torch.nn.functional.conv2d(tx, tw, padding=padding)}
    dy = rng.standard_normal(F.conv2d(x, w, padding=padding).shape).astype(np.float32)
    tdy = torch.from_numpy(dy)

    def fastconv_backward():
        F.conv2d_input(x.shape, w, dy, padding=padding)
        F.conv2d_weight(x, w.shape, dy, padding=padding)
    return {"fastconv": fastconv_backward,
            "torch": lambda: torch.ops.aten.convolution_backward(
                tdy, tx, tw, None, [1, 1], [padding] * 2, [1, 1], False, [0, 0], 1, [True, True, False])}


def measure(threads, quick):
    """The rows of the table; run in the child process (torch already imported)."""
    import numpy as np
    import torch

    import fastconv
    from fastconv.timing import compare, machine_line
    torch.set_num_threads(threads)
    fastconv.set_num_threads(threads)
    rng = np.random.default_rng(0)
    rows = []
    with torch.no_grad():
        for label, kind, x_shape, w_shape, padding in LAYERS:
            result = compare(_candidates(kind, x_shape, w_shape, padding, rng), rounds=3, calls=2 if quick else 5,
                             settle_seconds=0.25 if quick else 2.0)
            ratio = result.ratio("torch", "fastconv")
            rows.append({"layer": label, "fastconv_ms": 1e3 * result.median_time("fastconv"),
                         "torch_ms": 1e3 * result.median_time("torch"),
                         "ratio": ratio.median, "ratio_low": ratio.low, "ratio_high": ratio.high})
    return {"available": True, "threads": threads, "machine": machine_line(threads), "rows": rows}


_CHILD = ("import torch, sys, json\n"
          "from fastconv.commands.bench import measure\n"
          "print(json.dumps(measure(int(sys.argv[1]), sys.argv[2] == 'quick')))\n")


def run_benchmark(threads, quick=False):
    """The benchmark result dict; {'available': False, 'reason': ...} when torch is missing."""
    if not torch_available():
        return {"available": False, "reason": "PyTorch is not installed (pip install 'fastconv[torch]')"}
    # cwd: `python -c` puts the working folder first on sys.path, so the child starts beside the
    # fastconv this process runs (a source checkout in the user's folder might have no _C)
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # .../fastconv
    proc = subprocess.run([sys.executable, "-c", _CHILD, str(threads), "quick" if quick else "full"],
                          capture_output=True, text=True, cwd=os.path.dirname(package))
    if proc.returncode != 0:
        raise RuntimeError(f"the benchmark process failed:\n{proc.stderr}")
    return json.loads(proc.stdout)


def format_table(result):
    lines = ["| layer | fastconv ms | torch ms | torch time / fastconv time (min-max) |", "|---|---|---|---|"]
    for r in result["rows"]:
        lines.append(f"| {r['layer']} | {r['fastconv_ms']:.3f} | {r['torch_ms']:.3f} | "
                     f"{r['ratio']:.2f} ({r['ratio_low']:.2f}-{r['ratio_high']:.2f}) |")
    return "\n".join(lines + [f"measured on: {result['machine']}; > 1 means fastconv is faster"])


def add_bench_command(subparsers, parents):
    p = add_command(subparsers, "bench", parents, "time fastconv against PyTorch on a few LeNet-5 and VGG-16 "
                    "layers (median ratio over 3 rounds, min-max spread)", EXAMPLE)
    p.add_argument("--threads", type=int, default=None, help="threads on both sides (default: all cores)")
    p.add_argument("--quick", action="store_true", help="shorter warm-up and rounds (noisier)")
    p.add_argument("--json", default=None, help="also write the results to this JSON file")
    return p


def run_bench_command(args):
    from fastconv.commands.common import set_threads
    threads = set_threads(args.threads)
    if not torch_available():
        raise UserError("fastconv bench compares against PyTorch, which is not installed: "
                        "pip install 'fastconv[torch]'")
    result = run_benchmark(threads, args.quick)
    print(format_table(result))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    return 0
