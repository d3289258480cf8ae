"""fastconv vs torch.nn.functional, side by side in one process (torch imported first, each on
the same threads): 3x3 convolution forward and backward (input + weight gradients) on issue 9's
18 shapes (VGG-16's nine 3x3 layers at batch 1 / 224x224 and at batch 8 / 56x56), LeNet-5's
convolutions, and pooling forward + backward.

    python3 bench/bench_conv.py [--algorithms direct auto] [--sets issue lenet pool] [--threads 2] [--only @7]

Every figure goes through fastconv.timing.compare (settle, alternate, >= 3 rounds); both sides
allocate their outputs. Prints markdown: time per call, and the ratio torch time / fastconv time
(> 1: fastconv faster) as the median over rounds with its min-max spread; geometric means with
the worst shape. `--algorithms direct winograd_f2 winograd_f4 winograd_f6 auto` gives the table
the `auto` cost model in fastconv/_cpu.py is fitted to. With auto, the forward table also times
an eval-mode nn.Conv2d, which keeps its Winograd-transformed weights between calls (what a
network's inference runs); functional.conv2d transforms them on every call.
"""
from __future__ import annotations

import argparse
import sys

import torch  # first: its OpenMP runtime loads with its own defaults

import numpy as np  # noqa: E402

import fastconv  # noqa: E402
import fastconv.functional as F  # noqa: E402
from fastconv import _cpu, nn  # noqa: E402
from fastconv._algorithm import ALGORITHMS  # noqa: E402
from fastconv._geometry import conv_geometry  # noqa: E402
from fastconv._shapes import ISSUE_SHAPES, LENET_CONVS, VGG16_POOLS  # noqa: E402
from fastconv.timing import compare, ensure_fast_allocator, geomean, machine_line, markdown_table  # noqa: E402


def conv_case(shape, rng):
    x = rng.standard_normal(shape.input_shape).astype(np.float32)
    w = (rng.standard_normal(shape.weight_shape) / np.sqrt(9 * shape.in_channels)).astype(np.float32)
    b = rng.standard_normal(shape.out_channels).astype(np.float32)
    o = shape.out_size
    dy = rng.standard_normal((shape.batch, shape.out_channels, o, o)).astype(np.float32)
    return x, w, b, dy


def auto_choice(shape, kind):
    """What auto runs: per call (and with reused weights, forward) or for each gradient."""
    g = conv_geometry(shape.input_shape, shape.weight_shape, 1, shape.padding, 1, 1)
    if kind == "bwd":
        dx, dw = (_cpu.choose_algorithm("auto", shape.input_shape, shape.weight_shape, g, input_grad=not wg,
                                        weight_grad=wg) for wg in (False, True))
        return f"dx {dx}, dw {dw}"
    plain, reused = (_cpu.choose_algorithm("auto", shape.input_shape, shape.weight_shape, g, weights_reused=r)
                     for r in (False, True))
    return f"{plain}, nn.Conv2d {reused}"


def cached_layer(shape, w, b):
    """An eval-mode nn.Conv2d holding w, b: after its first calls it reuses its transformed weights."""
    layer = nn.Conv2d(shape.in_channels, shape.out_channels, shape.kernel, padding=shape.padding).eval()
    layer.weight.data, layer.bias.data = w, b
    return layer


def time_conv(shape, algorithms, rounds, rng):
    """{"fwd" | "bwd": {candidate: Ratio}}, {"fwd" | "bwd": {"torch" | candidate: median seconds}};
    the candidates are the algorithms, plus "nn.Conv2d" (forward, cached weights) with auto."""
    x, w, b, dy = conv_case(shape, rng)
    tx, tw, tb, tdy = map(torch.from_numpy, (x, w, b, dy))
    p, k = shape.padding, shape.out_channels

    def torch_fwd():
        with torch.no_grad():
            return torch.nn.functional.conv2d(tx, tw, tb, padding=p)

    def torch_bwd():
        return torch.ops.aten.convolution_backward(tdy, tx, tw, [k], [1, 1], [p, p], [1, 1], False, [0, 0], 1,
                                                   [True, True, False])

    def fc_fwd(algo):
        return lambda: F.conv2d(x, w, b, padding=p, algorithm=algo)

    def fc_bwd(algo):
        return lambda: (F.conv2d_input(x.shape, w, dy, padding=p, algorithm=algo),
                        F.conv2d_weight(x, w.shape, dy, padding=p, algorithm=algo))

    candidates = {"fwd": {a: fc_fwd(a) for a in algorithms}, "bwd": {a: fc_bwd(a) for a in algorithms}}
    if "auto" in algorithms:
        layer = cached_layer(shape, w, b)
        candidates["fwd"]["nn.Conv2d"] = lambda: layer.forward(x)
    ratios, times = {}, {}
    for kind, theirs in (("fwd", torch_fwd), ("bwd", torch_bwd)):
        cmp = compare({"torch": theirs, **candidates[kind]}, rounds=rounds, calls=3, settle_seconds=2.0)
        ratios[kind] = {name: cmp.ratio("torch", name) for name in candidates[kind]}
        times[kind] = {name: cmp.median_time(name) for name in cmp.times}
    return ratios, times


