"""The CPU backend: numpy arrays in, compiled kernels (fastconv._C) run, numpy arrays out.
Arguments arrive validated and normalised by fastconv.functional."""
from __future__ import annotations

import numpy as np

from fastconv import _C

ALGORITHMS = ("auto", "direct", "winograd", "winograd_f2", "winograd_f4", "winograd_f6")

# Winograd F(m x m, 3 x 3) output tile per algorithm name.
WINOGRAD_TILES = {"winograd_f2": 2, "winograd_f4": 4, "winograd_f6": 6}


def winograd_unsupported(w_shape, geometry, input_grad=False):
    """Why Winograd cannot run this convolution (None when it can)."""
    r, s = w_shape[2], w_shape[3]
    if (r, s) != (3, 3):
        return f"Winograd needs a 3x3 kernel, got {r}x{s}"
    if tuple(geometry.stride) != (1, 1):
        return f"Winograd needs stride 1, got stride={tuple(geometry.stride)}"
    if tuple(geometry.dilation) != (1, 1):
        return f"Winograd needs dilation 1, got dilation={tuple(geometry.dilation)}"
    if input_grad and max(geometry.padding) > 2:
        return f"the Winograd input gradient needs padding <= 2, got padding={tuple(geometry.padding)}"
    return None


def choose_algorithm(requested, in_shape, w_shape, geometry, *, input_grad=False, weights_reused=False):
    """The convolution algorithm to run for this shape: "direct" or "winograd_f2/f4/f6".

    in_shape is the (N, C, H, W) of the forward input (also for the input gradient, which
    for 3x3 stride 1 is itself a 3x3 stride-1 convolution of grad_output). weights_reused: the
    caller keeps the transformed weights between calls (nn.Conv2d does), so the weight
    transform is not paid per call."""
    if requested not in ALGORITHMS:
        raise ValueError(f"algorithm must be one of {ALGORITHMS}, got {requested!r}")
    if requested == "direct":
        return "direct"
    reason = winograd_unsupported(w_shape, geometry, input_grad)
    if requested == "auto":
        return "direct" if reason else _heuristic(in_shape, w_shape, geometry, input_grad, weights_reused=weights_reused)
    if reason:
        raise ValueError(f"algorithm={requested!r} cannot run this convolution: {reason}")
    if requested == "winograd":
        tile = _winograd_tile(in_shape, w_shape, geometry, input_grad)
        return f"winograd_f{tile}"
    return requested


def _winograd_tile(in_shape, w_shape, geometry, input_grad):
    """The Winograd tile for a shape Winograd handles (see _heuristic)."""
    algo = _heuristic(in_shape, w_shape, geometry, input_grad, allow_direct=False)
    return WINOGRAD_TILES[algo]


