"""The CUDA backend against the float64 reference, through fastconv.functional.

Runs on Numba's CUDA simulator when there is no GPU (tests/conftest.py sets
NUMBA_ENABLE_CUDASIM), on the GPU otherwise. Shapes are tiny because the simulator runs every
CUDA thread as a Python thread; they still cross tile edges (M, N, K not multiples of the tile)
and cover stride / padding / dilation / groups / 'same' with even kernels.
"""
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

numba = pytest.importorskip("numba")
pytest.importorskip("numba.cuda")
from numba import cuda  # noqa: E402

import fastconv  # noqa: E402
import fastconv.functional as F  # noqa: E402
from fastconv import reference as R  # noqa: E402
from conftest import hardware, require_cuda_backend  # noqa: E402
from cuda_toolchain import ptx_check, require_nvvm  # noqa: E402

require_cuda_backend(cuda)

REPO = Path(__file__).resolve().parents[1]
SIM = os.environ.get("NUMBA_ENABLE_CUDASIM") == "1"
# Winograd bounds (relative to max |y|), direct ~ fp32 accumulation
TOL = {"direct": 2e-6, "winograd_f2": 1e-5, "winograd_f4": 5e-5, "winograd": 5e-5}


pytestmark = pytest.mark.usefixtures("fast_simulator")


def dev(a):
    return cuda.to_device(np.ascontiguousarray(a))


def host(d):
    return d.copy_to_host()


def rel_err(got, ref):
    return float(np.abs(np.asarray(got, np.float64) - ref).max() / max(np.abs(ref).max(), 1e-30))


def rnd(rng, *shape, dtype=np.float32):
    return rng.standard_normal(shape).astype(dtype)


# ---------------------------------------------------------------------------- convolution

CONV_CASES = [
    # x shape, w shape, kwargs
    ((2, 3, 7, 6), (10, 3, 3, 3), dict(padding=1)),                      # M > tile, ragged N
    ((1, 2, 9, 8), (4, 2, 3, 5), dict(stride=2, padding=(1, 2))),         # rectangular, strided
    ((1, 4, 8, 9), (6, 2, 3, 3), dict(dilation=2, groups=2, padding=2)),  # dilation + groups
    ((2, 2, 6, 7), (3, 2, 4, 4), dict(padding="same")),                   # even kernel: extra_pad
    ((1, 3, 5, 5), (4, 3, 1, 1), dict(stride=(2, 1))),                    # 1x1, anisotropic stride
    ((1, 4, 7, 6), (4, 1, 3, 3), dict(stride=2, padding=1, groups=4)),    # depthwise
]


@pytest.mark.parametrize("xs,ws,kw", CONV_CASES)
def test_conv2d_direct_forward_and_grads(xs, ws, kw):
    rng = np.random.default_rng(sum(xs) + sum(ws))
    x, w, b = rnd(rng, *xs), rnd(rng, *ws), rnd(rng, ws[0])
    y = host(F.conv2d(dev(x), dev(w), dev(b), algorithm="direct", **kw))
    ref_y = R.conv2d(x, w, b, **_ref_kw(kw, ws))
    if kw.get("padding") == "same":
        ref_y = _ref_same(x, w, b, kw)
    assert y.shape == ref_y.shape
    assert rel_err(y, ref_y) < TOL["direct"]
    dy = rnd(rng, *y.shape)
    dx = host(F.conv2d_input(xs, dev(w), dev(dy), algorithm="direct", **kw))
    dw = host(F.conv2d_weight(dev(x), ws, dev(dy), **kw))
    cpu_dx = F.conv2d_input(xs, w, dy, **kw)    # the CPU path is itself tested against reference
    cpu_dw = F.conv2d_weight(x, ws, dy, **kw)
    assert rel_err(dx, cpu_dx.astype(np.float64)) < 1e-5
    assert rel_err(dw, cpu_dw.astype(np.float64)) < 1e-5


def _ref_kw(kw, ws):
    kw = dict(kw)
    if kw.get("padding") == "same":
        kw["padding"] = 0
    return kw