def conv_tables(title, shapes, algorithms, rounds):
    rng = np.random.default_rng(0)
    results = []
    for s in shapes:
        results.append((s, *time_conv(s, algorithms, rounds, rng)))
        print(f"# {s.label}: " + ", ".join(f"{kind} {a} {r}" for kind, rs in results[-1][1].items()
                                            for a, r in rs.items()), file=sys.stderr, flush=True)
    summary = []
    for kind, what in (("fwd", "forward"), ("bwd", "backward (input + weight gradients)")):
        names = list(results[0][1][kind])
        headers = ["layer", "torch ms"] + [h for a in names for h in (f"{a} ms", f"{a} ratio")]
        rows = []
        for s, ratios, times in results:
            row = [s.label, f"{times[kind]['torch'] * 1e3:.2f}"]
            for a in names:
                row += [f"{times[kind][a] * 1e3:.2f}", str(ratios[kind][a])]
            if "auto" in algorithms:
                row[0] += f" (auto: {auto_choice(s, kind)})"
            rows.append(row)
        print(f"### {title}: {what}\n\n{markdown_table(headers, rows)}\n")
        for a in names:
            medians = {s.label: r[kind][a].median for s, r, _ in results}
            worst = min(medians, key=medians.get)
            summary.append([f"{title}, {a} {what}", f"**{geomean(medians.values()):.2f}**",
                            f"{medians[worst]:.2f} ({worst})"])
    return summary


def pool_table(batch, image, rounds):
    rng = np.random.default_rng(0)
    rows, medians = [], {}
    for name, c, size in VGG16_POOLS:
        h = size * image // 224
        x = rng.standard_normal((batch, c, h, h)).astype(np.float32)
        tx = torch.from_numpy(x)

        def fc_max():
            y, idx = F.max_pool2d(x, 2, 2, return_indices=True)
            return F.max_pool2d_backward(y, idx, x.shape)

        def torch_max():
            y, idx = torch.nn.functional.max_pool2d(tx, 2, 2, return_indices=True)
            return torch.ops.aten.max_pool2d_with_indices_backward(y, tx, [2, 2], [2, 2], [0, 0], [1, 1], False, idx)

        def fc_avg():
            return F.avg_pool2d_backward(F.avg_pool2d(x, 2, 2), x.shape, 2, 2)

        def torch_avg():
            y = torch.nn.functional.avg_pool2d(tx, 2, 2)
            return torch.ops.aten.avg_pool2d_backward(y, tx, [2, 2], [2, 2], [0, 0], False, True, None)

        for kind, ours, theirs in (("max", fc_max, torch_max), ("avg", fc_avg, torch_avg)):
            cmp = compare({"torch": theirs, "fastconv": ours}, rounds=rounds, calls=3, settle_seconds=1.0)
            r = cmp.ratio("torch", "fastconv")
            label = f"{kind}pool 2x2 {name} C={c} @{h} N={batch}"
            medians[label] = r.median
            rows.append([label, f"{cmp.median_time('torch') * 1e3:.3f}",
                         f"{cmp.median_time('fastconv') * 1e3:.3f}", str(r)])
    print(f"### Pooling forward + backward, batch {batch}\n\n"
          f"{markdown_table(['op', 'torch ms', 'fastconv ms', 'ratio'], rows)}\n")
    worst = min(medians, key=medians.get)
    return [[f"pooling fwd+bwd N={batch}", f"**{geomean(medians.values()):.2f}**", f"{medians[worst]:.2f} ({worst})"]]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--algorithms", nargs="+", default=["direct", "auto"], choices=ALGORITHMS)
    ap.add_argument("--sets", nargs="+", default=["issue", "lenet", "pool"], choices=["issue", "lenet", "pool"])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--only", metavar="SUBSTRING", help="time only the conv shapes whose label contains it")
    args = ap.parse_args()
    ensure_fast_allocator()
    torch.set_num_threads(args.threads)
    fastconv.set_num_threads(args.threads)
    print(f"Machine: {machine_line(args.threads)}\n")
    summary = []

    def chosen(shapes):
        return [s for s in shapes if args.only is None or args.only in s.label]
    if "issue" in args.sets and chosen(ISSUE_SHAPES):
        summary += conv_tables("18 VGG-16 shapes", chosen(ISSUE_SHAPES), args.algorithms, args.rounds)
    if "lenet" in args.sets and chosen(LENET_CONVS):
        summary += conv_tables("LeNet-5 convs", chosen(LENET_CONVS), ["direct"], args.rounds)
    if "pool" in args.sets:
        for batch, image in ((1, 224), (8, 56)):  # the conv shapes' two regimes
            summary += pool_table(batch, image, args.rounds)
    print("### Geometric means of the per-shape median ratios (torch time / fastconv time)\n\n"
          f"{markdown_table(['set', 'geomean', 'worst shape'], summary)}\n")


if __name__ == "__main__":
    main()
