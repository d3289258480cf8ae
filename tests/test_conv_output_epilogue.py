"""The output epilogue the native conv calls take (csrc/elementwise/epilogue.h): an activation
and a residual add applied in the conv's own call, inside the pointwise GEMMs' output pass, the
dense depthwise kernels' registers and the shifted-row paths' copy out of their tiles, and as a
pass after the conv in the other families. The
compiled conv steps use it (fastconv._cpu.conv2d_runner); here each family is checked against
the float64 reference on every ISA, and bad arguments are refused by name."""
import numpy as np
import pytest

import fastconv
from fastconv import _C, _cpu, reference

ACTS = [("relu", None), ("clamp", (0.0, 6.0)), ("clamp", (-0.5, 0.25)), ("silu", None), (None, None)]


def error(got, want, conv, residual):
    """max |got - want| over the scale of what went in (the conv's and residual's largest
    magnitude): a clamp's output range says nothing of the conv's rounding error."""
    scale = max(np.abs(conv).max(), 0.0 if residual is None else np.abs(residual).max())
    return np.abs(np.asarray(got, np.float64) - want).max() / scale


def reference_epilogue(y, act, bounds, residual, after):
    z = np.asarray(y, np.float64)
    r = None if residual is None else residual.astype(np.float64)
    if r is not None and not after:
        z = z + r
    if act == "relu":
        z = np.maximum(z, 0.0)
    elif act == "clamp":
        z = np.clip(z, *bounds)
    elif act == "silu":
        z = z / (1.0 + np.exp(-z))
    return z + r if r is not None and after else z


