"""The pointwise family (csrc/conv/pointwise/: 1x1 convolutions with no padding as GEMMs over NCHW,
any stride, any groups, small maps folded into one GEMM over the batch): which shapes take it,
and its forward, input gradient and weight gradient against the float64 reference on every ISA
and against torch."""
import contextlib

import numpy as np
import pytest

import fastconv
import fastconv.functional as F
from conftest import ISAS, rel_err, torch
import test_strided as strided
from test_direct_batched import paths


@pytest.mark.parametrize("shape", [
    dict(n=1, c=256, h=56, w=56, k=64, r=1, pad=0),                 # ResNet-50 bottleneck
    dict(n=1, c=512, h=28, w=28, k=1024, r=1, stride=2, pad=0),     # downsample
    dict(n=8, c=960, h=7, w=7, k=160, r=1, pad=0),                  # small maps, batch folded
    dict(n=2, c=12, h=5, w=3, k=8, r=1, pad=0, groups=4),           # grouped 1x1
    dict(n=1, c=16, h=9, w=9, k=16, r=1, stride=3, pad=0, dil=2),   # dilation is moot at 1x1
])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_1x1_without_padding_takes_the_pointwise_path(shape, dtype):
    assert set(paths(**shape, dtype=dtype).values()) == {"pointwise"}


@pytest.mark.parametrize("shape", [
    dict(n=1, c=16, h=9, w=9, k=16, r=1, pad=1),           # padding: border outputs are bias only
    dict(n=1, c=16, h=9, w=9, k=16, r=3, pad=0),           # not 1x1
])
def test_other_shapes_do_not(shape):
    assert "pointwise" not in paths(**shape).values()


def test_depthwise_1x1_stays_with_the_depthwise_kernels():
    assert paths(n=1, c=16, h=9, w=9, k=16, r=1, pad=0, groups=16)["forward"] != "pointwise"


def check(n, c, h, w, k, stride, groups, dtype, rng, dil=1, bias=True):
    """Forward, input and weight gradient of a 1x1 conv (no padding) against the reference."""
    strided.check(n, c, h, w, k, 1, 1, stride, 0, groups, dtype, rng, dil=dil, bias=bias)


