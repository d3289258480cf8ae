#!/usr/bin/env python3
"""fastconv CUDA kernels vs PyTorch/cuDNN, measured side by side on one GPU.

1. correctness on the device: direct / Winograd F(2,3) / F(4,3) forward and input gradient,
   direct weight gradient, against a float64 oracle (torch float64 on the GPU), with the
   bounds: direct <= 1e-5, F(2,3) <= 1e-5, F(4,3) <= 5e-5 (max |err| / max |ref|);
2. timing of the VGG-16 3x3 conv layers at the given batches, forward and backward
   (input + weight gradients), fp32 with TF32 off for both, plus cuDNN's TF32-on time as a
   note; and max-pool 2x2 forward + backward. Prints ms, effective TFLOP/s and
   speedup = t_torch / t_fastconv (> 1: fastconv faster).
An overall time budget (--budget-s) skips what would not fit, saying so.

    python bench/bench_cuda.py --batches 8,32 --budget-s 420
    python bench/bench_cuda.py --simulate-tiny     # every piece, tiny shapes, Numba's CPU simulator

fastconv's CUDA ops take the torch tensors directly (__cuda_array_interface__) and launch on
torch's current stream, so CUDA events on that stream time them; outputs go to preallocated
torch tensors through out=.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
import types
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

BOUNDS = {"direct": 1e-5, "winograd_f2": 1e-5, "winograd_f4": 5e-5}


class Budget:
    def __init__(self, seconds):
        self.end = time.perf_counter() + seconds

    def left(self):
        return self.end - time.perf_counter()

    def allows(self, need_s, what):
        if self.left() >= need_s:
            return True
        print(f"  SKIPPED (time budget: {self.left():.0f}s left, ~{need_s:.0f}s needed): {what}")
        return False


def import_fastconv():
    """fastconv, or -- where its CPU extension cannot load (e.g. built for another Python) --
    fastconv with a placeholder _C, enough for the CUDA backend, which does not use it."""
    try:
        import fastconv
        return fastconv, True
    except ImportError as e:
        print(f"NOTE: fastconv's CPU extension did not load ({e}); benchmarking the CUDA backend only")
        sys.modules["fastconv._C"] = types.ModuleType("fastconv._C")
        import fastconv
        return fastconv, False


def vgg16_layers():
    """(C, K, H=W) of VGG-16's thirteen 3x3 convolutions (padding 1), and the max-pool inputs
    (C, H=W), from fastconv._shapes (imported after import_fastconv has set the package up)."""
    from fastconv._shapes import VGG16_3X3, VGG16_ORDER, VGG16_POOLS
    convs = [next((c, k, h) for n, c, k, h in VGG16_3X3 if n == name) for name in VGG16_ORDER]
    return convs, [(c, h) for _, c, h in VGG16_POOLS]


# ---------------------------------------------------------------------------- device abstraction

class TorchDevice:
    """Real GPU: torch CUDA tensors, torch float64 as the oracle, CUDA-event timing."""
    simulated = False

    def __init__(self):
        import torch
        self.torch = torch
        torch.backends.cudnn.benchmark = True

    def randn(self, shape, seed):
        g = self.torch.Generator(device="cuda").manual_seed(seed)
        return self.torch.randn(*shape, device="cuda", generator=g, dtype=self.torch.float32)

    def empty(self, shape, dtype="float32"):
        return self.torch.empty(*shape, device="cuda", dtype=getattr(self.torch, dtype))

    def as_tensor(self, a):
        return a if isinstance(a, self.torch.Tensor) else self.torch.as_tensor(a, device="cuda")

    def oracle_conv(self, x, w, padding):
        F = self.torch.nn.functional
        x64, w64 = x.double(), w.double()
        y = F.conv2d(x64, w64, padding=padding)
        return x64, w64, y

    def oracle_grads(self, x64, w64, dy, padding):
        g = self.torch.ops.aten.convolution_backward(dy.double(), x64, w64, None, [1, 1], [padding] * 2,
                                                     [1, 1], False, [0, 0], 1, [True, True, False])
        return g[0], g[1]

    def rel_err(self, got, ref):
        got = self.as_tensor(got).double()
        return float((got - ref).abs().max() / ref.abs().max().clamp_min(1e-30))

    def time_ms(self, fn, reps):
        torch = self.torch
        fn()  # warm-up: compiles kernels, fills caches
        torch.cuda.synchronize()
        start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(reps):
            fn()
        stop.record()
        torch.cuda.synchronize()
        return start.elapsed_time(stop) / reps


class SimDevice:
    """Numba's CUDA simulator: numpy in, numba device arrays, fastconv.reference as oracle.
    Times are meaningless here; this only proves the script's pieces run."""
    simulated = True

    def __init__(self):
        import numpy as np
        from numba import cuda
        self.np, self.cuda = np, cuda

    def randn(self, shape, seed):
        return self.cuda.to_device(self.np.random.default_rng(seed).standard_normal(shape).astype("float32"))

    def empty(self, shape, dtype="float32"):
        return self.cuda.device_array(shape, dtype)

    def oracle_conv(self, x, w, padding):
        from fastconv import reference as R
        xh, wh = x.copy_to_host(), w.copy_to_host()
        return xh, wh, R.conv2d(xh, wh, padding=padding)

    def oracle_grads(self, x64, w64, dy, padding):
        from fastconv import reference as R
        dyh = dy.copy_to_host()
        return (R.conv2d_input(x64.shape, w64, dyh, padding=padding),
                R.conv2d_weight(x64, w64.shape, dyh, padding=padding))

    def rel_err(self, got, ref):
        np = self.np
        got = got.copy_to_host().astype(np.float64)
        return float(np.abs(got - ref).max() / max(np.abs(ref).max(), 1e-30))

    def time_ms(self, fn, reps):
        fn()
        self.cuda.synchronize()
        t = time.perf_counter()
        for _ in range(reps):
            fn()
        self.cuda.synchronize()
        return (time.perf_counter() - t) * 1e3 / reps


