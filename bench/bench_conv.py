"""fastconv vs torch.nn.functional, side by side in one process (torch imported first, each on
the same threads): 3x3 convolution forward and backward (input + weight gradients) on issue 9's
18 shapes (VGG-16's nine 3x3 layers at batch 1 / 224x224 and at batch 8 / 56x56), LeNet-5's
convolutions (batch 64 and 1), AlexNet's stride-1 convolutions at batch 1 (the 5x5 conv2 and the 3x3 layers on
13x13 maps), pooling forward + backward, MobileNetV2's depthwise convolutions (batch 1) with each
one's memory-bandwidth bound, and (sets zoo, zoo8) the 73 distinct conv layers of AlexNet,
VGG-16, ResNet-18/50 and MobileNetV2 at batch 1, and a subset of them at batch 8
(fastconv._shapes.ZOO, ZOO_BATCH8; auto only, with the count of layers below 1.0).

    python3 bench/bench_conv.py [--algorithms direct auto] [--sets issue lenet alexnet pool depthwise zoo zoo8] [--threads 2] [--only @7]

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
from fastconv import _C, _cpu, nn  # noqa: E402
from fastconv._algorithm import ALGORITHMS  # noqa: E402
from fastconv._geometry import conv_geometry  # noqa: E402
from fastconv._shapes import ISSUE_SHAPES, LENET_CONVS, VGG16_POOLS, ZOO, ZOO_BATCH8  # noqa: E402
from fastconv.timing import compare, ensure_fast_allocator, geomean, machine_line, markdown_table  # noqa: E402


# AlexNet's stride-1 convolutions at batch 1, from the zoo: conv2 (5x5, pad 2) and conv3-5 (3x3 @13).
ALEXNET_STRIDE1 = [s for s in ZOO if s.name.startswith("alexnet") and s.stride == 1]
# LeNet-5's 5x5 convolutions at the training batch of 64 and at batch 1 (inference).
LENET_BOTH_BATCHES = LENET_CONVS + [s._replace(batch=1) for s in LENET_CONVS]


def conv_case(shape, rng):
    x = rng.standard_normal(shape.input_shape).astype(np.float32)
    fan_in = np.prod(shape.weight_shape[1:])
    w = (rng.standard_normal(shape.weight_shape) / np.sqrt(fan_in)).astype(np.float32)
    b = rng.standard_normal(shape.out_channels).astype(np.float32)
    o = shape.out_size
    dy = rng.standard_normal((shape.batch, shape.out_channels, o, o)).astype(np.float32)
    return x, w, b, dy


def auto_choice(shape, kind):
    """What auto runs: per call (and with reused weights, forward) or for each gradient."""
    g = conv_geometry(shape.input_shape, shape.weight_shape, *conv_args(shape))
    if kind == "bwd":
        dx, dw = (_cpu.choose_algorithm("auto", shape.input_shape, shape.weight_shape, g, input_grad=not wg,
                                        weight_grad=wg) for wg in (False, True))
        return f"dx {dx}, dw {dw}"
    plain, reused = (_cpu.choose_algorithm("auto", shape.input_shape, shape.weight_shape, g, weights_reused=r)
                     for r in (False, True))
    return f"{plain}, nn.Conv2d {reused}"


def cached_layer(shape, w, b):
    """An eval-mode nn.Conv2d holding w, b: after its first calls it reuses its transformed weights."""
    layer = nn.Conv2d(shape.in_channels, shape.out_channels, shape.kernel, *conv_args(shape)).eval()
    layer.weight.data, layer.bias.data = w, b
    return layer


def conv_args(shape):
    """(stride, padding, dilation, groups) of a ConvShape, in conv2d's argument order."""
    return shape.stride, shape.padding, shape.dilation, shape.groups


def time_conv(shape, algorithms, rounds, rng, cached=True):
    """{"fwd" | "bwd": {candidate: Ratio}}, {"fwd" | "bwd": {"torch" | candidate: median seconds}};
    the candidates are the algorithms, plus "nn.Conv2d" (forward, cached weights) with auto when
    `cached`."""
    x, w, b, dy = conv_case(shape, rng)
    tx, tw, tb, tdy = map(torch.from_numpy, (x, w, b, dy))
    args = conv_args(shape)
    st, p, d, g = args

    def torch_fwd():
        with torch.inference_mode():
            return torch.nn.functional.conv2d(tx, tw, tb, *args)

    def torch_bwd():
        return torch.ops.aten.convolution_backward(tdy, tx, tw, [shape.out_channels], [st, st], [p, p], [d, d],
                                                   False, [0, 0], g, [True, True, False])

    def fc_fwd(algo):
        return lambda: F.conv2d(x, w, b, *args, algorithm=algo)

    def fc_bwd(algo):
        return lambda: (F.conv2d_input(x.shape, w, dy, *args, algorithm=algo),
                        F.conv2d_weight(x, w.shape, dy, *args, algorithm=algo))

    candidates = {"fwd": {a: fc_fwd(a) for a in algorithms}, "bwd": {a: fc_bwd(a) for a in algorithms}}
    if "auto" in algorithms and cached:
        layer = cached_layer(shape, w, b)
        candidates["fwd"]["nn.Conv2d"] = lambda: layer.forward(x)
    ratios, times = {}, {}
    for kind, theirs in (("fwd", torch_fwd), ("bwd", torch_bwd)):
        cmp = compare({"torch": theirs, **candidates[kind]}, rounds=rounds, calls=3, settle_seconds=2.0)
        ratios[kind] = {name: cmp.ratio("torch", name) for name in candidates[kind]}
        times[kind] = {name: cmp.median_time(name) for name in cmp.times}
    return ratios, times


