"""Hypothesis property tests of fastconv.functional: random shapes, strides, paddings, dilations,
groups, dtypes, algorithms and memory layouts; each case matches the float64 reference or is
refused with ValueError / TypeError (see tests/fuzzing.py). Huge shapes (past 2^31 elements,
as zero-stride views that take no memory) are refused before anything is allocated."""
import numpy as np
import pytest
from hypothesis import strategies as st

import fastconv.functional as F
from fastconv import reference as R
from conftest import rel_err
from fuzzing import DEPTHS, REJECTED, draw_array, draw_dtype, expect_rejected, run_property

ALGORITHMS = ["auto", "direct", "winograd", "winograd_f2", "winograd_f4", "winograd_f6"]
TOL32 = {"direct": 1e-5, "winograd_f2": 1e-5, "winograd_f4": 5e-5, "winograd_f6": 2e-4}


def conv_tolerance(dtype, algorithm, reduction):
    if dtype == np.float64:
        return 1e-11
    direct = 2e-6 * max(1.0, np.sqrt(reduction))
    return direct if algorithm == "direct" else max(direct, TOL32["winograd_f6"])


def draw_conv(data):
    """Arguments of a conv2d call, mostly valid; returns them with the rule they break, if any."""
    groups = data.draw(st.integers(1, 3), label="groups")
    n = data.draw(st.integers(0, 3), label="N")          # 0: an empty batch (valid, as in torch)
    cg, kg = data.draw(st.integers(1, 3), label="C/groups"), data.draw(st.integers(1, 3), label="K/groups")
    h, w = data.draw(st.integers(1, 9), label="H"), data.draw(st.integers(1, 9), label="W")
    r, s = data.draw(st.integers(1, 4), label="R"), data.draw(st.integers(1, 4), label="S")
    stride = (data.draw(st.integers(1, 3), label="stride h"), data.draw(st.integers(1, 3), label="stride w"))
    dilation = (data.draw(st.integers(1, 3), label="dil h"), data.draw(st.integers(1, 3), label="dil w"))
    padding = data.draw(st.one_of(st.tuples(st.integers(0, 3), st.integers(0, 3)),
                                  st.sampled_from(["same", "valid"])), label="padding")
    wrong_cg = data.draw(st.integers(0, 9), label="weight channel error?") == 0
    dtype = draw_dtype(data)
    w_dtype = dtype if data.draw(st.integers(0, 9), label="dtype mismatch?") else np.dtype(
        np.float64 if dtype == np.float32 else np.float32)
    x = draw_array(data, (n, cg * groups, h, w), dtype, "input")
    weight = draw_array(data, (kg * groups, cg + wrong_cg, r, s), w_dtype, "weight")
    bias = draw_array(data, (kg * groups,), dtype, "bias") if data.draw(st.booleans(), label="bias") else None
    algorithm = data.draw(st.sampled_from(ALGORITHMS), label="algorithm")

    if padding == "valid":
        pad = (0, 0)
    elif padding == "same":
        pad = (dilation[0] * (r - 1) // 2, dilation[1] * (s - 1) // 2)
    else:
        pad = padding
    extra = ((dilation[0] * (r - 1)) % 2, (dilation[1] * (s - 1)) % 2) if padding == "same" else (0, 0)
    broken = None
    if dtype.kind != "f" or dtype == np.float16 or w_dtype != dtype:
        broken = "dtype"
    elif wrong_cg:
        broken = "weight channels"
    elif padding == "same" and stride != (1, 1):
        broken = "'same' with stride"
    elif dilation[0] * (r - 1) + 1 > h + 2 * pad[0] + extra[0] or dilation[1] * (s - 1) + 1 > w + 2 * pad[1] + extra[1]:
        broken = "kernel larger than the padded input"
    elif algorithm.startswith("winograd") and not ((r, s) == (3, 3) and stride == (1, 1) and dilation == (1, 1)):
        broken = "winograd on a non-3x3/stride-1/dilation-1 shape"
    return dict(input=x, weight=weight, bias=bias, stride=stride, padding=padding, dilation=dilation,
                groups=groups, algorithm=algorithm), broken


def conv_reference(x, weight, bias, stride, padding, dilation, groups):
    if padding == "same":  # torch: the odd leftover of an even total goes bottom / right
        r, s = weight.shape[2:]
        total = (dilation[0] * (r - 1), dilation[1] * (s - 1))
        x = np.pad(np.asarray(x, np.float64), ((0, 0), (0, 0), (total[0] // 2, total[0] - total[0] // 2),
                                               (total[1] // 2, total[1] - total[1] // 2)))
        padding = 0
    elif padding == "valid":
        padding = 0
    return R.conv2d(x, weight, bias, stride, padding, dilation, groups)


@pytest.mark.parametrize("examples", DEPTHS)
def test_conv2d_matches_reference_or_refuses(examples):
    def prop(data):
        args, broken = draw_conv(data)
        call = lambda: F.conv2d(**args)  # noqa: E731
        if broken:
            return expect_rejected(call, broken)
        y = call()
        ref = conv_reference(args["input"], args["weight"], args["bias"], args["stride"], args["padding"],
                             args["dilation"], args["groups"])
        assert y.shape == ref.shape and y.dtype == args["input"].dtype
        red = args["weight"].shape[1] * args["weight"].shape[2] * args["weight"].shape[3]
        assert rel_err(y, ref) <= conv_tolerance(y.dtype, args["algorithm"], red), args["algorithm"]
    run_property(prop, examples)


@pytest.mark.parametrize("examples", DEPTHS)
def test_conv2d_gradients_match_reference_or_refuse(examples):
    def prop(data):
        args, broken = draw_conv(data)
        x, weight = args["input"], args["weight"]
        if broken or args["padding"] in ("same", "valid"):
            return  # the forward property covers refusals; the gradients take explicit padding
        geo = dict(stride=args["stride"], padding=args["padding"], dilation=args["dilation"],
                   groups=args["groups"])
        y = R.conv2d(x, weight, None, **geo)
        dy = draw_array(data, y.shape, x.dtype, "grad_output")
        tol = conv_tolerance(x.dtype, "direct", max(y.shape[1] * weight.shape[2] * weight.shape[3],
                                                    y.shape[0] * y.shape[2] * y.shape[3]))
        algorithm = data.draw(st.sampled_from(["auto", "direct"]), label="input grad algorithm")
        dx = F.conv2d_input(x.shape, weight, dy, algorithm=algorithm, **geo)
        assert dx.shape == x.shape and rel_err(dx, R.conv2d_input(x.shape, weight, dy, **geo)) <= tol * 10
        dw = F.conv2d_weight(x, weight.shape, dy, **geo)
        assert dw.shape == weight.shape and rel_err(dw, R.conv2d_weight(x, weight.shape, dy, **geo)) <= tol * 10
        expect_rejected(lambda: F.conv2d_input(x.shape, weight, dy[:, :, :, :-1] if dy.shape[3] > 1 else dy[:, :1, :, :0],
                                               **geo), "grad_output of the wrong shape")
    run_property(prop, examples)


def draw_pool(data):
    n, c = data.draw(st.integers(1, 2), label="N"), data.draw(st.integers(1, 3), label="C")
    h, w = data.draw(st.integers(1, 9), label="H"), data.draw(st.integers(1, 9), label="W")
    kernel = (data.draw(st.integers(1, 4), label="kh"), data.draw(st.integers(1, 4), label="kw"))
    stride = data.draw(st.one_of(st.none(), st.tuples(st.integers(1, 3), st.integers(1, 3))), label="stride")
    padding = (data.draw(st.integers(0, 2), label="ph"), data.draw(st.integers(0, 2), label="pw"))
    ceil_mode = data.draw(st.booleans(), label="ceil_mode")
    dtype = draw_dtype(data)
    x = draw_array(data, (n, c, h, w), dtype, "input")
    st_ = kernel if stride is None else stride
    return x, kernel, stride, st_, padding, ceil_mode


def pool_broken(x, kernel, padding, out_hw):
    if x.dtype not in (np.float32, np.float64):
        return "dtype"
    if padding[0] * 2 > kernel[0] or padding[1] * 2 > kernel[1]:
        return "padding more than half the kernel"
    if min(out_hw) < 1:
        return "kernel larger than the padded input"
    return None


@pytest.mark.parametrize("examples", DEPTHS)
def test_max_pool_matches_reference_or_refuses(examples):
    def prop(data):
        x, kernel, stride, st_, padding, ceil_mode = draw_pool(data)
        dilation = (data.draw(st.integers(1, 2), label="dil h"), data.draw(st.integers(1, 2), label="dil w"))
        out_hw = tuple(R.pool_output_size(x.shape[2 + i], kernel[i], st_[i], padding[i], dilation[i], ceil_mode)
                       for i in range(2))
        call = lambda: F.max_pool2d(x, kernel, stride, padding, dilation, ceil_mode, return_indices=True)  # noqa: E731
        broken = pool_broken(x, kernel, padding, out_hw)
        if broken:
            return expect_rejected(call, broken)
        y, idx = call()
        ref, ref_idx = R.max_pool2d(x, kernel, stride, padding, dilation, ceil_mode)
        np.testing.assert_array_equal(y, ref.astype(x.dtype))
        np.testing.assert_array_equal(idx, ref_idx)
        if np.isneginf(ref).any():
            return  # a window wholly in the padding has (as in torch) an index outside the plane
        dy = draw_array(data, y.shape, x.dtype, "grad_output")
        dx = F.max_pool2d_backward(dy, idx, x.shape)
        assert rel_err(dx, R.max_pool2d_backward(dy, ref_idx, x.shape)) <= 1e-6
    run_property(prop, examples)


@pytest.mark.parametrize("examples", DEPTHS)
def test_avg_pool_matches_reference_or_refuses(examples):
    def prop(data):
        x, kernel, stride, st_, padding, ceil_mode = draw_pool(data)
        include_pad = data.draw(st.booleans(), label="count_include_pad")
        divisor = data.draw(st.one_of(st.none(), st.integers(-1, 5)), label="divisor_override")
        out_hw = tuple(R.pool_output_size(x.shape[2 + i], kernel[i], st_[i], padding[i], 1, ceil_mode)
                       for i in range(2))
        kw = dict(count_include_pad=include_pad, divisor_override=divisor)
        call = lambda: F.avg_pool2d(x, kernel, stride, padding, ceil_mode, **kw)  # noqa: E731
        # torch refuses only a zero divisor_override; a negative one divides like any other
        broken = pool_broken(x, kernel, padding, out_hw) or (divisor == 0 and "divisor")
        if broken:
            return expect_rejected(call, broken)
        y = call()
        assert rel_err(y, R.avg_pool2d(x, kernel, stride, padding, ceil_mode, **kw)) <= 1e-6
        dy = draw_array(data, y.shape, x.dtype, "grad_output")
        dx = F.avg_pool2d_backward(dy, x.shape, kernel, stride, padding, ceil_mode, **kw)
        assert rel_err(dx, R.avg_pool2d_backward(dy, x.shape, kernel, stride, padding, ceil_mode, **kw)) <= 1e-6
    run_property(prop, examples)


@pytest.mark.parametrize("examples", DEPTHS)
def test_dense_ops_match_reference_or_refuse(examples):
    def prop(data):
        n, fin, fout = (data.draw(st.integers(1, 6), label=k) for k in ("N", "in", "out"))
        dtype = draw_dtype(data)
        x = draw_array(data, (n, fin), dtype, "input", -3, 3)
        w = draw_array(data, (fout, fin + data.draw(st.sampled_from([0] * 9 + [1]), label="in mismatch")),
                       dtype, "weight")
        target = data.draw(st.lists(st.integers(0, fin), min_size=n, max_size=n), label="target")
        target = np.array(target, np.int64)
        if dtype not in (np.float32, np.float64):
            for op in (F.relu, F.sigmoid, F.tanh, lambda a: F.softmax(a, 1), lambda a: F.linear(a, w)):
                expect_rejected(lambda: op(x), "dtype")
            return
        tol = 1e-5 if dtype == np.float32 else 1e-12
        for name in ("relu", "sigmoid", "tanh"):
            assert rel_err(getattr(F, name)(x), getattr(R, name)(x)) <= tol, name
        assert rel_err(F.softmax(x, 1), R.softmax(x, 1)) <= tol
        assert rel_err(F.log_softmax(x, -1), R.log_softmax(x, -1)) <= tol
        if w.shape[1] != fin:
            expect_rejected(lambda: F.linear(x, w), "in_features mismatch")
        else:
            assert rel_err(F.linear(x, w), R.linear(x, w)) <= tol * fin
        if (target < fin).all():
            # each sample's loss is logsumexp(x) - x[target]: a difference of numbers up to
            # max|x| + log(in), so its error is a few ulps of that, not of the (maybe tiny) loss
            ulps = np.finfo(dtype).eps * (np.abs(x).max() + np.log(fin) + 1)
            got, ref = F.cross_entropy(x, target, reduction="sum"), R.cross_entropy(x, target, reduction="sum")
            assert abs(float(got) - float(ref)) <= 8 * ulps * n, (got, ref)
        else:
            expect_rejected(lambda: F.cross_entropy(x, target), "target out of range")
    run_property(prop, examples)


HUGE = 1 << 32  # elements: past 2^31, the size where 32-bit indexing would wrap


def huge(shape, dtype=np.float32):
    """An array of `shape` (>= 2^31 elements) that takes no memory: one element, zero strides."""
    return np.broadcast_to(np.zeros(1, dtype), shape)


@pytest.mark.parametrize("call", [
    lambda: F.conv2d(np.zeros((1, 1, 4, 4), np.float32), np.zeros((1, 1, 1, 1), np.float32), padding=1 << 40),
    lambda: F.conv2d(np.zeros((1, 1, 1 << 12, 1 << 12), np.float32), huge((1 << 14, 1, 1, 1))),
    lambda: F.conv2d(np.zeros((1, 1, 2, 2), np.float32), np.zeros((1, 1, 3, 3), np.float32),
                     dilation=1 << 40, padding=1 << 41),
    lambda: F.conv2d_input((1 << 20, 1 << 10, 1 << 8, 1 << 8), np.zeros((1, 1 << 10, 1, 1), np.float32),
                           huge((1 << 20, 1, 1 << 8, 1 << 8))),
    lambda: F.max_pool2d(huge((1 << 12, 1 << 12, 1 << 10, 1 << 10)), 1),
    lambda: F.avg_pool2d(huge((1 << 12, 1 << 12, 1 << 10, 1 << 10)), 1, ceil_mode=True),
], ids=["padding 2^40", "output 2^40", "dilation 2^40", "input gradient 2^48", "max pool 2^46", "avg pool 2^46"])
def test_huge_shapes_are_refused_before_allocating(call):
    """Sizes no machine here holds: MemoryError (or ValueError) up front, never an attempt to
    allocate them that the kernel's overcommit would grant and the OOM killer end."""
    with pytest.raises(REJECTED):
        call()
