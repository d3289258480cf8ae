#!/usr/bin/env python3
"""Compile every fastconv CUDA kernel to PTX for a target GPU (default sm_90) with NVVM, then,
where ``ptxas`` is on PATH, assemble it with ``ptxas -v`` and print registers, shared memory,
stack and spills per kernel. Needs no GPU: numba.cuda.compile_ptx only needs libNVVM and
libNVRTC (Numba asks NVRTC which architectures exist).

    python tools/ptx_check.py                  # all kernels, float32 and float64
    python tools/ptx_check.py --dtypes float32 --cc 9.0
    python tools/ptx_check.py --probe          # exit 0: compiles; 3: NVVM/NVRTC absent; 1: broken
    python tools/ptx_check.py --only "winograd|pool"
    python tools/ptx_check.py --only igemm --limits   # exit 1 if a GEMM kernel spills or uses
                                                      # more registers than its launch bounds allow

NVRTC missing (DynamicLibNotFoundError: libnvrtc.so.13): ``pip install nvidia-cuda-nvrtc``
into the same environment, or point FASTCONV_NVRTC at a libnvrtc.so.* to preload.
Always run without the simulator (this script sets NUMBA_ENABLE_CUDASIM=0 for itself).
"""
from __future__ import annotations

import argparse
import ctypes
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

os.environ["NUMBA_ENABLE_CUDASIM"] = "0"
# an installed fastconv (with its compiled _C) wins; the checkout is the fallback for dev builds
sys.path.append(str(Path(__file__).resolve().parents[1]))

if os.environ.get("FASTCONV_NVRTC"):
    ctypes.CDLL(os.environ["FASTCONV_NVRTC"], mode=ctypes.RTLD_GLOBAL)

import numpy as np  # noqa: E402

import fastconv.cuda  # noqa: E402,F401  (its numpy-compatibility shim must precede any compile)


def _ty(v):
    import numba
    return numba.typeof(v)