def _heuristic(in_shape, w_shape, geometry, input_grad, allow_direct=True, weights_reused=False):
    """Direct or a Winograd tile for a 3x3 stride-1 conv, by a cost model fitted to single-thread
    CPU times of all nine VGG-16 layers at batch 1 and 8 (direct, F(2,3), F(4,3), F(6,3)) on the
    2-core AVX-512 Xeon this was written on (`bench/bench_conv.py --algorithms direct winograd_f2
    winograd_f4 winograd_f6 auto` reproduces the comparison).
    Time in ms, per group:
      direct   = _DIRECT * MACs * sqrt(max(1, 16 / min(Cg, Kg)))  (thin GEMMs run slower)
      winograd = 3.09e-8 * alpha^2 K C tiles      element-wise GEMMs
               + 2.45e-7 * alpha^3 tiles (C + K)  input and output transforms
               + 1.31e-6 * alpha^2 K C            weight transform: computing, writing, reading U
    With weights_reused the last term shrinks to _WEIGHT_REUSED (only reading U is left).
    The original fit picked the fastest measured algorithm on 15 of the 18 layers and was within
    1.1x of it on the rest; see _DIRECT below for the later refit. F(6,3) gets a 5% handicap: it is less accurate and rarely much faster.
    """
    n, c, h, w = in_shape
    k = w_shape[0]
    g = geometry.groups
    if input_grad:  # the conv actually run: grad_output (K channels) -> C channels
        c, k = k, c
        oh, ow = h, w
    else:
        oh, ow = geometry.out_hw
    cg, kg = c // g, k // g
    macs = n * kg * cg * 9 * oh * ow
    best, best_t = "direct", float("inf")
    weight_cost = _WEIGHT_REUSED if weights_reused else _WEIGHT
    if allow_direct:
        best_t = _DIRECT * _DIRECT_ISA_FACTOR.get(_C.active_isa(), 1.0) * macs * max(1.0, 16.0 / min(cg, kg)) ** 0.5
    for m in (2, 4, 6):
        a = m + 2
        tiles = n * -(-oh // m) * -(-ow // m)
        t = _GEMM * a * a * kg * cg * tiles + _TRANSFORM * a ** 3 * tiles * (cg + kg) + weight_cost * a * a * kg * cg
        if m == 6:
            t *= 1.05
        if t < best_t:
            best, best_t = f"winograd_f{m}", t
    return best


# Cost-model constants (ms per unit; see _heuristic). _DIRECT was refitted (4.0e-8 -> 2.3e-8,
# the median over the 18 VGG-16 cases of bench-measured / modelled single-thread time) after
# direct convolution gained its stride-1 shifted-row path; with it, auto runs direct on the
# 14x14 512-channel layers at batch 1 with AVX-512, where the weight transform does not pay off.
_DIRECT = 2.3e-8
# Direct convolution's cost relative to Winograd's by the ISA of the micro-kernels. The constants
# above were fitted with AVX-512; on the AVX2-only AMD EPYC (Zen 3) of issue 9, side-by-side
# times of the 512-channel layers at 14x14 (batch 1), 7x7 and 3x3 (batch 8) put direct 1.7-2.3x
# slower relative to F(2,3)/F(4,3) than the model said, e.g. 512->512 @14 N=1: direct 1.34x
# slower than F(4,3) where the AVX-512 model expected it 1.7x faster.
_DIRECT_ISA_FACTOR = {"avx2": 2.0}
_GEMM = 3.09e-8
_TRANSFORM = 2.45e-7
_WEIGHT = 1.31e-6
# Reading cached transformed weights: a tenth of computing them. Estimated (not fitted) from
# side-by-side times of direct / F(2,3) / F(4,3) with and without reuse on the 256- and
# 512-channel layers of the 18 shapes, on the shared 2-core AMD EPYC (AVX2) of issue 9, where
# reuse made F(4,3) 2-3x faster than direct at 14x14 and 3x3 maps.
_WEIGHT_REUSED = 0.1 * _WEIGHT


def _pad_extra(x, extra):
    if extra == (0, 0):
        return x
    return np.pad(x, ((0, 0), (0, 0), (0, extra[0]), (0, extra[1])))


def conv2d(x, w, bias, g, algorithm, out):
    x = np.ascontiguousarray(_pad_extra(x, g.extra_pad))
    bias = None if bias is None else np.ascontiguousarray(bias)
    if isinstance(w, WinogradWeights):
        y = out if out is not None else np.empty((x.shape[0], w.weight_shape[0]) + g.out_hw, x.dtype)
        _C.conv2d_winograd(x, None, w.data, w.layout, bias, y, g.padding, g.groups, w.tile)
        return y
    w = np.ascontiguousarray(w)
    y = out if out is not None else np.empty((x.shape[0], w.shape[0]) + g.out_hw, x.dtype)
    algo = choose_algorithm(algorithm, x.shape, w.shape, g)
    if algo == "direct":
        _C.conv2d_direct(x, w, bias, y, g.stride, g.padding, g.dilation, g.groups)
    else:
        _C.conv2d_winograd(x, w, None, (0, 0), bias, y, g.padding, g.groups, WINOGRAD_TILES[algo])
    return y


def conv2d_input(input_shape, w, dy, g, algorithm, out):
    n, c, h, wd = input_shape
    padded = (n, c, h + g.extra_pad[0], wd + g.extra_pad[1])
    w = np.ascontiguousarray(w)
    dy = np.ascontiguousarray(dy)
    direct_out = out if (out is not None and padded == tuple(input_shape)) else None
    dx = direct_out if direct_out is not None else np.empty(padded, dy.dtype)
    algo = choose_algorithm(algorithm, padded, w.shape, g, input_grad=True)
    if algo == "direct":
        _C.conv2d_direct_input_grad(dy, w, dx, g.stride, g.padding, g.dilation, g.groups)
    else:
        _C.conv2d_winograd_input_grad(dy, w, dx, g.padding, g.groups, WINOGRAD_TILES[algo])
    if padded != tuple(input_shape):
        dx = dx[:, :, :h, :wd]
        if out is not None:
            out[...] = dx
            return out
        return np.ascontiguousarray(dx)
    return dx


class WinogradWeights:
    """Weights of a 3x3 convolution transformed once for Winograd F(tile x tile, 3 x 3), to be
    passed to fastconv.functional.conv2d in place of the weight (see functional.winograd_weights).

    data: the transformed weights U[g][xi][k][c] = (G w[g*Kg + k][c] G^T)[xi], packed in GEMM
    row panels for the ISA active when they were made (layout = (mr, kc)); unpacked() gives
    them as a (groups, alpha^2, K/groups, C/groups) array. The object holds a copy: changing the
    original weight afterwards does not change it.
    """

    def __init__(self, weight, tile, groups):
        self.tile = int(tile)
        self.groups = int(groups)
        self.weight_shape = tuple(weight.shape)
        self.dtype = weight.dtype
        data, mr, kc = _C.winograd_transform_weights(np.ascontiguousarray(weight), self.groups, self.tile)
        self.data = data
        self.layout = (mr, kc)

    @property
    def alpha(self):
        return self.tile + 2

    def unpacked(self):
        """U as a (groups, alpha^2, K/groups, C/groups) array (a copy)."""
        k, cg = self.weight_shape[:2]
        kg, (mr, kc_max) = k // self.groups, self.layout
        mpad = -(-kg // mr) * mr
        kcb = -(-cg // -(-cg // kc_max))  # the balanced slice length (slice_kc in gemm.h)
        kk, cc = np.meshgrid(np.arange(kg), np.arange(cg), indexing="ij")
        pc = cc // kcb * kcb
        kc = np.minimum(kcb, cg - pc)
        idx = pc * mpad + (kk // mr) * kc * mr + (cc - pc) * mr + kk % mr
        slabs = self.data.reshape(self.groups, self.alpha ** 2, mpad * cg)
        return slabs[:, :, idx]

    def __repr__(self):
        return (f"WinogradWeights(tile={self.tile}, weight_shape={self.weight_shape}, groups={self.groups}, "
                f"dtype={self.dtype})")


def conv2d_weight(x, weight_shape, dy, g, out):
    x = np.ascontiguousarray(_pad_extra(x, g.extra_pad))
    dy = np.ascontiguousarray(dy)
    dw = out if out is not None else np.empty(weight_shape, x.dtype)
    _C.conv2d_direct_weight_grad(x, dy, dw, g.stride, g.padding, g.dilation, g.groups)
    return dw


def relu(x):
    x = np.ascontiguousarray(x)
    y = np.empty_like(x)
    _C.relu(x, y)
    return y


def relu_backward(dy, y):
    dy, y = np.ascontiguousarray(dy), np.ascontiguousarray(y)
    dx = np.empty_like(dy)
    _C.relu_backward(dy, y, dx)
    return dx


def max_pool2d(x, g, out):
    x = np.ascontiguousarray(x)
    shape = x.shape[:2] + g.out_hw
    y = out if out is not None else np.empty(shape, x.dtype)
    idx = np.empty(shape, np.int64)
    _C.max_pool2d(x, y, idx, g.kernel, g.stride, g.padding, g.dilation)
    return y, idx


def max_pool2d_backward(dy, indices, input_shape, out):
    dy = np.ascontiguousarray(dy)
    indices = np.ascontiguousarray(indices)
    dx = out if out is not None else np.empty(input_shape, dy.dtype)
    _C.max_pool2d_backward(dy, indices, dx)
    return dx


def avg_pool2d(x, g, count_include_pad, divisor_override, out):
    x = np.ascontiguousarray(x)
    y = out if out is not None else np.empty(x.shape[:2] + g.out_hw, x.dtype)
    _C.avg_pool2d(x, y, g.kernel, g.stride, g.padding, bool(count_include_pad), int(divisor_override or 0))
    return y


def avg_pool2d_backward(dy, input_shape, g, count_include_pad, divisor_override, out):
    dy = np.ascontiguousarray(dy)
    dx = out if out is not None else np.empty(input_shape, dy.dtype)
    _C.avg_pool2d_backward(dy, dx, g.kernel, g.stride, g.padding, bool(count_include_pad),
                           int(divisor_override or 0))
    return dx
