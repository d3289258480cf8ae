"""fastconv vs torch.nn.functional, side by side in one process: direct convolution
forward and backward on the VGG-16 3x3 layers and LeNet-5's layers, and pooling.

    python3 bench/bench_conv.py [--batch 1 8] [--threads 2] [--quick] [--algorithm direct]

Prints markdown tables (time, GFLOP/s, ratio = torch time / fastconv time; > 1 means
fastconv is faster) and geometric means.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from _timing import geomean, machine_line, median_time, print_table, setup_threads  # noqa: E402

import fastconv.functional as F  # noqa: E402

# (name, C, K, H) at 224x224 input: the nine distinct 3x3 layer shapes of VGG-16
VGG16 = [("conv1_1", 3, 64, 224), ("conv1_2", 64, 64, 224), ("conv2_1", 64, 128, 112),
         ("conv2_2", 128, 128, 112), ("conv3_1", 128, 256, 56), ("conv3_2", 256, 256, 56),
         ("conv4_1", 256, 512, 28), ("conv4_2", 512, 512, 28), ("conv5_x", 512, 512, 14)]
# (name, C, K, H, kernel) LeNet-5 convolutions, batch 64
LENET = [("lenet_c1", 1, 6, 32, 5), ("lenet_c3", 6, 16, 14, 5)]
# pooling on the VGG-16 pool inputs: (name, C, H)
POOLS = [("pool1", 64, 224), ("pool2", 128, 112), ("pool3", 256, 56), ("pool4", 512, 28), ("pool5", 512, 14)]


def conv_rows(layers, batch, repeats, algorithm, kernel=3, pad=1):
    rows, fwd_ratios, bwd_ratios = [], [], []
    rng = np.random.default_rng(0)
    for layer in layers:
        name, c, k, h = layer[:4]
        ks = layer[4] if len(layer) > 4 else kernel
        p = pad if len(layer) <= 4 else 0
        x = rng.standard_normal((batch, c, h, h)).astype(np.float32)
        w = (rng.standard_normal((k, c, ks, ks)) * 0.1).astype(np.float32)
        b = rng.standard_normal(k).astype(np.float32)
        tx, tw, tb = torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b)
        y = F.conv2d(x, w, b, padding=p, algorithm=algorithm)
        dy = rng.standard_normal(y.shape).astype(np.float32)
        tdy = torch.from_numpy(dy)
        flops = 2.0 * batch * k * c * ks * ks * y.shape[2] * y.shape[3]
        with torch.no_grad():
            t_torch = median_time(lambda: torch.nn.functional.conv2d(tx, tw, tb, padding=p), repeats)
        t_fc = median_time(lambda: F.conv2d(x, w, b, padding=p, algorithm=algorithm), repeats)

        def torch_backward():
            torch.ops.aten.convolution_backward(tdy, tx, tw, [k], [1, 1], [p, p], [1, 1], False, [0, 0], 1,
                                                [True, True, False])

        def fc_backward():
            F.conv2d_input(x.shape, w, dy, padding=p, algorithm=algorithm)
            F.conv2d_weight(x, w.shape, dy, padding=p)

        tb_torch = median_time(torch_backward, repeats)
        tb_fc = median_time(fc_backward, repeats)
        fr, br = t_torch / t_fc, tb_torch / tb_fc
        fwd_ratios.append(fr)
        bwd_ratios.append(br)
        rows.append([f"{name} {c}->{k} @{h} N={batch}", f"{t_torch * 1e3:.2f}", f"{t_fc * 1e3:.2f}",
                     f"{flops / t_fc / 1e9:.0f}", f"**{fr:.2f}**", f"{tb_torch * 1e3:.2f}", f"{tb_fc * 1e3:.2f}",
                     f"{2 * flops / tb_fc / 1e9:.0f}", f"**{br:.2f}**"])
    return rows, fwd_ratios, bwd_ratios


def pool_rows(batch, repeats):
    rows, ratios = [], []
    rng = np.random.default_rng(0)
    for name, c, h in POOLS:
        x = rng.standard_normal((batch, c, h, h)).astype(np.float32)
        tx = torch.from_numpy(x)
        for kind in ("max", "avg"):
            if kind == "max":
                def fc():
                    y, idx = F.max_pool2d(x, 2, 2, return_indices=True)
                    F.max_pool2d_backward(y, idx, x.shape)

                def tc():
                    y, idx = torch.nn.functional.max_pool2d(tx, 2, 2, return_indices=True)
                    torch.ops.aten.max_pool2d_with_indices_backward(y, tx, [2, 2], [2, 2], [0, 0], [1, 1], False, idx)
            else:
                def fc():
                    y = F.avg_pool2d(x, 2, 2)
                    F.avg_pool2d_backward(y, x.shape, 2, 2)

                def tc():
                    y = torch.nn.functional.avg_pool2d(tx, 2, 2)
                    torch.ops.aten.avg_pool2d_backward(y, tx, [2, 2], [2, 2], [0, 0], False, True, None)
            t_fc, t_torch = median_time(fc, repeats), median_time(tc, repeats)
            ratios.append(t_torch / t_fc)
            rows.append([f"{kind}pool 2x2 {name} C={c} @{h} N={batch}", f"{t_torch * 1e3:.3f}",
                         f"{t_fc * 1e3:.3f}", f"**{t_torch / t_fc:.2f}**"])
    return rows, ratios


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, nargs="+", default=[1, 8])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--algorithm", default="direct")
    ap.add_argument("--quick", action="store_true", help="3 repeats instead of 7")
    ap.add_argument("--skip", nargs="*", default=[], choices=["vgg", "lenet", "pool"])
    args = ap.parse_args()
    setup_threads(args.threads)
    repeats = 3 if args.quick else 7
    print(f"Machine: {machine_line(args.threads)}; algorithm={args.algorithm}\n")
    headers = ["layer", "torch fwd ms", "fastconv fwd ms", "GFLOP/s", "fwd ratio",
               "torch bwd ms", "fastconv bwd ms", "GFLOP/s", "bwd ratio"]
    summary = []
    for batch in args.batch:
        if "vgg" not in args.skip:
            rows, fr, br = conv_rows(VGG16, batch, repeats, args.algorithm)
            print(f"### VGG-16 3x3 layers, batch {batch} (backward = input + weight gradients)\n")
            print_table(headers, rows)
            summary.append([f"VGG-16 convs N={batch}", f"{geomean(fr):.2f}", f"{geomean(br):.2f}"])
            print()
    if "lenet" not in args.skip:
        rows, fr, br = conv_rows(LENET, 64, repeats, args.algorithm)
        print("### LeNet-5 convolutions, batch 64\n")
        print_table(headers, rows)
        summary.append(["LeNet-5 convs N=64", f"{geomean(fr):.2f}", f"{geomean(br):.2f}"])
        print()
    if "pool" not in args.skip:
        for batch in args.batch:
            rows, pr = pool_rows(batch, repeats)
            print(f"### Pooling forward + backward, batch {batch}\n")
            print_table(["op", "torch ms", "fastconv ms", "ratio"], rows)
            summary.append([f"pooling fwd+bwd N={batch}", f"{geomean(pr):.2f}", "-"])
            print()
    print("### Geometric means (torch time / fastconv time)\n")
    print_table(["set", "forward", "backward"], summary)


if __name__ == "__main__":
    main()
