"""nn.Conv2d's cached Winograd weights: the cached path against the float64 reference, and every
way the weights can change (optimizer steps, load_state_dict, assignment, mark_changed) making
the cache stale; Parameter.version; functional.conv2d_algorithm."""
import numpy as np
import pytest

import fastconv.functional as F
from fastconv import _C
from fastconv import nn
from fastconv import reference as R
from fastconv._shapes import ISSUE_SHAPES

# 64->64 at 16x16, batch 1: auto runs Winograd here once the weights are reused
REUSE_SHAPE = (1, 64, 16, 16)


def rel_err(a, ref):
    return float(np.abs(np.asarray(a, np.float64) - ref).max() / np.abs(ref).max())


def conv_ref(layer, x):
    b = None if layer.bias is None else layer.bias.data.astype(np.float64)
    return R.conv2d(x.astype(np.float64), layer.weight.data.astype(np.float64), b, layer.stride, layer.padding,
                    layer.dilation, layer.groups)


def cached(layer):
    """The layer's transformed weights (None when it holds none)."""
    plans = {} if layer._winograd is None else layer._winograd[1]
    return next((p for p in plans.values() if p is not None), None)


@pytest.fixture
def layer_and_input():
    rng = np.random.default_rng(0)
    layer = nn.Conv2d(64, 64, 3, padding=1, seed=0)
    return layer, rng.standard_normal(REUSE_SHAPE).astype(np.float32)