def _ref_same(x, w, b, kw):
    # 'same' with an even kernel: PyTorch pads the extra row/column at the bottom/right
    d = kw.get("dilation", 1)
    th, tw = d * (w.shape[2] - 1), d * (w.shape[3] - 1)
    xp = np.pad(x, ((0, 0), (0, 0), (th // 2, th - th // 2), (tw // 2, tw - tw // 2)))
    return R.conv2d(xp, w, b, dilation=d)


def test_conv2d_relu_runs_the_conv_then_the_relu():
    """The backend op nn.Sequential's inference takes for Conv2d -> ReLU (fused on the CPU)."""
    rng = np.random.default_rng(11)
    x, w, b = rnd(rng, 2, 3, 7, 6), rnd(rng, 4, 3, 3, 3), rnd(rng, 4)
    y = host(F._conv2d_relu(dev(x), dev(w), dev(b), padding=1))
    assert rel_err(y, np.maximum(R.conv2d(x, w, b, padding=1), 0)) < TOL["direct"]


def test_conv2d_unbatched_float64_and_out():
    rng = np.random.default_rng(1)
    x, w = rnd(rng, 2, 6, 5, dtype=np.float64), rnd(rng, 3, 2, 3, 3, dtype=np.float64)
    y = F.conv2d(dev(x), dev(w), padding=1)
    assert y.shape == (3, 6, 5) and y.dtype == np.float64
    assert rel_err(host(y), R.conv2d(x[None], w, padding=1)[0]) < 1e-12
    out = cuda.device_array((1, 3, 6, 5), np.float64)
    res = F.conv2d(dev(x[None]), dev(w), padding=1, out=out)
    assert res is out and rel_err(host(out), R.conv2d(x[None], w, padding=1)) < 1e-12
    with pytest.raises(ValueError, match="out"):
        F.conv2d(dev(x[None]), dev(w), padding=1, out=cuda.device_array((1, 3, 5, 5), np.float64))
    out3 = cuda.device_array((3, 6, 5), np.float64)              # unbatched input with out=
    F.conv2d(dev(x), dev(w), padding=1, out=out3)
    assert rel_err(host(out3), R.conv2d(x[None], w, padding=1)[0]) < 1e-12


WINO_CASES = [
    ((2, 3, 7, 6), (5, 3, 3, 3), dict(padding=1)),
    ((1, 4, 9, 10), (6, 2, 3, 3), dict(padding=0, groups=2)),
    ((1, 2, 5, 11), (3, 2, 3, 3), dict(padding=(2, 1))),
]


@pytest.mark.parametrize("algo", ["winograd_f2", "winograd_f4"])
@pytest.mark.parametrize("xs,ws,kw", WINO_CASES)
def test_conv2d_winograd(algo, xs, ws, kw):
    rng = np.random.default_rng(sum(xs) * 7 + len(algo))
    x, w, b = rnd(rng, *xs), rnd(rng, *ws), rnd(rng, ws[0])
    y = host(F.conv2d(dev(x), dev(w), dev(b), algorithm=algo, **kw))
    assert rel_err(y, R.conv2d(x, w, b, **kw)) < TOL[algo]
    dy = rnd(rng, *y.shape)
    dx = host(F.conv2d_input(xs, dev(w), dev(dy), algorithm=algo, **kw))
    assert rel_err(dx, R.conv2d_input(xs, w, dy, **kw)) < TOL[algo]


def test_conv2d_weight_split_reduction(monkeypatch):
    # force the two-stage (workspace + ordered sum) weight gradient on a small problem
    from fastconv.cuda import conv_direct
    monkeypatch.setattr(conv_direct, "_weight_splits", lambda *a: 3)
    rng = np.random.default_rng(5)
    x, dy = rnd(rng, 2, 2, 8, 8), rnd(rng, 2, 3, 8, 8)
    dw = host(F.conv2d_weight(dev(x), (3, 2, 3, 3), dev(dy), padding=1))
    assert rel_err(dw, R.conv2d_weight(x, (3, 2, 3, 3), dy, padding=1)) < 1e-5


def test_algorithm_choice_and_errors():
    from fastconv.cuda import choose_algorithm
    from fastconv._geometry import conv_geometry
    big = conv_geometry((1, 64, 16, 16), (64, 64, 3, 3), 1, 1, 1, 1)
    assert choose_algorithm("auto", (1, 64, 16, 16), (64, 64, 3, 3), big) == "winograd_f4"
    assert choose_algorithm("winograd", (1, 64, 16, 16), (64, 64, 3, 3), big) == "winograd_f4"
    small = conv_geometry((1, 3, 16, 16), (8, 3, 3, 3), 1, 1, 1, 1)
    assert choose_algorithm("auto", (1, 3, 16, 16), (8, 3, 3, 3), small) == "direct"
    strided = conv_geometry((1, 64, 16, 16), (64, 64, 3, 3), 2, 1, 1, 1)
    assert choose_algorithm("auto", (1, 64, 16, 16), (64, 64, 3, 3), strided) == "direct"
    x, w5 = dev(np.zeros((1, 1, 8, 8), np.float32)), dev(np.zeros((1, 1, 5, 5), np.float32))
    with pytest.raises(ValueError, match="algorithm"):
        F.conv2d(x, w5, algorithm="winograd")
    with pytest.raises(ValueError, match="algorithm"):
        F.conv2d(x, dev(np.zeros((1, 1, 3, 3), np.float32)), algorithm="winograd_f6")
    with pytest.raises(ValueError, match="algorithm"):
        F.conv2d(x, dev(np.zeros((1, 1, 3, 3), np.float32)), stride=2, algorithm="winograd_f2")
    with pytest.raises(TypeError, match="mix"):
        F.conv2d(x, np.zeros((1, 1, 3, 3), np.float32))


# ---------------------------------------------------------------------------- pooling

def test_max_pool_semantics_and_backward():
    rng = np.random.default_rng(7)
    x = rng.integers(-3, 3, (2, 2, 7, 9)).astype(np.float32)   # many ties: first max must win
    x[0, 0, 1, 1] = np.nan
    x[1, 1, :3, :3] = -np.inf
    for kw in (dict(kernel_size=3, stride=2, padding=1, ceil_mode=True),
               dict(kernel_size=(2, 3), stride=(1, 2), dilation=2)):
        y, idx = F.max_pool2d(dev(x), return_indices=True, **kw)
        ry, ridx = R.max_pool2d(x, **{k: v for k, v in kw.items()})
        np.testing.assert_array_equal(host(idx), ridx)
        np.testing.assert_array_equal(host(y), ry.astype(np.float32))
        assert host(idx).dtype == np.int64
        dy = rnd(rng, *ry.shape)
        dx = host(F.max_pool2d_backward(dev(dy), idx, x.shape))
        np.testing.assert_allclose(dx, R.max_pool2d_backward(dy, ridx, x.shape), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("kw", [
    dict(kernel_size=3, stride=2, padding=1, ceil_mode=True, count_include_pad=True),
    dict(kernel_size=3, stride=2, padding=1, ceil_mode=True, count_include_pad=False),
    dict(kernel_size=(2, 3), stride=(2, 1), padding=(1, 0), divisor_override=5),
])
def test_avg_pool(kw):
    rng = np.random.default_rng(8)
    x = rnd(rng, 2, 2, 7, 8)
    y = host(F.avg_pool2d(dev(x), **kw))
    ry = R.avg_pool2d(x, **kw)
    assert rel_err(y, ry) < 1e-6
    dy = rnd(rng, *ry.shape)
    dx = host(F.avg_pool2d_backward(dev(dy), x.shape, **kw))
    assert rel_err(dx, R.avg_pool2d_backward(dy, x.shape, **kw)) < 1e-6


# ---------------------------------------------------------------------------- dense / element-wise

def test_elementwise_and_strided_input():
    rng = np.random.default_rng(9)
    x = rnd(rng, 3, 4, 5) * 30
    x[0, 0, :3] = [np.nan, np.inf, -np.inf]
    d = dev(x)
    for name in ("relu", "sigmoid", "tanh"):
        got = host(getattr(F, name)(d))
        np.testing.assert_allclose(got, getattr(R, name)(x), rtol=2e-6, atol=1e-7, err_msg=name)
        dy = rnd(rng, *x.shape)
        gb = host(getattr(F, name + "_backward")(dev(dy), dev(got)))
        np.testing.assert_allclose(gb, getattr(F, name + "_backward")(dy, got), rtol=1e-6, atol=1e-7)
    view = d[:, 1:, ::2]                                    # non-contiguous device view
    np.testing.assert_allclose(host(F.relu(view)), R.relu(x[:, 1:, ::2]), rtol=0, atol=0)


def test_epilogue_matches_reference():
    """The fused conv epilogue: scale, bias, residual before / after each activation, in place."""
    rng = np.random.default_rng(12)
    for shape in ((2, 3, 4, 5), (3, 7)):
        x = rnd(rng, *shape) * 4
        x.flat[1] = np.nan
        scale, bias, residual = rnd(rng, shape[1]), rnd(rng, shape[1]), rnd(rng, *shape)
        for activation in (None, "relu", "relu6", "hardtanh", "silu"):
            for after in (False, True):
                kw = dict(activation=activation, residual_after_activation=after, min_val=-0.5, max_val=2.0)
                got = host(F.epilogue(dev(x), dev(scale), dev(bias), dev(residual), **kw))
                np.testing.assert_allclose(got, R.epilogue(x, scale, bias, residual, **kw), rtol=2e-6, atol=1e-6,
                                           err_msg=f"{shape} {activation} {after}")
        d = dev(x)
        F.epilogue(d, None, dev(bias), None, activation="relu", out=d)
        np.testing.assert_allclose(host(d), R.epilogue(x, None, bias, None, "relu"), rtol=2e-6, atol=1e-6)


def test_linear_forward_backward():
    rng = np.random.default_rng(10)
    x, w, b = rnd(rng, 9, 20), rnd(rng, 17, 20), rnd(rng, 17)
    y = host(F.linear(dev(x), dev(w), dev(b)))
    assert rel_err(y, R.linear(x, w, b)) < 2e-6
    x3 = rnd(rng, 2, 3, 20)
    assert rel_err(host(F.linear(dev(x3), dev(w))), R.linear(x3, w)) < 2e-6
    dy = rnd(rng, 9, 17)
    gx, gw, gb = F.linear_backward(dev(x), dev(w), dev(dy))
    x64, w64, dy64 = (a.astype(np.float64) for a in (x, w, dy))
    assert rel_err(host(gx), dy64 @ w64) < 2e-6
    assert rel_err(host(gw), dy64.T @ x64) < 2e-6
    assert rel_err(host(gb), dy64.sum(0)) < 2e-6
    assert F.linear_backward(dev(x), dev(w), dev(dy), needs_bias=False)[2] is None


def test_softmax_and_cross_entropy():
    rng = np.random.default_rng(11)
    x4 = rnd(rng, 2, 3, 4, 2)
    for dim in (1, -1, 0):
        assert rel_err(host(F.softmax(dev(x4), dim)), R.softmax(x4, dim)) < 1e-6
        assert rel_err(host(F.log_softmax(dev(x4), dim)), R.log_softmax(x4, dim)) < 1e-6
    logits = rnd(rng, 7, 5) * 4
    t = rng.integers(0, 5, 7)
    for reduction in ("mean", "sum", "none"):
        for ls in (0.0, 0.1):
            got = host(F.cross_entropy(dev(logits), dev(t), reduction=reduction, label_smoothing=ls))
            cpu = F.cross_entropy(logits, t, reduction=reduction, label_smoothing=ls)
            np.testing.assert_allclose(got, cpu, rtol=2e-6, atol=1e-6)
            g = host(F.cross_entropy_backward(dev(logits), dev(t), reduction=reduction, label_smoothing=ls))
            np.testing.assert_allclose(g, F.cross_entropy_backward(logits, t, reduction=reduction, label_smoothing=ls),
                                       rtol=2e-6, atol=1e-7)
    assert F.cross_entropy(dev(logits), dev(t)).shape == ()


# ---------------------------------------------------------------------------- a LeNet-shaped step

def _lenet_step(x, t, w1, b1, w2, b2):
    """conv 5x5 1->6, relu, max-pool 2, flatten, linear -> 10, cross-entropy; all gradients."""
    h = F.conv2d(x, w1, b1)
    a = F.relu(h)
    p, idx = F.max_pool2d(a, 2, return_indices=True)
    n = p.shape[0]
    flat = p.reshape((n, int(np.prod(p.shape[1:]))))
    logits = F.linear(flat, w2, b2)
    loss = F.cross_entropy(logits, t)
    dlogits = F.cross_entropy_backward(logits, t)
    dflat, dw2, db2 = F.linear_backward(flat, w2, dlogits)
    dp = dflat.reshape(p.shape)
    da = F.max_pool2d_backward(dp, idx, a.shape)
    dh = F.relu_backward(da, a)
    dw1 = F.conv2d_weight(x, w1.shape, dh)
    dx = F.conv2d_input(x.shape, w1, dh)
    db1 = dh.sum(axis=(0, 2, 3)) if isinstance(dh, np.ndarray) else None
    return loss, dx, dw1, db1, dw2, db2


def test_lenet_training_step_matches_cpu():
    rng = np.random.default_rng(12)
    x = rnd(rng, 2, 1, 12, 12)
    t = np.array([3, 7])
    w1, b1 = rnd(rng, 6, 1, 5, 5) * 0.3, rnd(rng, 6) * 0.1
    w2, b2 = rnd(rng, 10, 96) * 0.1, rnd(rng, 10) * 0.1
    cpu = _lenet_step(x, t, w1, b1, w2, b2)
    gpu = _lenet_step(*(dev(a) for a in (x, t, w1, b1, w2, b2)))
    np.testing.assert_allclose(host(gpu[0]), cpu[0], rtol=1e-5)
    for g_, c_, name in zip(gpu[1:], cpu[1:], ("dx", "dw1", "db1", "dw2", "db2")):
        if g_ is None:
            continue
        assert rel_err(host(g_), np.asarray(c_, np.float64)) < 1e-5, name


def test_capabilities_report_cuda():
    info = fastconv.capabilities()["cuda"]
    assert info is not None
    if SIM:
        assert info["simulator"] is True and "simulator" in info["name"]
    else:
        assert info["simulator"] is False and info["compute_capability"] >= (3, 5)


# ---------------------------------------------------------------------------- real compilation

# the kernels with the most machinery (closures over loaders, constant matrices, shared memory,
# atomics, int64 outputs); the full list (both dtypes) runs with -m slow
QUICK_PTX = "igemm_conv_forward_large|igemm_conv_input_narrow|winograd_f4|max_pool|cross_entropy_sum"


@pytest.mark.parametrize("only,dtypes", [
    (QUICK_PTX, "float32"),
    pytest.param("", "float32,float64", marks=pytest.mark.slow),
])
def test_kernels_compile_to_ptx_for_sm90(only, dtypes):
    """Compile kernels with NVVM for sm_90 (no GPU needed): catches what the simulator, which
    runs the Python source, cannot: typing errors, constructs the CUDA target lacks."""
    require_nvvm()
    r = ptx_check("--dtypes", dtypes, *(["--only", only] if only else []))
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "all kernels compiled" in r.stdout


# ---------------------------------------------------------------------------- bench pieces

@pytest.mark.skipif(not SIM, reason=hardware("the GPU runs the bench itself (bench/gpu_check.sh)"))
def test_bench_cuda_pieces_run_on_the_simulator(capsys):
    """bench/bench_cuda.py's correctness and timing functions, at tiny sizes (the full
    ``--simulate-tiny`` run takes ~40 s here); gpu_check.sh must at least parse."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("bench_cuda", REPO / "bench" / "bench_cuda.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    dev = bench.SimDevice()
    assert bench.correctness(dev, F, [(3, 2, 5)], 1, bench.Budget(120)) == 0
    bench.time_pools(dev, F, [(2, 4)], [1], 1, bench.Budget(120))
    out = capsys.readouterr().out
    assert out.count("PASS") == 4 and "FAIL" not in out and "fastconv fwd" in out
    assert subprocess.run(["bash", "-n", str(REPO / "bench" / "gpu_check.sh")]).returncode == 0