def kernels(dtype):
    """(name, python function, argument types[, compile options]) for every kernel of the
    backend at this dtype."""
    from fastconv.cuda import _igemm, conv_direct, conv_winograd, dense, elementwise, pool
    dt = np.dtype(dtype)
    a = {n: np.zeros((1,) * n, dt) for n in (1, 2, 3, 4)}
    i64 = np.zeros((1, 1, 1, 1), np.int64)
    scalar = dt.type(0)
    out = []

    def gemm(name, loaders, cfg, sig):
        # the GEMM kernels carry launch bounds (at most 128 registers at 256 threads)
        out.append((name, _igemm.kernel_source(*loaders, cfg, dt.str), sig, _igemm.jit_options(cfg)))

    largest = next(iter(_igemm.configs_for(dt.itemsize).values()))
    for kind, loaders in conv_direct._loaders(dt.str, 3, 3).items():
        c_nd = 3 if kind == "weight" else 4
        for cfg_name, cfg in _igemm.configs_for(dt.itemsize).items():
            gemm(f"igemm_conv_{kind}_{cfg_name}", loaders, cfg,
                 (_ty(a[4]), _ty(a[4]), _ty(a[c_nd]), _ty(a[1]), _ty((1,) * 22)))
    for kind, loaders in dense._loaders().items():
        gemm(f"igemm_dense_{kind}", loaders, largest, (_ty(a[2]), _ty(a[2]), _ty(a[2]), _ty(a[1]), _ty((1,) * 5)))
    out.append(("conv_sum_splits", conv_direct._sum_splits.py_func, (_ty(a[3]), _ty(a[2]))))
    for m in (2, 4):
        wt, it, ot, loaders = conv_winograd._kernels(m, dt.str)
        out.append((f"winograd_f{m}_weight_transform", wt.py_func, (_ty(a[4]), _ty(a[3]))))
        out.append((f"winograd_f{m}_input_transform", it.py_func, (_ty(a[4]), _ty(a[3]), _ty((1,) * 4))))
        out.append((f"winograd_f{m}_output_transform", ot.py_func,
                    (_ty(a[3]), _ty(a[1]), _ty(a[4]), _ty((1,) * 2))))
        gemm(f"igemm_winograd_f{m}", loaders, largest, (_ty(a[3]), _ty(a[3]), _ty(a[3]), _ty(a[1]), _ty((1,) * 8)))
    out.append(("winograd_flip_transpose", conv_winograd._flip_transpose.py_func, (_ty(a[4]), _ty(a[4]), _ty(1))))
    q = _ty((1,) * 12)
    out.append(("max_pool_fwd", pool._max_fwd.py_func, (_ty(a[4]), _ty(a[4]), _ty(i64), q)))
    out.append(("max_pool_bwd", pool._max_bwd.py_func, (_ty(a[4]), _ty(i64), _ty(a[4]))))
    out.append(("avg_pool_fwd", pool._avg_fwd.py_func, (_ty(a[4]), _ty(a[4]), q, _ty(True), _ty(1), _ty(scalar))))
    out.append(("avg_pool_bwd", pool._avg_bwd.py_func, (_ty(a[4]), _ty(a[4]), q, _ty(True), _ty(1), _ty(scalar))))
    out.append(("fill", elementwise._fill.py_func, (_ty(a[1]), _ty(scalar))))
    for name in ("relu", "sigmoid", "tanh"):
        out.append((name, elementwise.KERNELS[name].py_func, (_ty(a[1]), _ty(a[1]))))
        out.append((name + "_backward", elementwise.KERNELS[name + "_backward"].py_func,
                    (_ty(a[1]),) * 3))
    out.append(("epilogue", elementwise._epilogue.py_func,
                (_ty(a[1]),) * 5 + (_ty(1),) * 4 + (_ty(scalar), _ty(scalar))))
    for nd, k in elementwise._COPY.items():
        strided = np.zeros((2,) * nd, dt)[(slice(None, None, 2),) * nd]
        out.append((f"copy_strided_{nd}d", k.py_func, (_ty(strided), _ty(a[nd]))))
    out.append(("linear_col_sum", dense._col_sum.py_func, (_ty(a[2]), _ty(a[1]))))
    out.append(("softmax_lines", dense._softmax_lines.py_func, (_ty(a[3]), _ty(a[3]), _ty(1), _ty(True))))
    t64 = np.zeros(1, np.int64)
    out.append(("cross_entropy_rows", dense._ce_rows.py_func, (_ty(a[2]), _ty(t64), _ty(0.0), _ty(a[1]))))
    out.append(("cross_entropy_sum", dense._sum_block.py_func, (_ty(a[1]), _ty(a[1]), _ty(0.0))))
    out.append(("cross_entropy_grad", dense._ce_grad.py_func,
                (_ty(a[2]), _ty(t64), _ty(0.0), _ty(0.0), _ty(a[2]))))
    return out


def ptxas_report(ptx, cc, tmp):
    """(registers, static smem bytes, stack bytes, spill stores, spill loads) from ptxas -v."""
    src = Path(tmp) / "k.ptx"
    src.write_text(ptx)
    r = subprocess.run(["ptxas", "-v", f"-arch=sm_{cc[0]}{cc[1]}", str(src), "-o", str(Path(tmp) / "k.cubin")],
                       capture_output=True, text=True)
    if r.returncode:
        raise RuntimeError(r.stderr.strip())
    txt = r.stderr
    reg = re.search(r"Used (\d+) registers", txt)
    smem = re.search(r"(\d+) bytes smem", txt)
    stack = re.search(r"(\d+) bytes stack frame", txt)
    st = re.search(r"(\d+) bytes spill stores", txt)
    ld = re.search(r"(\d+) bytes spill loads", txt)
    g = lambda m: int(m.group(1)) if m else 0  # noqa: E731
    return g(reg), g(smem), g(stack), g(st), g(ld)


PROBE_WORKS, PROBE_BROKEN, PROBE_TOOLCHAIN_ABSENT = 0, 1, 3