# (N, C, H, W, K, stride, groups): odd sizes, maps smaller than a vector, reductions longer than one
# 192-deep slice, more than 256 rows or columns (several row chunks / column blocks), partial panels.
SHAPES = [
    (1, 3, 7, 5, 5, 1, 1),
    (1, 64, 56, 56, 256, 1, 1),     # ResNet-50 expansion (scaled: the zoo's own map)
    (2, 200, 9, 11, 300, 1, 1),     # two reduction slices, > 256 rows
    (1, 37, 23, 29, 19, 2, 1),      # stride 2 on odd sizes: the last row and column are skipped
    (3, 16, 8, 8, 40, 2, 1),
    (2, 24, 10, 13, 12, 3, 1),      # stride 3
    (5, 96, 2, 3, 70, 1, 1),        # maps smaller than a vector, batch folded into the columns
    (9, 33, 1, 1, 17, 1, 1),        # 1x1 maps
    (4, 12, 6, 6, 18, 1, 3),        # groups between 1 and C
    (2, 64, 7, 7, 64, 2, 8),
    (1, 512, 7, 7, 2048, 1, 1),     # ResNet-50 layer4 expansion: many rows, 49 columns
    (1, 16, 15, 13, 96, 1, 1),      # few input, many output channels: the weight gradient as dw^T
    (2, 16, 9, 9, 64, 1, 2),        # the same per group
    (2, 20, 111, 113, 100, 1, 1),   # a 10 MB output (one slice): tiles in row-panel order
    (3, 16, 97, 95, 64, 1, 2),      # the same per group, the last column panel partial
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_against_reference_every_isa(shape, dtype, isa, rng):
    check(*shape, dtype, rng)


@pytest.mark.parametrize("isa_name", ISAS)
def test_random_shapes(isa_name, rng):
    with fastconv.use_isa(isa_name):
        for _ in range(12):
            groups = int(rng.choice([1, 2, 3]))
            n, h, w = int(rng.integers(1, 5)), int(rng.integers(1, 20)), int(rng.integers(1, 20))
            cg, kg = int(rng.integers(1, 70)), int(rng.integers(1, 70))
            stride, dil = int(rng.integers(1, 4)), int(rng.integers(1, 3))
            dtype = rng.choice([np.float32, np.float64])
            check(n, cg * groups, h, w, kg * groups, stride, groups, dtype, rng, dil=dil, bias=bool(rng.integers(2)))


@pytest.mark.parametrize("threads", [1, 2, 3, 4])
def test_work_splits_cover_every_output_once_at_any_thread_count(threads, rng):
    """Few work items: the forward shares a map's pixel panels evenly between blocks where that
    balances the threads better than fixed-width blocks (256 -> 64 and 64 -> 64 at 56x56, batch 1:
    3136 columns; a batch of two 30x30 maps), and the weight gradient cuts dw's rows into chunks
    where its reduction and columns give fewer items than threads (160 -> 960 at 7x7: one item).
    Whichever split the thread count leads to, every output and gradient is written exactly once."""
    old = fastconv.get_num_threads()
    fastconv.set_num_threads(threads)
    try:
        for shape in [(1, 256, 56, 56, 64, 1, 1), (1, 64, 56, 56, 64, 1, 1), (2, 40, 30, 30, 16, 1, 1),
                      (1, 48, 45, 45, 24, 1, 1), (1, 160, 7, 7, 960, 1, 1), (1, 24, 5, 5, 20, 1, 1)]:
            check(*shape, np.float32, rng)
    finally:
        fastconv.set_num_threads(old)


def test_depthwise_1x1_is_still_right(rng):
    check(2, 16, 5, 7, 16, 2, 16, np.float64, rng)


# The small-map path (csrc/conv/pointwise/pointwise_kernels.h: output channels in the vector lanes,
# pixels broadcast; float32 forward and input gradient). (N, C, H, W, K, stride, groups): Q = N*OH*OW
# of 1, 7, 49, 50, 196 and 784 columns, odd channel counts (partial vectors in the lanes), strides 2
# and 3 (the input packed; the input gradient scattered to every s-th pixel, the rest zero),
# batches with panels per image and with panels across images, groups.
SMALL_SHAPES = [
    (1, 64, 1, 1, 48, 1, 1),        # Q = 1
    (1, 40, 1, 7, 33, 1, 1),        # Q = 7, 33 output channels
    (1, 33, 1, 7, 48, 1, 1),        # Q = 7, 33 input channels (the input gradient's rows)
    (1, 96, 7, 7, 80, 1, 1),        # Q = 49: seven panels of 7
    (1, 64, 5, 10, 70, 1, 1),       # Q = 50
    (1, 35, 5, 10, 70, 1, 1),
    (1, 64, 14, 14, 144, 1, 1),     # Q = 196: three blocks of 48 channels
    (1, 33, 28, 28, 47, 1, 1),      # Q = 784
    (1, 70, 13, 13, 100, 2, 1),     # stride 2 -> 7x7
    (1, 37, 14, 9, 40, 2, 1),       # stride 2 on an even height: the last input row gets no gradient
    (4, 48, 7, 7, 64, 1, 1),        # batch: panels within each image, read in place
    (2, 17, 7, 7, 31, 1, 1),
    (3, 32, 2, 2, 96, 1, 1),        # 2x2 maps: panels across images, packed
    (2, 64, 3, 3, 16, 1, 1),
    (2, 96, 14, 14, 64, 2, 2),      # groups and stride 2
    (3, 24, 5, 5, 42, 2, 3),
    (5, 20, 3, 5, 50, 3, 1),        # stride 3, batch 5
    (9, 33, 1, 1, 17, 1, 1),        # 1x1 maps of a batch
    (1, 512, 7, 7, 2048, 1, 1),     # ResNet-50 layer4.0.conv3
    (6, 40, 14, 14, 72, 1, 1),      # Q = 1176, past max_q: a batch of 14x14 maps, per image
    (300, 16, 2, 2, 24, 1, 1),      # Q = 1200 of 2x2 maps: panels across images, packed
]


def variants(n, c, h, w, k, stride, groups, dtype="float32", bias=True):
    return {p: fastconv._C.pointwise_variant((n, c, h, w), (k, c // groups, 1, 1), (stride, stride), groups, p,
                                             dtype, bias) for p in ("forward", "input_grad", "weight_grad")}


@contextlib.contextmanager
def forced(variant):
    """Every float32 forward and input gradient of the path on `variant` ('small_maps' or 'gemm')."""
    fastconv._C.set_pointwise_variant(variant)
    try:
        yield
    finally:
        fastconv._C.set_pointwise_variant("auto")


@pytest.mark.parametrize("variant", ["small_maps", "gemm"])
@pytest.mark.parametrize("shape", SMALL_SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_small_shapes_on_each_gemm_every_isa(shape, variant, isa, rng):
    with forced(variant):
        assert variants(*shape) == {"forward": variant, "input_grad": variant, "weight_grad": "gemm"}
        assert set(variants(*shape, dtype="float64").values()) == {"gemm"}
        check(*shape, np.float32, rng)
        check(*shape, np.float32, rng, bias=False)


@pytest.mark.parametrize("isa_name", ISAS)
def test_the_issues_small_map_layers_take_the_transposed_tile(isa_name):
    """Issue 21's ResNet-50 / MobileNetV2 1x1 layers on 7x7 and 14x14 outputs: the forward with its
    bias and the input gradient (and, on AVX-512, the forward without bias)."""
    with fastconv.use_isa(isa_name):
        for c, h, k, stride in [(512, 7, 2048, 1), (2048, 7, 512, 1), (1024, 14, 2048, 2), (1024, 14, 512, 1),
                                (1024, 14, 256, 1), (256, 14, 1024, 1), (512, 28, 1024, 2), (320, 7, 1280, 1),
                                (960, 7, 320, 1), (160, 7, 960, 1), (64, 14, 384, 1), (96, 14, 576, 1),
                                (960, 7, 160, 1)]:
            v = variants(1, c, h, h, k, stride, 1)
            assert v["forward"] == v["input_grad"] == "small_maps", (c, h, k, stride)
            if isa_name == "avx512":
                assert variants(1, c, h, h, k, stride, 1, bias=False)["forward"] == "small_maps", (c, h, k, stride)


@pytest.mark.parametrize("isa_name", ISAS)
def test_batches_of_small_maps_take_the_transposed_tile_past_its_column_limit(isa_name):
    """At 14x14 and 7x7 the shared GEMM would fold the batch into its columns and scatter its tiles
    back to the images, so the small path stays the choice at batch 8 (1568 columns at 14x14)."""
    with fastconv.use_isa(isa_name):
        for c, h, k in [(64, 14, 384), (384, 14, 64), (1024, 14, 256), (256, 14, 1024), (576, 14, 96), (160, 7, 960)]:
            v = variants(8, c, h, h, k, 1, 1)
            assert v["forward"] == v["input_grad"] == "small_maps", (c, h, k)


@pytest.mark.parametrize("isa_name", ISAS)
def test_large_maps_and_short_reductions_keep_the_shared_tiles(isa_name):
    with fastconv.use_isa(isa_name):
        for shape in [(1, 256, 56, 56, 64, 1, 1), (1, 64, 56, 56, 256, 1, 1), (1, 32, 112, 112, 16, 1, 1),
                      (2, 512, 28, 28, 256, 1, 1), (8, 128, 28, 28, 512, 1, 1)]:  # Q > 1024, maps not folded
            assert set(variants(*shape).values()) == {"gemm"}, shape
        if isa_name != "scalar":  # AVX-512: 784 columns pad to 800 on the shared tile, and a 16-deep
            # reduction does not pay for the transposing store; AVX2: 784 > 256 columns
            assert variants(1, 96, 28, 28, 16, 1, 1)["input_grad"] == "gemm"
        for shape in SMALL_SHAPES[:3]:
            assert set(variants(*shape, dtype="float64").values()) == {"gemm"}


def test_forcing_a_variant_names_it():
    with pytest.raises(ValueError, match="small_maps"):
        fastconv._C.set_pointwise_variant("fast")
    assert variants(1, 256, 56, 56, 64, 1, 1)["forward"] == "gemm"
    with forced("small_maps"):
        assert variants(1, 256, 56, 56, 64, 1, 1)["forward"] == "small_maps"
    assert variants(1, 256, 56, 56, 64, 1, 1)["forward"] == "gemm"


@pytest.mark.skipif(torch is None, reason="torch not installed")
@pytest.mark.parametrize("shape", [(1, 64, 56, 56, 128, 2, 1), (2, 160, 7, 7, 96, 1, 1), (3, 48, 9, 9, 24, 1, 4)],
                         ids=lambda s: "x".join(map(str, s)))
def test_matches_torch(shape, rng):
    n, c, h, w, k, stride, groups = shape
    x = rng.standard_normal((n, c, h, w)).astype(np.float32)
    wt = (rng.standard_normal((k, c // groups, 1, 1)) / np.sqrt(c // groups)).astype(np.float32)
    b = rng.standard_normal(k).astype(np.float32)
    tx = torch.from_numpy(x).requires_grad_()
    tw = torch.from_numpy(wt).requires_grad_()
    ty = torch.nn.functional.conv2d(tx, tw, torch.from_numpy(b), stride, 0, 1, groups)
    dy = rng.standard_normal(tuple(ty.shape)).astype(np.float32)
    ty.backward(torch.from_numpy(dy))
    y = F.conv2d(x, wt, b, stride, 0, 1, groups)
    assert rel_err(y, ty.detach().numpy()) < 1e-5
    assert rel_err(F.conv2d_input(x.shape, wt, dy, stride, 0, 1, groups), tx.grad.numpy()) < 1e-5
    assert rel_err(F.conv2d_weight(x, wt.shape, dy, stride, 0, 1, groups), tw.grad.numpy()) < 1e-5


def test_bad_input_still_names_the_argument():
    x = np.zeros((1, 8, 5, 5), np.float32)
    with pytest.raises(ValueError, match="weight"):
        F.conv2d(x, np.zeros((4, 3, 1, 1), np.float32))  # 3 input channels per group, not 8
    with pytest.raises(ValueError, match="stride"):
        F.conv2d(x, np.zeros((4, 8, 1, 1), np.float32), stride=0)


def test_auto_sends_every_zoo_1x1_layer_to_the_pointwise_path():
    from fastconv._shapes import ZOO
    layers = [s for s in ZOO if s.kernel == 1]
    assert len(layers) > 30
    for s in layers:
        assert F.conv2d_algorithm(s.input_shape, s.weight_shape, s.stride, s.padding, s.dilation, s.groups) == "direct"
        assert set(paths(1, s.in_channels, s.size, s.size, s.out_channels, 1, s.stride, s.padding, s.dilation,
                         s.groups).values()) == {"pointwise"}, s.label