def test_reused_weights_only_ever_favour_winograd():
    """Reuse removes the per-call weight transform: it may turn direct into Winograd but never
    the reverse, except where few tiles run the tile-rows driver (winograd.cpp), which transforms
    each weight slice as it goes and cannot read cached weights: there reuse may say direct while
    the plain model says Winograd, and nn.Conv2d then keeps no cache and lets auto pick per call
    (test_layer_without_cache_where_only_the_uncached_driver_pays)."""
    assert F.conv2d_algorithm(REUSE_SHAPE, (64, 64, 3, 3), 1, 1, weights_reused=True).startswith("winograd")
    for n in (1, 8):
        for c in (16, 64, 256, 512):
            for h in (3, 7, 14, 28):
                args = ((n, c, h, h), (c, c, 3, 3), 1, 1)
                plain, reused = F.conv2d_algorithm(*args), F.conv2d_algorithm(*args, weights_reused=True)
                tiles = n * (-(-h // int(plain[-1])) if plain != "direct" else 0) ** 2
                if plain != "direct" and _C.winograd_tile_rows(tiles, c):
                    continue
                assert plain == "direct" or reused != "direct", args


def test_layer_without_cache_where_only_the_uncached_driver_pays():
    """The layer caches transformed weights exactly where the reuse model picks Winograd; where it
    picks direct (on AVX-512, 256 channels at 7x7, where the plain model picks Winograd on the
    tile-rows driver) the layer keeps no cache and conv2d runs auto's choice."""
    shape, c = (1, 256, 7, 7), 256
    reused_direct = F.conv2d_algorithm(shape, (c, c, 3, 3), 1, 1, weights_reused=True) == "direct"
    layer = nn.Conv2d(c, c, 3, padding=1, seed=0).eval()
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    with nn.no_grad():
        first, second = layer.forward(x), layer.forward(x)
    assert (cached(layer) is None) == reused_direct
    want = R.conv2d(x.astype(np.float64), layer.weight.data.astype(np.float64), layer.bias.data.astype(np.float64),
                    1, 1)
    for y in (first, second):  # the first call transforms nothing yet; the second may read the cache
        np.testing.assert_allclose(y, want, rtol=1e-4, atol=1e-4)


def test_second_call_uses_the_cached_transform_and_stays_correct(layer_and_input):
    layer, x = layer_and_input
    y1 = layer.forward(x)
    assert cached(layer) is None  # first sight of these weights: nothing transformed yet
    y2 = layer.forward(x)
    transformed = cached(layer)
    assert transformed is not None
    y3 = layer.forward(x)
    assert cached(layer) is transformed  # reused, not redone
    ref = conv_ref(layer, x)
    for y in (y1, y2, y3):
        assert rel_err(y, ref) <= 5e-5


def _step(layer, x, opt):
    y = layer.forward(x)
    layer.zero_grad()
    layer.backward(np.ones_like(y))
    opt.step()


@pytest.mark.parametrize("make_opt", [lambda p: nn.SGD(p, lr=0.1, momentum=0.9), lambda p: nn.Adam(p, lr=0.05)],
                         ids=["sgd", "adam"])
def test_optimizer_step_makes_the_cache_stale(layer_and_input, make_opt):
    layer, x = layer_and_input
    opt = make_opt(layer.parameters())
    layer.forward(x)
    layer.forward(x)
    assert cached(layer) is not None
    before = layer.weight.version
    _step(layer, x, opt)
    assert layer.weight.version > before
    for _ in range(2):
        assert rel_err(layer.forward(x), conv_ref(layer, x)) <= 5e-5


def _change_by_load_state_dict(layer, new):
    layer.load_state_dict({"weight": new, "bias": layer.bias.data})


def _change_by_assignment(layer, new):
    layer.weight.data = new


def _change_in_place_and_mark(layer, new):
    layer.weight.data[...] = new
    layer.weight.mark_changed()


def _change_parameter(layer, new):
    layer.weight = nn.Parameter(new)


def _change_dtype(layer, new):
    layer.weight.data[...] = new
    layer.astype(np.float64)


@pytest.mark.parametrize("change", [_change_by_load_state_dict, _change_by_assignment, _change_in_place_and_mark,
                                    _change_parameter, _change_dtype])
def test_every_documented_weight_change_is_seen(layer_and_input, change):
    layer, x = layer_and_input
    layer.forward(x)
    layer.forward(x)
    assert cached(layer) is not None
    new = np.random.default_rng(1).standard_normal(layer.weight.shape).astype(np.float32) * 0.05
    change(layer, new)
    x = x.astype(layer.weight.data.dtype)
    np.testing.assert_array_equal(layer.weight.data, new.astype(layer.weight.data.dtype))
    for _ in range(3):  # the uncached call, the call that transforms, the cached call
        assert rel_err(layer.forward(x), conv_ref(layer, x)) <= 5e-5


def test_parameter_version_counts_changes():
    p = nn.Parameter(np.zeros(3, np.float32))
    assert p.version == 0
    p.data = np.ones(3, np.float32)
    p.data -= 1  # augmented assignment goes through the setter too
    p.mark_changed()
    assert p.version == 3
    m = nn.Linear(2, 2, seed=0)
    v = m.weight.version
    m.load_state_dict({"weight": np.eye(2), "bias": np.zeros(2)})
    assert m.weight.version == v + 1


def test_cached_path_matches_the_reference_on_many_shapes():
    """Layers (scaled-down issue shapes, random groups / padding / dtype) whose reused-weight
    choice is Winograd, each run three times (plain, transforming, cached)."""
    rng = np.random.default_rng(2)
    checked = 0
    for _ in range(24):
        c, k = (int(v) for v in rng.choice([64, 96, 128], 2))
        groups = int(rng.choice([1, 1, 2]))
        n, h = int(rng.integers(1, 3)), int(rng.integers(8, 17))
        pad, dtype = int(rng.integers(0, 3)), [np.float32, np.float64][int(rng.integers(0, 2))]
        if F.conv2d_algorithm((n, c, h, h), (k, c // groups, 3, 3), 1, pad, 1, groups,
                              weights_reused=True) == "direct":
            continue
        layer = nn.Conv2d(c, k, 3, padding=pad, groups=groups, seed=int(rng.integers(1 << 30)), dtype=dtype)
        x = rng.standard_normal((n, c, h, h)).astype(dtype)
        ref = conv_ref(layer, x)
        tol = 5e-5 if dtype == np.float32 else 1e-11
        for _ in range(3):
            assert rel_err(layer.forward(x), ref) <= tol
        assert cached(layer) is not None
        checked += 1
    assert checked >= 5


def test_conv2d_algorithm_never_picks_winograd_where_it_cannot_run():
    for kwargs in ({"stride": 2}, {"dilation": 2}):
        assert F.conv2d_algorithm((8, 512, 14, 14), (512, 512, 3, 3), padding=1, weights_reused=True,
                                  **kwargs) == "direct"
    assert F.conv2d_algorithm((8, 64, 32, 32), (64, 64, 7, 7), weights_reused=True) == "direct"
    with pytest.raises(ValueError, match="input_size"):
        F.conv2d_algorithm((1, 64, 16), (64, 64, 3, 3))


def test_issue_shapes():
    assert len(ISSUE_SHAPES) == 18
    assert {s.size for s in ISSUE_SHAPES} >= {224, 56, 7, 3}
    s = ISSUE_SHAPES[-1]
    assert s.label == "conv5_x 512->512 @3 N=8" and s.out_size == 3
    assert s.flops == 2.0 * 8 * 512 * 512 * 9 * 9


def test_input_shapes_share_one_transform_per_tile(layer_and_input):
    layer, x = layer_and_input
    def algo(shape):
        return F.conv2d_algorithm(shape, layer.weight.shape, 1, 1, weights_reused=True)

    # another input shape for which the cost model picks the same tile
    shape2 = next(s for s in ((n, 64, h, h) for n in (2, 1) for h in range(8, 41)) if s != x.shape and algo(s) == algo(x.shape))
    x2 = np.random.default_rng(1).standard_normal(shape2).astype(np.float32)
    for _ in range(2):
        layer.forward(x)
    first = cached(layer)
    y2 = layer.forward(x2)
    assert [p for p in layer._winograd[1].values()] == [first, first]
    assert rel_err(y2, conv_ref(layer, x2)) <= 5e-5