# ---------------------------------------------------------------------------- checks

def tile_name(M, N, G=1):
    """The GEMM tile fastconv.cuda._igemm picks for an M x N output (G batch entries)."""
    from fastconv.cuda import _igemm
    cfg = _igemm.choose_config(M, N, G)
    return next((name for name, c in _igemm.CONFIGS.items() if c == cfg), "sim")


def correctness(dev, F, layers, batch, budget):
    print(f"\n== correctness vs float64 oracle (batch {batch}) ==")
    failures = 0
    for i, (c, k, h) in enumerate(layers):
        if not budget.allows(5, f"correctness layer {i}"):
            break
        print(f"  conv{i} GEMM tiles: direct fwd {tile_name(k, batch * h * h)}, dgrad {tile_name(c, batch * h * h)},"
              f" wgrad {tile_name(k, c * 9)}, F(4,3) {tile_name(k, batch * -(-h // 4) ** 2, 36)}")
        x, w = dev.randn((batch, c, h, h), 10 + i), dev.randn((k, c, 3, 3), 20 + i)
        x64, w64, ref = dev.oracle_conv(x, w, 1)
        dy = dev.randn(tuple(ref.shape), 30 + i)
        ref_dx, ref_dw = dev.oracle_grads(x64, w64, dy, 1)
        for algo, bound in BOUNDS.items():
            e_fwd = dev.rel_err(F.conv2d(x, w, padding=1, algorithm=algo), ref)
            e_dx = dev.rel_err(F.conv2d_input(tuple(x.shape), w, dy, padding=1, algorithm=algo), ref_dx)
            ok = e_fwd <= bound and e_dx <= bound
            failures += not ok
            print(f"  conv{i:<2d} C={c:<3d} K={k:<3d} {h:>3d}x{h:<3d} {algo:12s} fwd {e_fwd:.2e}  "
                  f"dgrad {e_dx:.2e}  bound {bound:.0e}  {'PASS' if ok else 'FAIL'}")
        e_dw = dev.rel_err(F.conv2d_weight(x, tuple(w.shape), dy, padding=1), ref_dw)
        ok = e_dw <= BOUNDS["direct"]
        failures += not ok
        print(f"  conv{i:<2d} weight gradient (direct) {e_dw:.2e}  {'PASS' if ok else 'FAIL'}")
    return failures


def _tflops(flop, ms):
    return flop / (ms * 1e-3) / 1e12