def conv_tables(title, shapes, algorithms, rounds, cached=True):
    rng = np.random.default_rng(0)
    results = []
    for s in shapes:
        results.append((s, *time_conv(s, algorithms, rounds, rng, cached)))
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
            below = sum(m < 1.0 for m in medians.values())
            summary.append([f"{title}, {a} {what}", f"**{geomean(medians.values()):.2f}**",
                            f"{below} of {len(medians)}", f"{medians[worst]:.2f} ({worst})"])
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
    below = sum(m < 1.0 for m in medians.values())
    return [[f"pooling fwd+bwd N={batch}", f"**{geomean(medians.values()):.2f}**", f"{below} of {len(medians)}",
             f"{medians[worst]:.2f} ({worst})"]]


def mobilenet_v2_depthwise():
    """[(name, C, H, stride, padding, kernel)]: MobileNetV2's distinct depthwise convolutions at
    batch 1 and 224x224, from the zoo (fastconv._shapes.ZOO, checked against tests/torch_zoo.py)."""
    return [(s.name.removeprefix("mobilenet_v2 "), s.in_channels, s.size, s.stride, s.padding, s.kernel)
            for s in ZOO if s.name.startswith("mobilenet") and s.groups > 1 and s.groups == s.in_channels]


def streaming_seconds(nbytes, rounds):
    """The time to stream nbytes through memory (half read, half written) at the best rate of two
    same-size copies on the benchmark's threads: fastconv's element-wise pass (relu: one read and one
    write per element, on fastconv's pool) and torch's copy_ (its own threads). Median over rounds
    of the median of 7 calls, the faster of the two."""
    n = max(1, int(nbytes // 8))  # float32 elements: n read + n written = nbytes
    src = np.abs(np.random.default_rng(0).standard_normal(n)).astype(np.float32)
    dst = np.empty_like(src)
    tsrc, tdst = torch.from_numpy(src), torch.from_numpy(dst)
    cmp = compare({"fastconv pass": lambda: _C.relu(src, dst), "torch copy_": lambda: tdst.copy_(tsrc)},
                  rounds=rounds, calls=7, settle_seconds=0.5)
    return min(cmp.median_time(name) for name in cmp.times)


def depthwise_table(rounds):
    """MobileNetV2's depthwise layers, forward and backward (input + weight gradients), against
    torch and against the layer's bandwidth bound: the bytes it must move (forward: read x, write y;
    backward: read x and dy, write dx; weights are negligible) streamed at the rate of a copy of the
    same size (streaming_seconds). "fc / bound" is fastconv's time over that bound (1.0: at the
    memory's speed). The maps fit in L2/L3, so the bound is the cache's bandwidth, not DRAM's."""
    rng = np.random.default_rng(0)
    rows, summary = [], []
    medians = {"fwd": {}, "bwd": {}}
    fractions = {"fwd": {}, "bwd": {}}
    for name, c, h, stride, pad, k in mobilenet_v2_depthwise():
        x = rng.standard_normal((1, c, h, h)).astype(np.float32)
        w = (rng.standard_normal((c, 1, k, k)) / k).astype(np.float32)
        o = (h + 2 * pad - k) // stride + 1
        dy = rng.standard_normal((1, c, o, o)).astype(np.float32)
        tx, tw, tdy = map(torch.from_numpy, (x, w, dy))
        kw = dict(stride=stride, padding=pad, groups=c)

        def torch_fwd():
            with torch.no_grad():
                return torch.nn.functional.conv2d(tx, tw, None, stride, pad, 1, c)

        def torch_bwd():
            return torch.ops.aten.convolution_backward(tdy, tx, tw, [0], [stride] * 2, [pad] * 2, [1, 1], False,
                                                       [0, 0], c, [True, True, False])

        def fc_fwd():
            return F.conv2d(x, w, None, **kw)

        def fc_bwd():
            return F.conv2d_input(x.shape, w, dy, **kw), F.conv2d_weight(x, w.shape, dy, **kw)

        label = f"{name} dw {k}x{k}/{stride} C={c} @{h}"
        row = [label]
        for kind, theirs, ours, nbytes in (("fwd", torch_fwd, fc_fwd, x.nbytes + dy.nbytes),
                                           ("bwd", torch_bwd, fc_bwd, 2 * x.nbytes + dy.nbytes)):
            cmp = compare({"torch": theirs, "fastconv": ours}, rounds=rounds, calls=5, settle_seconds=1.0)
            bound = streaming_seconds(nbytes, rounds)
            r = cmp.ratio("torch", "fastconv")
            medians[kind][label] = r.median
            fractions[kind][label] = cmp.median_time("fastconv") / bound
            row += [f"{cmp.median_time('torch') * 1e3:.3f}", f"{cmp.median_time('fastconv') * 1e3:.3f}", str(r),
                    f"{bound * 1e3:.3f}", f"{fractions[kind][label]:.2f}"]
        rows.append(row)
        print(f"# {label}: fwd {row[3]} ({row[5]}x bound), bwd {row[8]} ({row[10]}x bound)", file=sys.stderr, flush=True)
    headers = ["layer"] + [f"{kind} {h}" for kind in ("fwd", "bwd")
                           for h in ("torch ms", "fastconv ms", "ratio", "bound ms", "fc / bound")]
    print(f"### MobileNetV2 depthwise layers, batch 1\n\n{markdown_table(headers, rows)}\n")
    for kind, what in (("fwd", "forward"), ("bwd", "backward (input + weight gradients)")):
        worst = min(medians[kind], key=medians[kind].get)
        far = max(fractions[kind], key=fractions[kind].get)
        below = sum(m < 1.0 for m in medians[kind].values())
        summary.append([f"MobileNetV2 depthwise {what}", f"**{geomean(medians[kind].values()):.2f}**",
                        f"{below} of {len(medians[kind])}", f"{medians[kind][worst]:.2f} ({worst}); fc / bound geomean "
                        f"{geomean(fractions[kind].values()):.2f}, worst {fractions[kind][far]:.2f} ({far})"])
    return summary


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--algorithms", nargs="+", default=["direct", "auto"], choices=ALGORITHMS)
    ap.add_argument("--sets", nargs="+", default=["issue", "lenet", "alexnet", "pool", "depthwise"],
                    choices=["issue", "lenet", "alexnet", "pool", "depthwise", "zoo", "zoo8"])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--only", metavar="SUBSTRING", help="time only the conv shapes whose label contains it")
    args = ap.parse_args()
    ensure_fast_allocator()
    torch.set_num_threads(args.threads)
    fastconv.set_num_threads(args.threads)
    print(f"Machine: {machine_line(args.threads)}\n")
    summary = []

    # The sets with 5x5 layers skip the Winograd tiles 5x5 kernels lack (F(6x6, 5x5)).
    with_5x5 = [a for a in args.algorithms if a not in _cpu.WINOGRAD_TILES or a in _cpu.WINOGRAD_KERNEL_TILES[5]]

    def chosen(shapes):
        return [s for s in shapes if args.only is None or args.only in s.label]
    if "issue" in args.sets and chosen(ISSUE_SHAPES):
        summary += conv_tables("18 VGG-16 shapes", chosen(ISSUE_SHAPES), args.algorithms, args.rounds)
    if "lenet" in args.sets and chosen(LENET_BOTH_BATCHES):
        summary += conv_tables("LeNet-5 convs", chosen(LENET_BOTH_BATCHES), with_5x5, args.rounds)
    if "alexnet" in args.sets and chosen(ALEXNET_STRIDE1):
        summary += conv_tables("AlexNet stride-1 convs, batch 1", chosen(ALEXNET_STRIDE1), with_5x5, args.rounds)
    for name, shapes, title in (("zoo", ZOO, f"{len(ZOO)} zoo layers, batch 1"),
                                ("zoo8", ZOO_BATCH8, f"{len(ZOO_BATCH8)} zoo layers, batch 8")):
        if name in args.sets and chosen(shapes):
            summary += conv_tables(title, chosen(shapes), ["auto"], args.rounds, cached=False)
    if "pool" in args.sets:
        for batch, image in ((1, 224), (8, 56)):  # the conv shapes' two regimes
            summary += pool_table(batch, image, args.rounds)
    if "depthwise" in args.sets:
        summary += depthwise_table(args.rounds)
    print("### Geometric means of the per-shape median ratios (torch time / fastconv time)\n\n"
          f"{markdown_table(['set', 'geomean', 'below 1.0', 'worst shape'], summary)}\n")


if __name__ == "__main__":
    main()