# (N, C, H, W, K, kernel, stride, padding, groups, family): one shape per path of the forward.
SHAPES = [
    (1, 64, 20, 20, 40, 1, 1, 0, 1, "pointwise, output written in place"),
    (1, 420, 16, 17, 30, 1, 1, 0, 1, "pointwise in place, over several reduction slices"),
    (2, 20, 111, 113, 100, 1, 1, 0, 1, "pointwise in place, output past the caches: rows outer"),
    (3, 24, 6, 5, 20, 1, 1, 0, 1, "pointwise, batch folded into shared blocks"),
    (1, 40, 7, 7, 56, 1, 1, 0, 1, "pointwise, small-map transposed tile"),
    (2, 12, 11, 9, 16, 1, 2, 0, 4, "pointwise, strided and grouped"),
    (1, 16, 13, 13, 16, 3, 1, 1, 16, "dense depthwise, in registers"),
    (2, 20, 5, 9, 20, 3, 1, 1, 20, "dense depthwise, planes narrower than a vector"),
    (1, 16, 13, 13, 16, 3, 2, 1, 16, "dense depthwise, stride 2"),
    (1, 16, 13, 13, 32, 3, 2, 1, 16, "depthwise window"),
    (2, 8, 12, 10, 12, 3, 1, 1, 1, "shifted rows / batched"),
    (1, 6, 17, 15, 10, 3, 2, 1, 1, "phase images"),
    (1, 3, 23, 23, 8, 7, 2, 3, 1, "stem"),
]


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: s[-1])
def test_direct_families_apply_it_every_isa(shape, isa, rng):
    n, c, h, w, k, r, s, p, g, _ = shape
    x = rng.standard_normal((n, c, h, w)).astype(np.float32)
    wt = rng.standard_normal((k, c // g, r, r)).astype(np.float32)
    b = rng.standard_normal(k).astype(np.float32)
    conv = reference.conv2d(x.astype(np.float64), wt.astype(np.float64), b.astype(np.float64), s, p, 1, g)
    for act, bounds in ACTS:
        for where in (None, "before", "after"):
            if act is None and where is None:
                continue
            res = None if where is None else rng.standard_normal(conv.shape).astype(np.float32)
            y = np.full(conv.shape, np.nan, np.float32)
            _C.conv2d_direct(x, wt, b, y, (s, s), (p, p), (1, 1), g,
                             **_cpu.conv_epilogue_kwargs(act, bounds, res, where == "after"))
            want = reference_epilogue(conv, act, bounds, res, where == "after")
            assert error(y, want, conv, res) < 1e-5, (act, bounds, where, error(y, want, conv, res))


@pytest.mark.parametrize("shape", SHAPES + [(2, 8, 11, 13, 12, 3, 1, 1, 1, f"winograd_f{t}") for t in (2, 4, 6)],
                         ids=lambda s: s[-1])
def test_nan_goes_through_the_activation_every_isa(shape, isa, rng):
    """ReLU and clamp keep a NaN the conv produced (as torch.relu / torch.clamp / relu6 do): in
    every family's output pass the fused result is NaN exactly where the conv alone is."""
    n, c, h, w, k, r, s, p, g, family = shape
    x = rng.standard_normal((n, c, h, w)).astype(np.float32)
    x[0, 0, 2 % h, 2 % w] = np.nan  # a position every stride here samples
    wt = rng.standard_normal((k, c // g, r, r)).astype(np.float32)
    b = rng.standard_normal(k).astype(np.float32)
    oh, ow = (h + 2 * p - r) // s + 1, (w + 2 * p - r) // s + 1

    def run(**epilogue):
        y = np.full((n, k, oh, ow), 7.0, np.float32)
        if family.startswith("winograd"):
            _C.conv2d_winograd(x, wt, None, (0, 0), b, y, (p, p), g, int(family[-1]), **epilogue)
        else:
            _C.conv2d_direct(x, wt, b, y, (s, s), (p, p), (1, 1), g, **epilogue)
        return y

    plain = np.isnan(run())
    assert plain.any() and not plain.all()
    for act, bounds in ACTS[:3]:
        for res in (None, np.zeros((n, k, oh, ow), np.float32)):
            got = run(**_cpu.conv_epilogue_kwargs(act, bounds, res, False))
            assert np.array_equal(np.isnan(got), plain), (family, act, bounds, res is None)


@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("stride", [1, 2])
def test_shifted_rows_apply_it_per_block_wherever_a_block_starts(stride, threads, rng):
    """The shifted-row paths apply the epilogue to each work item's block of virtual pixels, whose
    valid pixels are one run of the output plane. At two and three threads these maps are cut into
    blocks of 128 virtual pixels: stride 1 on 9-wide rows (11 virtual columns) has one starting in
    the second padded column (384 = 34 * 11 + 10), stride 2 (7 virtual columns per 6 outputs) one
    in the padded column (384 = 54 * 7 + 6), the others mid-row."""
    h, w_ = (40, 9) if stride == 1 else (111, 11)
    x = rng.standard_normal((1, 5, h, w_)).astype(np.float32)
    wt = rng.standard_normal((9, 5, 3, 3)).astype(np.float32)
    b = rng.standard_normal(9).astype(np.float32)
    conv = reference.conv2d(x.astype(np.float64), wt.astype(np.float64), b.astype(np.float64), stride, 1)
    path = _C.conv2d_direct_path(x, wt, np.empty(conv.shape, np.float32), (stride, stride), (1, 1), (1, 1), 1, "forward")
    assert path == ("shifted" if stride == 1 else "phase_shifted")
    res = rng.standard_normal(conv.shape).astype(np.float32)
    old = fastconv.get_num_threads()
    fastconv.set_num_threads(threads)
    try:
        for act, bounds in ACTS[:2]:
            y = np.full(conv.shape, np.nan, np.float32)
            _C.conv2d_direct(x, wt, b, y, (stride, stride), (1, 1), (1, 1), 1,
                             **_cpu.conv_epilogue_kwargs(act, bounds, res, False))
            want = reference_epilogue(conv, act, bounds, res, False)
            assert error(y, want, conv, res) < 1e-5, (threads, act, error(y, want, conv, res))
    finally:
        fastconv.set_num_threads(old)


@pytest.mark.parametrize("tile", [2, 4])
def test_winograd_applies_it_every_isa(tile, isa, rng):
    x = rng.standard_normal((2, 8, 11, 13)).astype(np.float32)
    wt = rng.standard_normal((12, 8, 3, 3)).astype(np.float32)
    b = rng.standard_normal(12).astype(np.float32)
    conv = reference.conv2d(x.astype(np.float64), wt.astype(np.float64), b.astype(np.float64), 1, 1)
    u = _cpu.winograd_weights(wt, tile, 1)
    for act, bounds in ACTS:
        for where in (None, "before", "after"):
            if act is None and where is None:
                continue
            res = None if where is None else rng.standard_normal(conv.shape).astype(np.float32)
            kwargs = _cpu.conv_epilogue_kwargs(act, bounds, res, where == "after")
            want = reference_epilogue(conv, act, bounds, res, where == "after")
            for weights in ("plain", "transformed"):
                y = np.full(conv.shape, np.nan, np.float32)
                if weights == "plain":
                    _C.conv2d_winograd(x, wt, None, (0, 0), b, y, (1, 1), 1, tile, **kwargs)
                else:
                    _C.conv2d_winograd(x, None, u.data, u.layout, b, y, (1, 1), 1, tile, **kwargs)
                assert error(y, want, conv, res) < 1e-4, (tile, weights, act, where, error(y, want, conv, res))


def test_polyphase_winograd_applies_it(rng):
    x = rng.standard_normal((1, 3, 39, 39)).astype(np.float32)
    wt = rng.standard_normal((8, 3, 11, 11)).astype(np.float32)
    b = rng.standard_normal(8).astype(np.float32)
    conv = reference.conv2d(x.astype(np.float64), wt.astype(np.float64), b.astype(np.float64), 4, 2)
    res = rng.standard_normal(conv.shape).astype(np.float32)
    y = np.empty(conv.shape, np.float32)
    _C.conv2d_polyphase_winograd(x, wt, b, y, (4, 4), (2, 2), 1, 4,
                                 **_cpu.conv_epilogue_kwargs("clamp", (0.0, 6.0), res, False))
    assert error(y, reference_epilogue(conv, "clamp", (0.0, 6.0), res, False), conv, res) < 1e-4


def test_float64_too(rng):
    x = rng.standard_normal((2, 10, 9, 9))
    wt = rng.standard_normal((14, 10, 1, 1))
    res = rng.standard_normal((2, 14, 9, 9))
    y = np.empty((2, 14, 9, 9))
    _C.conv2d_direct(x, wt, None, y, (1, 1), (0, 0), (1, 1), 1, **_cpu.conv_epilogue_kwargs("silu", None, res, True))
    want = reference_epilogue(reference.conv2d(x, wt), "silu", None, res, True)
    assert error(y, want, want, res) < 1e-12


def test_bad_arguments_are_named(rng):
    x = rng.standard_normal((1, 4, 5, 5)).astype(np.float32)
    wt = rng.standard_normal((6, 4, 1, 1)).astype(np.float32)
    y = np.empty((1, 6, 5, 5), np.float32)
    with pytest.raises(ValueError, match="act"):
        _C.conv2d_direct(x, wt, None, y, (1, 1), (0, 0), (1, 1), 1, act=7)
    with pytest.raises(ValueError, match="residual"):
        _C.conv2d_direct(x, wt, None, y, (1, 1), (0, 0), (1, 1), 1, act=1, residual=np.zeros((1, 6, 5, 4), np.float32))
    with pytest.raises(TypeError, match="residual"):
        _C.conv2d_direct(x, wt, None, y, (1, 1), (0, 0), (1, 1), 1, act=1, residual=np.zeros((1, 6, 5, 5)))