def time_convs(dev, F, layers, batches, reps, budget):
    print("\n== conv 3x3 pad 1: ms (TFLOP/s); speedup = torch fp32 / fastconv ==")
    torch = None if dev.simulated else dev.torch
    for n in batches:
        for i, (c, k, h) in enumerate(layers):
            flop = 2.0 * n * k * c * 9 * h * h
            if not budget.allows(4 + 3e-12 * flop * reps, f"batch {n} conv{i}"):
                return
            x, w, dy = dev.randn((n, c, h, h), 1), dev.randn((k, c, 3, 3), 2), dev.randn((n, k, h, h), 3)
            y, dx, dw = dev.empty((n, k, h, h)), dev.empty((n, c, h, h)), dev.empty((k, c, 3, 3))
            res = {}
            if torch is not None:
                tf = torch.nn.functional
                for tf32 in (False, True):
                    torch.backends.cudnn.allow_tf32 = tf32
                    torch.backends.cuda.matmul.allow_tf32 = tf32
                    res[f"torch{'_tf32' if tf32 else ''}_fwd"] = dev.time_ms(lambda: tf.conv2d(x, w, padding=1), reps)
                    res[f"torch{'_tf32' if tf32 else ''}_bwd"] = dev.time_ms(
                        lambda: torch.ops.aten.convolution_backward(dy, x, w, None, [1, 1], [1, 1], [1, 1], False,
                                                                    [0, 0], 1, [True, True, False]), reps)
                torch.backends.cudnn.allow_tf32 = False
                torch.backends.cuda.matmul.allow_tf32 = False
            for algo in ("direct", "winograd_f2", "winograd_f4"):
                try:
                    res[f"{algo}_fwd"] = dev.time_ms(lambda: F.conv2d(x, w, padding=1, algorithm=algo, out=y), reps)
                    res[f"{algo}_dgrad"] = dev.time_ms(
                        lambda: F.conv2d_input(tuple(x.shape), w, dy, padding=1, algorithm=algo, out=dx), reps)
                except Exception as e:  # report and go on: one failing config must not hide the rest
                    print(f"  batch {n} conv{i} {algo}: ERROR {type(e).__name__}: {e}")
            res["wgrad"] = dev.time_ms(lambda: F.conv2d_weight(x, tuple(w.shape), dy, padding=1, out=dw), reps)
            _print_conv_row(n, i, c, k, h, flop, res)


def _print_conv_row(n, i, c, k, h, flop, res):
    best = min((res[f"{a}_fwd"], a) for a in ("direct", "winograd_f2", "winograd_f4") if f"{a}_fwd" in res)
    bwd_algo = min((res[f"{a}_dgrad"], a) for a in ("direct", "winograd_f2", "winograd_f4") if f"{a}_dgrad" in res)
    fc_bwd = bwd_algo[0] + res["wgrad"]
    line = (f"  N={n:<2d} conv{i:<2d} C={c:<3d} K={k:<3d} {h:>3d}^2 | fwd direct {res.get('direct_fwd', 0):7.3f}"
            f" f2 {res.get('winograd_f2_fwd', 0):7.3f} f4 {res.get('winograd_f4_fwd', 0):7.3f}"
            f" best {best[0]:7.3f} ({_tflops(flop, best[0]):5.1f} TF/s, {best[1]})"
            f" | bwd {fc_bwd:7.3f} (dgrad {bwd_algo[1]} {bwd_algo[0]:.3f} + wgrad {res['wgrad']:.3f},"
            f" {_tflops(2 * flop, fc_bwd):5.1f} TF/s)")
    if "torch_fwd" in res:
        line += (f"\n      torch fwd {res['torch_fwd']:7.3f} ({_tflops(flop, res['torch_fwd']):5.1f} TF/s) "
                 f"speedup {res['torch_fwd'] / best[0]:5.2f}x | torch bwd {res['torch_bwd']:7.3f} "
                 f"speedup {res['torch_bwd'] / fc_bwd:5.2f}x | TF32-on torch: fwd {res['torch_tf32_fwd']:.3f}"
                 f" bwd {res['torch_tf32_bwd']:.3f} (not comparable: 10-bit mantissa inputs)")
    print(line, flush=True)


def time_pools(dev, F, pools, batches, reps, budget):
    print("\n== max-pool 2x2 stride 2: ms; speedup = torch / fastconv ==")
    torch = None if dev.simulated else dev.torch
    for n in batches:
        for c, h in pools:
            if not budget.allows(3, f"batch {n} pool {c}x{h}"):
                return
            x = dev.randn((n, c, h, h), 4)
            y, idx = F.max_pool2d(x, 2, return_indices=True)
            dy = dev.randn(tuple(y.shape), 5)
            t_f = dev.time_ms(lambda: F.max_pool2d(x, 2, return_indices=True), reps)
            t_b = dev.time_ms(lambda: F.max_pool2d_backward(dy, idx, tuple(x.shape)), reps)
            line = f"  N={n:<2d} C={c:<3d} {h:>3d}^2 fastconv fwd {t_f:7.3f} bwd {t_b:7.3f}"
            if torch is not None:
                tidx = dev.as_tensor(idx)
                t_tf = dev.time_ms(lambda: torch.nn.functional.max_pool2d(x, 2, return_indices=True), reps)
                t_tb = dev.time_ms(lambda: torch.ops.aten.max_pool2d_with_indices_backward(
                    dy, x, [2, 2], [2, 2], [0, 0], [1, 1], False, tidx), reps)
                line += f" | torch fwd {t_tf:7.3f} bwd {t_tb:7.3f} | speedup fwd {t_tf / t_f:5.2f}x bwd {t_tb / t_b:5.2f}x"
            print(line, flush=True)