def _toolchain_absent(error):
    """True when error (or one it was raised from) says libNVVM / libNVRTC / numba-cuda is not
    installed: the only reason a compile check may be skipped. Anything else is a regression."""
    absent = (ImportError,)  # covers numba's NvvmSupportError / NvrtcSupportError
    try:
        from cuda.pathfinder import DynamicLibNotFoundError
        absent += (DynamicLibNotFoundError,)
    except ImportError:
        pass
    while error is not None:
        if isinstance(error, absent):
            return True
        error = error.__cause__ or error.__context__
    return False


def probe():
    """Compile a one-line kernel. Exit status PROBE_WORKS, PROBE_TOOLCHAIN_ABSENT (the test
    skips, printing the reason) or PROBE_BROKEN (the test fails)."""
    try:
        import numba
        from numba import cuda

        def k(a):
            i = cuda.grid(1)
            if i < a.size:
                a[i] += 1
        cuda.compile_ptx(k, (numba.float32[:],), cc=(9, 0))
    except Exception as e:  # the reason in one line, for the test's skip or failure message
        absent = _toolchain_absent(e)
        print(f"{'toolchain absent' if absent else 'compilation broken'}: "
              f"{type(e).__name__}: {(str(e).splitlines() or [''])[0][:200]}")
        return PROBE_TOOLCHAIN_ABSENT if absent else PROBE_BROKEN
    print("compile_ptx works")
    return PROBE_WORKS


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cc", default="9.0", help="compute capability, e.g. 9.0 (H100/H200), 8.0")
    ap.add_argument("--dtypes", default="float32,float64")
    ap.add_argument("--probe", action="store_true")
    ap.add_argument("--keep", help="directory to write the .ptx files to")
    ap.add_argument("--only", help="regular expression: compile only the kernels whose name matches")
    ap.add_argument("--limits", action="store_true",
                    help="fail when a kernel with launch bounds (threads, min blocks) uses more than "
                         "65536 / (threads * min blocks) registers, or any kernel spills (needs ptxas)")
    args = ap.parse_args(argv)
    if args.probe:
        return probe()
    if probe():
        print("cannot compile here (see above); nothing checked")
        return 2
    from numba import cuda
    cc = tuple(int(v) for v in args.cc.split("."))
    have_ptxas = shutil.which("ptxas") is not None
    if args.limits and not have_ptxas:
        print("--limits needs ptxas on PATH; nothing checked")
        return PROBE_TOOLCHAIN_ABSENT
    failures = 0
    print(f"{'kernel':40s} {'dtype':8s} {'regs':>5s} {'smem':>6s} {'stack':>6s} {'spill st/ld':>12s}")
    with tempfile.TemporaryDirectory() as tmp:
        for dtype in args.dtypes.split(","):
            for name, fn, sig, *opts in kernels(dtype):
                if args.only and not re.search(args.only, name):
                    continue
                try:
                    ptx, _ = cuda.compile_ptx(fn, sig, cc=cc, **(opts[0] if opts else {}))
                except Exception as e:
                    failures += 1
                    print(f"{name:40s} {dtype:8s} COMPILE FAILED: {type(e).__name__}: {str(e)[:400]}")
                    continue
                if args.keep:
                    Path(args.keep).mkdir(parents=True, exist_ok=True)
                    (Path(args.keep) / f"{name}_{dtype}.ptx").write_text(ptx)
                if not have_ptxas:
                    print(f"{name:40s} {dtype:8s} PTX ok ({len(ptx)} chars; no ptxas for resource usage)")
                    continue
                try:
                    regs, smem, stack, st, ld = ptxas_report(ptx, cc, tmp)
                except RuntimeError as e:
                    failures += 1
                    print(f"{name:40s} {dtype:8s} PTXAS FAILED: {e}")
                    continue
                over = ""
                if args.limits:
                    bounds = (opts[0] if opts else {}).get("launch_bounds")
                    cap = 65536 // (bounds[0] * bounds[1]) if bounds else 255
                    if regs > cap or st or ld:
                        failures += 1
                        over = f"  OVER LIMIT (registers <= {cap}, no spills)"
                print(f"{name:40s} {dtype:8s} {regs:5d} {smem:6d} {stack:6d} {st:5d}/{ld:<6d}{over}")
    print(("all kernels compiled" + (" within limits" if args.limits else "")) if not failures
          else f"{failures} kernel(s) failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