def time_host_overhead(dev, F, reps, budget):
    """Host time per call of small ops (the issue-14 target: <= 30 us), the GPU left to run
    asynchronously: the mean of ``reps`` back-to-back calls before the closing synchronisation
    (the queue never fills at these sizes), fastconv next to torch on the same tensors."""
    print("\n== host time per small op (us per call, no synchronisation inside the loop) ==")
    print("| op | fastconv us | torch us |\n|---|---|---|")
    n, c, h = (1, 2, 4) if dev.simulated else (8, 64, 14)
    x, w, xs = dev.randn((n, c, h, h), 6), dev.randn((c, c, 3, 3), 7), dev.randn((n, c, 8, 8), 8)
    torch = None if dev.simulated else dev.torch
    ops = [
        (f"max_pool2d 2x2 ({n},{c},{h},{h})", lambda: F.max_pool2d(x, 2), "max_pool"),
        (f"relu ({n},{c},{h},{h})", lambda: F.relu(x), "relu"),
        (f"conv2d 3x3 direct ({n},{c},8,8)", lambda: F.conv2d(xs, w, padding=1, algorithm="direct"), "conv"),
    ]
    tf = {"max_pool": lambda: torch.nn.functional.max_pool2d(x, 2), "relu": lambda: torch.relu(x),
          "conv": lambda: torch.nn.functional.conv2d(xs, w, padding=1)} if torch is not None else {}
    for name, fn, key in ops:
        if not budget.allows(3, f"host overhead {name}"):
            return
        row = [name]
        for f in (fn, tf.get(key)):
            if f is None:
                row.append("-")
                continue
            f()
            sync = dev.cuda.synchronize if dev.simulated else torch.cuda.synchronize
            sync()
            t = time.perf_counter()
            for _ in range(reps):
                f()
            host = (time.perf_counter() - t) / reps
            sync()
            row.append(f"{host * 1e6:.1f}")
        print("| " + " | ".join(row) + " |", flush=True)


def print_env(fastconv, dev, have_cpu):
    import numba
    print("== environment ==")
    print(f"python {sys.version.split()[0]}, numba {numba.__version__}", end="")
    try:
        import numba_cuda
        print(f", numba-cuda {numba_cuda.__version__}", end="")
    except ImportError:
        pass
    print()
    from fastconv import cuda as fc_cuda
    print(f"fastconv CUDA device: {fc_cuda.device_info()}")
    if not dev.simulated:
        t = dev.torch
        print(f"torch {t.__version__}, CUDA {t.version.cuda}, cuDNN {t.backends.cudnn.version()}, "
              f"GPU {t.cuda.get_device_name()}")
    if have_cpu:
        print(f"fastconv capabilities: {fastconv.capabilities()}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--simulate-tiny", action="store_true",
                    help="run every piece on Numba's CUDA simulator with tiny VGG-like shapes")
    ap.add_argument("--batches", default="8,32")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--budget-s", type=float, default=420.0, help="overall time budget (seconds)")
    ap.add_argument("--layers", type=int, default=13, help="time only the first N VGG-16 layers")
    ap.add_argument("--skip-correctness", action="store_true")
    args = ap.parse_args(argv)
    budget = Budget(args.budget_s)
    if args.simulate_tiny:
        os.environ["NUMBA_ENABLE_CUDASIM"] = "1"
    fastconv, have_cpu = import_fastconv()
    import fastconv.functional as F
    VGG16, VGG16_POOLS = vgg16_layers()
    if args.simulate_tiny:
        dev = SimDevice()
        layers = [(max(3, c // 64), max(2, k // 64), 6) for c, k, _ in VGG16[:args.layers]][:3]
        pools = [(2, 8)]
        batches, reps, corr_layers, corr_batch = [1], 1, layers[:2], 1
    else:
        import torch
        if not torch.cuda.is_available():
            print("no CUDA GPU visible to torch: nothing to measure (use --simulate-tiny to exercise the script)")
            return 2
        dev = TorchDevice()
        layers = VGG16[:args.layers]
        pools = VGG16_POOLS
        batches, reps = [int(b) for b in args.batches.split(",")], args.reps
        # batch 8: conv4's direct GEMMs take the 128x128 tile, conv0's and conv10's the 64x128 one
        corr_layers, corr_batch = [VGG16[0], VGG16[4], VGG16[10]], 8
    print_env(fastconv, dev, have_cpu)
    failures = 0
    if not args.skip_correctness:
        failures = correctness(dev, F, corr_layers, corr_batch, budget)
    time_host_overhead(dev, F, 5 if dev.simulated else 200, budget)
    time_convs(dev, F, layers, batches, reps, budget)
    time_pools(dev, F, pools, batches, reps, budget)
    print(f"\ncorrectness failures: {failures}; time left in budget {budget.left():.0f}s")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
