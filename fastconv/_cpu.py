"""The CPU backend: numpy arrays in, compiled kernels (fastconv._C) or numpy run, numpy arrays
out. It implements every op of fastconv.backend.BACKEND_OPS with the signatures fastconv.cuda
has; arguments arrive validated and normalised by fastconv.functional (or nn / optim)."""
from __future__ import annotations

import math

import numpy as np

from fastconv import _C, _algorithm
from fastconv._algorithm import WINOGRAD_TILES
from fastconv._geometry import adaptive_bins
from fastconv._validate import check_out  # noqa: F401 (a backend op: functional checks out= through it)


# The Winograd tiles built per kernel size (csrc/conv/winograd/winograd_matrices.h): the names
# mean output tile m x m whatever the kernel; F(6x6, 5x5) is not built (alpha 10 needs points of
# magnitude 3 and 1/3, past a useful fp32 accuracy).
WINOGRAD_KERNEL_TILES = {3: ("winograd_f2", "winograd_f4", "winograd_f6"), 5: ("winograd_f2", "winograd_f4")}


def choose_algorithm(requested, in_shape, w_shape, geometry, *, input_grad=False, weights_reused=False,
                     weight_grad=False):
    """The convolution algorithm to run for this shape: "direct" or "winograd_f2/f4/f6"
    (fastconv._algorithm.choose, with this backend's cost model, _heuristic). Winograd runs 3x3
    and 5x5 kernels (WINOGRAD_KERNEL_TILES); the weight gradient of a 5x5 kernel validates a
    Winograd request, then runs direct (the Winograd weight gradient is 3x3 only).

    in_shape is the (N, C, H, W) of the forward input (also for the input gradient, which
    for 3x3 stride 1 is itself a 3x3 stride-1 convolution of grad_output). weights_reused: the
    caller keeps the transformed weights between calls (nn.Conv2d does), so the weight
    transform is not paid per call. weight_grad: choose for the weight gradient
    (_weight_grad_heuristic), which Winograd runs at any padding.

    The answer is remembered per (request, shapes, geometry, flags, active ISA, thread count):
    running the cost model took ~5 us, as much as a small kernel. Everything the model reads
    is in the key (the ISA picks _DIRECT_ISA_FACTOR; the thread count is there so a model that
    comes to depend on it stays right); a request that raises is not remembered."""
    key = (requested, tuple(in_shape), tuple(w_shape), geometry, input_grad, weights_reused, weight_grad,
           _C.active_isa(), _C.get_num_threads())
    algorithm = _CHOICES.get(key)
    if algorithm is None:
        r = w_shape[2]
        tiles = WINOGRAD_KERNEL_TILES.get(r, WINOGRAD_TILES)
        backend = "CPU" if r == 3 else f"CPU ({r}x{r} kernels)"
        sizes = tuple(WINOGRAD_KERNEL_TILES)
        if weight_grad:
            algorithm = _algorithm.choose(requested, w_shape, geometry, False, tiles=tiles, backend=backend,
                                          kernel_sizes=sizes,
                                          cheapest=lambda allow_direct: _weight_grad_heuristic(
                                              in_shape, w_shape, geometry, allow_direct))
            if r != 3:
                algorithm = "direct"
        else:
            algorithm = _algorithm.choose(requested, w_shape, geometry, input_grad, tiles=tiles, backend=backend,
                                          kernel_sizes=sizes,
                                          cheapest=lambda allow_direct: _heuristic(in_shape, w_shape, geometry,
                                                                                   input_grad, allow_direct,
                                                                                   weights_reused))
        if len(_CHOICES) >= _CHOICES_LIMIT:  # a bound for programs that sweep many shapes
            _CHOICES.clear()
        _CHOICES[key] = algorithm
    return algorithm


_CHOICES = {}
_CHOICES_LIMIT = 4096


def _heuristic(in_shape, w_shape, geometry, input_grad, allow_direct=True, weights_reused=False):
    """Direct or a Winograd tile for a 3x3 stride-1 conv, by a cost model fitted to 2-thread
    times of the 18 issue-9 shapes (VGG-16's nine 3x3 layers at batch 1 / 224 and batch 8 / 56),
    each with direct, F(2,3), F(4,3), F(6,3): the forward with and without cached transformed
    weights and the input gradient (`bench/bench_conv_algorithms.py --ops forward input` measures
    them; see the constants for the latest check). Time in ms, per group:
      direct   = _DIRECT * MACs32 * sqrt(max(1, 16 / min(Cg, Kg)))  (thin GEMMs run slower); MACs32
                 counts the N*OH*OW output pixels rounded up to 32-column panels, as tiles32 below
                 (small maps run as one GEMM over all pixels, direct_batched.cpp)
               + _DIRECT_WEIGHT_PACK * K C R S            packing the weights into GEMM panels
      winograd = _GEMM * alpha^2 K C tiles32         element-wise GEMMs; tiles32 = tiles rounded
                                                     up to the micro-kernel's 32-column panels
               + _TRANSFORM * alpha^3 tiles (C + K)  input and output transforms
               + _WEIGHT * alpha^2 K C               weight transform (fused into the GEMMs of
                                                     deep layers; read from U when reused)
    With weights_reused the last term uses _WEIGHT_REUSED, and for an input gradient that runs the
    blocked driver (dx_blocked) _DX_WEIGHT_BLOCKED. The alpha-8 tiles (F(6,3), F(4,5)) get a 5%
    handicap: they are the least accurate and rarely much faster. 5x5 kernels use the same terms
    with 25 taps and alpha = m + 4 (their tiles: WINOGRAD_KERNEL_TILES).
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
    r = w_shape[2]
    macs32 = kg * cg * r * r * -(-(n * oh * ow) // 32) * 32
    best, best_t = "direct", float("inf")
    weight_cost = _WEIGHT_REUSED if weights_reused else _WEIGHT
    if allow_direct:
        best_t = (_DIRECT * _DIRECT_ISA_FACTOR.get(_C.active_isa(), 1.0) * macs32 * max(1.0, 16.0 / min(cg, kg)) ** 0.5
                  + _DIRECT_WEIGHT_PACK * kg * cg * r * r)
    for name in WINOGRAD_KERNEL_TILES[r]:
        m = WINOGRAD_TILES[name]
        a = m + r - 1
        tiles = n * -(-oh // m) * -(-ow // m)
        tiles32 = -(-tiles // 32) * 32
        blocked = input_grad and dx_blocked(n, h, w, m, r)
        # Few tiles run the tile-rows driver (winograd.cpp; the input gradient's blocked driver
        # hands them to it), which pads tiles to 8- or 12-row panels and kg to its columns.
        rows_work = 0 if weights_reused else _C.winograd_tile_rows(tiles, kg)
        if rows_work:
            tiles32, blocked = rows_work / kg, False
        wc = _DX_WEIGHT_BLOCKED if blocked else weight_cost
        t = _GEMM * a * a * kg * cg * tiles32 + _TRANSFORM * a ** 3 * tiles * (cg + kg) + wc * a * a * kg * cg
        if a == 8:
            t *= 1.05
        if t < best_t:
            best, best_t = name, t
    return best


# Cost-model constants (ms per unit; see _heuristic), fitted (single-thread) on the AVX-512 Xeon of
# issue 9 after the Winograd driver gained fused weight transforms and register-resident
# transforms. Rechecked after the element-major driver, the vectorised tile gathers and the
# transposed batched GEMM (winograd.cpp, winograd_kernels.inc, direct_batched.cpp) on a 2-thread
# `bench/bench_conv_algorithms.py --ops forward input` run (2026-12-02): auto picked the fastest
# forward on all 18 shapes, was within 1.07x of the fastest with reused weights (geomean 1.004)
# and within 1.13x for the input gradient (1.007). A refit to an earlier run of the day (--fit, with a
# separate GEMM constant for the element-major driver) chose worse there, so these stay.
_DIRECT = 1.49e-8
# Direct convolution's cost relative to Winograd's by the ISA of the micro-kernels. On the
# AVX2-only AMD EPYC (Zen 3) of issue 9, side-by-side times of the 512-channel layers at 14x14
# (batch 1), 7x7 and 3x3 (batch 8) put direct 1.7-2.3x slower relative to F(2,3)/F(4,3) than
# the AVX-512 model said (measured before this refit; not re-measured on that machine).
_DIRECT_ISA_FACTOR = {"avx2": 2.0}
# The pixel rounding (MACs32) and this weight-packing term were added for small maps with many
# channels (AlexNet's 3x3 layers at 13x13, batch 1), where the model said direct by < 1% while
# F(2,3) ran 1.1-1.3x faster (1-thread minima, loaded 2-core AVX-512 EPYC, 2026-12-07). The
# constant is not fitted: it is ~1/4 of _WEIGHT's per-filter cost at F(2,3) (a transpose-pack of
# R*S values against Winograd's transpose, copy and alpha^2-value transform). Neither changes
# auto's choice on issue 9's 18 VGG-16 shapes (forward, reused weights, input gradient).
_DIRECT_WEIGHT_PACK = 5e-8
_GEMM = 2.19e-8
_TRANSFORM = 5.9e-8
_WEIGHT = 1.28e-7
# Reading cached transformed weights (U is 4x the filters at F(4,3), read from memory). Fitted
# before the element-major driver, which cached U lets wide layers use at any tile count, made
# reuse worth 5-35% on them; the model has no term for that, but its choices with reuse were
# still the fastest or within 1.07x on the recheck above.
_WEIGHT_REUSED = 1.07e-7
# The weight-transform cost of the input gradient's blocked driver (winograd_input_grad.cpp), which
# makes each transformed-weight panel just before its GEMMs instead of writing and re-reading all
# alpha^2 K C values; it runs while the tiles fit one of its 64-tile blocks (more would repeat the
# transform per block), see dx_blocked. Chosen to minimise auto's loss against the fastest
# algorithm over `bench/bench_conv_algorithms.py --ops input` runs; rechecked with the
# forward constants above on a quiet run (2026-12-02): auto within 1.06x of the fastest input
# gradient on every shape, geomean 1.008.
_DX_WEIGHT_BLOCKED = 5e-7
_DX_BLOCKED_TILES = 64


def dx_blocked(n, h, w, m, r=3):
    """Whether the Winograd input gradient of an (n, ., h, w) input at tile m of an r x r kernel
    runs the blocked driver: for 3x3 kernels (the only ones it has) when its
    n * ceil(h / m) * ceil(w / m) tiles fit one 64-tile block."""
    return r == 3 and n * -(-h // m) * -(-w // m) <= _DX_BLOCKED_TILES


def _weight_grad_heuristic(in_shape, w_shape, geometry, allow_direct=True):
    """Direct or a Winograd tile for the weight gradient of a 3x3 stride-1 conv, by a cost model
    fitted to 2-thread times of direct / F(2,3) / F(4,3) / F(6,3) on issue 9's 18 shapes
    (`bench/bench_conv_algorithms.py --ops weight --fit` measures and refits it). Time in ms, per group:
      direct   = _WG_DIRECT * MACs * sqrt(max(1, 16 / min(Cg, Kg)))
      winograd = _WG_GEMM * alpha^2 K C tiles                    the alpha^2 GEMMs over tiles
               + _WG_TRANSFORM * alpha^3 tiles (C + K)           input and grad_output transforms
               + _WG_FIXED * alpha^2 K C * ceil(tiles / block)   writing and re-reading Mw per block
    """
    n, c, h, w = in_shape
    k = w_shape[0]
    g = geometry.groups
    oh, ow = geometry.out_hw
    cg, kg = c // g, k // g
    best, best_t = "direct", float("inf")
    if allow_direct:
        macs = n * kg * cg * 9 * oh * ow
        best_t = _WG_DIRECT * macs * max(1.0, 16.0 / min(cg, kg)) ** 0.5
    for m in (2, 4, 6):
        a = m + 2
        tiles = n * -(-oh // m) * -(-ow // m)
        blocks = -(-tiles // _C.winograd_weight_grad_block(m, kg, cg, max(tiles, 1)))  # an empty batch: 0
        t = (_WG_GEMM * a * a * kg * cg * tiles + _WG_TRANSFORM * a ** 3 * tiles * (cg + kg)
             + _WG_FIXED * a * a * kg * cg * blocks)
        if t < best_t:
            best, best_t = f"winograd_f{m}", t
    return best


# Weight-gradient constants (ms per unit; see _weight_grad_heuristic): `bench/bench_conv_algorithms.py
# --ops weight --fit` on a quiet 2-core AVX-512 Xeon (2026-12-02, after the vectorised Winograd
# tile gathers; Winograd times taken relative to direct's on the same shape). Winograd's median
# model error 6%, worst 40%. F(6,3) has no handicap here (the forward's 5% made auto take F(4,3)
# or direct at 64-128 channels @112-224, 1.3-1.5x slower than F(6,3)); with these constants auto
# was within 1.22x of the fastest weight gradient on every shape of that run, geomean 1.011.
_WG_DIRECT = 7.56e-9
_WG_GEMM = 7.85e-9
_WG_TRANSFORM = 1.14e-7
_WG_FIXED = 1.82e-7


def _pad_extra(x, extra):
    if extra == (0, 0):
        return x
    return np.pad(x, ((0, 0), (0, 0), (0, extra[0]), (0, extra[1])))


def conv2d(x, w, bias, g, algorithm, out):
    return _conv2d(x, w, bias, g, algorithm, out, None)


def conv2d_relu(x, w, bias, g, algorithm, out):
    """relu(conv2d(...)), the ReLU in the conv's output epilogue (one pass over the output)."""
    return _conv2d(x, w, bias, g, algorithm, out, conv_epilogue_kwargs("relu", None, None, False))


def _conv2d(x, w, bias, g, algorithm, out, epilogue):
    """conv2d, then the output epilogue (None, or its keyword arguments for the native call: act,
    lo, hi, residual, residual_after_act; conv_epilogue_kwargs) in the same call. conv2d keeps
    the signature fastconv.backend's ops share with the CUDA backend."""
    x = np.ascontiguousarray(_pad_extra(x, g.extra_pad))
    bias = None if bias is None else np.ascontiguousarray(bias)
    if not isinstance(w, WinogradWeights):
        w = np.ascontiguousarray(w)
    out_channels = w.weight_shape[0] if isinstance(w, WinogradWeights) else w.shape[0]
    y = out if out is not None else np.empty((x.shape[0], out_channels) + g.out_hw, x.dtype)
    _kernel_call(x, w, g, algorithm, y)(x, w, bias, y, epilogue)
    return y


def _kernel_call(x, w, g, algorithm, y):
    """The native call _conv2d makes for these arrays (x padded by g.extra_pad and C-contiguous,
    w C-contiguous or WinogradWeights, y the output), as a callable (x, w, bias, out, epilogue=None,
    packed=None) with the kernel chosen now; packed (pack_forward_weights' keyword arguments) only
    reaches the direct kernel, the one call whose `packs_weights` attribute is True."""
    if isinstance(w, WinogradWeights):
        tile, kernel = w.tile, w.weight_shape[2]
        return lambda x, w, bias, out, epilogue=None, packed=None: _C.conv2d_winograd(
            x, None, w.data, w.layout, bias, out, g.padding, g.groups, tile, kernel_size=kernel, **(epilogue or {}))
    algo = choose_algorithm(algorithm, x.shape, w.shape, g)
    if algo == "direct" and algorithm == "auto" and _polyphase_winograd(x, w, y, g):
        return lambda x, w, bias, out, epilogue=None, packed=None: _C.conv2d_polyphase_winograd(
            x, w, bias, out, g.stride, g.padding, g.groups, 4, **(epilogue or {}))
    if algo == "direct":
        def direct(x, w, bias, out, epilogue=None, packed=None):
            _C.conv2d_direct(x, w, bias, out, g.stride, g.padding, g.dilation, g.groups, **(epilogue or {}),
                             **(packed or {}))
        direct.packs_weights = True
        return direct
    tile = WINOGRAD_TILES[algo]
    return lambda x, w, bias, out, epilogue=None, packed=None: _C.conv2d_winograd(
        x, w, None, (0, 0), bias, out, g.padding, g.groups, tile, kernel_size=w.shape[2], **(epilogue or {}))


def conv2d_runner(x, w, g, algorithm, out):
    """A callable (x, w, bias, out, epilogue=None, packed=None) that runs _conv2d(x, w, bias, g,
    algorithm, out, epilogue) for arrays with these shapes, dtypes and strides, its kernel chosen
    now: for callers that run one validated signature many times (the compiled plans' conv
    steps), where choosing again, the contiguity copies' checks and the Python frames between
    cost more than a small layer's kernel. Arrays _conv2d would pad or copy first keep going
    through it. Where the runner's `packs_weights` is True, packed may carry the weights packed
    once by pack_forward_weights (for these shapes and w; the caller keeps them in step with w)."""
    if g.extra_pad != (0, 0) or out is None or not x.flags.c_contiguous or (
            not isinstance(w, WinogradWeights) and not w.flags.c_contiguous):
        return lambda x, w, bias, out, epilogue=None, packed=None: _conv2d(x, w, bias, g, algorithm, out, epilogue)
    return _kernel_call(x, w, g, algorithm, out)


def pack_forward_weights(x, w, g, out, bias):
    """The weights w packed once for a conv2d_runner whose packs_weights is True, with these
    shapes and with (bias=True) or without a bias: the keyword arguments to pass as its packed,
    or None where its path packs no weights (depthwise). A copy: it goes stale if w changes."""
    made = _C.conv2d_pack_forward_weights(x, w, out, g.stride, g.padding, g.dilation, g.groups, bias)
    return None if made is None else {"packed": made[0], "packed_layout": made[1]}


def conv_epilogue_kwargs(act, bounds, residual, residual_after_act):
    """The native conv calls' output-epilogue keyword arguments (csrc/elementwise/epilogue.h) for
    activation `act` (epilogue's names: None, "relu", "clamp", "silu") with clamp bounds, and a
    residual (an array of the output's shape and dtype, C-contiguous, or None)."""
    lo, hi = bounds if bounds is not None else (0.0, 0.0)
    return {"act": _EPILOGUE_CODES[act], "lo": lo, "hi": hi, "residual": residual,
            "residual_after_act": residual_after_act}


def _polyphase_winograd(x, w, y, g):
    """Whether auto runs this conv (each pass; x, w, y as for the forward) as Winograd F(4,3) on
    the phase images of its input: a strided conv the direct paths decompose into phases
    (csrc/conv/strided/polyphase.h) with 3x3 phase kernels, e.g. AlexNet's 11x11 stride 4 (3x3
    on 48 channels: forward 2.2x, input gradient 2.2x, weight gradient 1.5x faster than direct
    on the phases, one thread; ~1e-5 relative error, as F(4,3) on a 3x3 layer)."""
    (sh, sw), (r, s) = g.stride, w.shape[2:]
    if (sh, sw) == (1, 1) or -(-r // sh) != 3 or -(-s // sw) != 3:
        return False
    return _C.conv2d_direct_path(x, w, y, g.stride, g.padding, g.dilation, g.groups, "forward") == "polyphase"


def conv2d_input(input_shape, w, dy, g, algorithm, out):
    n, c, h, wd = input_shape
    padded = (n, c, h + g.extra_pad[0], wd + g.extra_pad[1])
    w = np.ascontiguousarray(w)
    dy = np.ascontiguousarray(dy)
    direct_out = out if (out is not None and padded == tuple(input_shape)) else None
    dx = direct_out if direct_out is not None else np.empty(padded, dy.dtype)
    algo = choose_algorithm(algorithm, padded, w.shape, g, input_grad=True)
    if algo == "direct" and algorithm == "auto" and _polyphase_winograd(dx, w, dy, g):
        _C.conv2d_polyphase_winograd_input_grad(dy, w, dx, g.stride, g.padding, g.groups, 4)
    elif algo == "direct":
        _C.conv2d_direct_input_grad(dy, w, dx, g.stride, g.padding, g.dilation, g.groups)
    else:
        m = WINOGRAD_TILES[algo]
        _C.conv2d_winograd_input_grad(dy, w, dx, g.padding, g.groups, m,
                                      dx_blocked(n, padded[2], padded[3], m, w.shape[2]))
    if padded != tuple(input_shape):
        dx = dx[:, :, :h, :wd]
        if out is not None:
            out[...] = dx
            return out
        return np.ascontiguousarray(dx)
    return dx


class WinogradWeights:
    """Weights of a 3x3 or 5x5 convolution transformed once for Winograd F(tile x tile, r x r), to
    be passed to fastconv.functional.conv2d in place of the weight (see functional.winograd_weights).

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
        return self.tile + self.weight_shape[2] - 1

    def unpacked(self):
        """U as a (groups, alpha^2, K/groups, C/groups) array (a copy)."""
        k, cg = self.weight_shape[:2]
        kg, (mr, kc) = k // self.groups, self.layout
        slabs = self.data.reshape(self.groups, self.alpha ** 2, -1)  # one packed (kg, cg) matrix each
        return slabs[:, :, _C.packed_a_offsets(kg, cg, mr, kc)]

    def __repr__(self):
        return (f"WinogradWeights(tile={self.tile}, weight_shape={self.weight_shape}, groups={self.groups}, "
                f"dtype={self.dtype})")


def winograd_weights(weight, tile, groups):
    """A WinogradWeights of a validated 3x3 weight (functional.winograd_weights checks it)."""
    return WinogradWeights(weight, tile, groups)


def conv2d_weight(x, weight_shape, dy, g, algorithm, out):
    x = np.ascontiguousarray(_pad_extra(x, g.extra_pad))
    dy = np.ascontiguousarray(dy)
    dw = out if out is not None else np.empty(weight_shape, x.dtype)
    algo = choose_algorithm(algorithm, x.shape, weight_shape, g, weight_grad=True)
    if algo == "direct" and algorithm == "auto" and _polyphase_winograd(x, dw, dy, g):
        _C.conv2d_polyphase_winograd_weight_grad(x, dy, dw, g.stride, g.padding, g.groups, 4)
    elif algo == "direct":
        _C.conv2d_direct_weight_grad(x, dy, dw, g.stride, g.padding, g.dilation, g.groups)
    else:
        _C.conv2d_winograd_weight_grad(x, dy, dw, g.padding, g.groups, WINOGRAD_TILES[algo])
    return dw


# np.ascontiguousarray turns a 0-d array into shape (1,); the element-wise kernels see flat
# arrays, so results are reshaped back to the caller's shape.

def relu(x):
    shape = x.shape
    x = np.ascontiguousarray(x)
    y = np.empty_like(x)
    _C.relu(x, y)
    return y.reshape(shape)


def relu_backward(dy, y):
    shape = dy.shape
    dy, y = np.ascontiguousarray(dy), np.ascontiguousarray(y)
    dx = np.empty_like(dy)
    _C.relu_backward(dy, y, dx)
    return dx.reshape(shape)


_EPILOGUE_CODES = {None: 0, "relu": 1, "clamp": 2, "silu": 3}


def epilogue(x, scale, bias, residual, act, residual_after_act, bounds, out):
    """out = act(x * scale + bias (+ residual)) in one pass (csrc/elementwise/epilogue.cpp)."""
    x = np.ascontiguousarray(x)
    y = out if out is not None else np.empty_like(x)
    lo, hi = bounds if bounds is not None else (0.0, 0.0)
    _C.epilogue(x, None if scale is None else np.ascontiguousarray(scale),
                None if bias is None else np.ascontiguousarray(bias),
                None if residual is None else np.ascontiguousarray(residual),
                _EPILOGUE_CODES[act], residual_after_act, lo, hi, y)
    return y


def max_pool2d(x, g, out, indices=True):
    """(y, idx); idx None where indices=False (a kernel without the index selects: inference)."""
    x = np.ascontiguousarray(x)
    shape = x.shape[:2] + g.out_hw
    y = out if out is not None else np.empty(shape, x.dtype)
    idx = np.empty(shape, np.int64) if indices else None
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


# ---------------------------------------------------------------------------- adaptive pooling
# Window loops in numpy, vectorised over (N, C): adaptive pooling sits once at the end of a
# feature extractor, and evenly dividing sizes take the compiled avg_pool2d path instead.

def adaptive_avg_pool2d(x, output_size):
    (bh, bw), y = _adaptive_windows(x.shape, output_size), np.empty(x.shape[:2] + output_size, x.dtype)
    for i, (h0, h1) in enumerate(bh):
        for j, (w0, w1) in enumerate(bw):
            y[:, :, i, j] = x[:, :, h0:h1, w0:w1].mean(axis=(2, 3))
    return y


def adaptive_avg_pool2d_backward(dy, input_shape):
    (bh, bw), dx = _adaptive_windows(input_shape, dy.shape[2:]), np.zeros(input_shape, dy.dtype)
    for i, (h0, h1) in enumerate(bh):
        for j, (w0, w1) in enumerate(bw):
            dx[:, :, h0:h1, w0:w1] += dy[:, :, i:i + 1, j:j + 1] / ((h1 - h0) * (w1 - w0))
    return dx


def adaptive_max_pool2d(x, output_size):
    """(values, int64 flat h*W + w indices); as torch's CPU kernel, the first maximum of a
    window wins and a NaN replaces any running maximum (so the last NaN wins)."""
    n, c, h, w = x.shape
    (bh, bw) = _adaptive_windows(x.shape, output_size)
    y = np.empty((n, c) + tuple(output_size), x.dtype)
    idx = np.empty((n, c) + tuple(output_size), np.int64)
    for i, (h0, h1) in enumerate(bh):
        for j, (w0, w1) in enumerate(bw):
            window = x[:, :, h0:h1, w0:w1].reshape(n, c, (h1 - h0) * (w1 - w0))
            nan = np.isnan(window)
            last_nan = window.shape[2] - 1 - np.argmax(nan[:, :, ::-1], axis=2)
            pick = np.where(nan.any(axis=2), last_nan, np.argmax(window, axis=2))
            y[:, :, i, j] = np.take_along_axis(window, pick[:, :, None], axis=2)[:, :, 0]
            ww = w1 - w0
            idx[:, :, i, j] = (h0 + pick // ww) * w + w0 + pick % ww
    return y, idx


def _adaptive_windows(in_shape, output_size):
    return adaptive_bins(in_shape[2], output_size[0]), adaptive_bins(in_shape[3], output_size[1])


# ---------------------------------------------------------------------------- dropout, softmax

def dropout_mask_mul(x, p, rng):
    """(x * mask, mask) with mask = Bernoulli(1-p) / (1-p) drawn from rng (all zeros for p = 1)."""
    if p == 1.0:
        mask = np.zeros_like(x)
    else:
        scale = np.array(1.0 / (1.0 - p), x.dtype)
        mask = (rng.random(x.shape, dtype=np.float32) >= p).astype(x.dtype) * scale
    return x * mask, mask


def softmax_backward(dy, y, dim):
    """d softmax: y * (g - sum(g * y, dim))."""
    return y * (dy - (dy * y).sum(axis=dim, keepdims=True))


def log_softmax_backward(dy, y, dim):
    """d log_softmax: g - softmax * sum(g, dim), with softmax = exp(y)."""
    return dy - np.exp(y) * dy.sum(axis=dim, keepdims=True)


# ---------------------------------------------------------------------------- cross-entropy
# Both target kinds reduce to one form: loss_i = -sum_c q[i, c] * log_softmax(x)[i, c] with
# per-position class coefficients q, so d loss_i / d x[i, c] = sum_c' q[i, c'] * p[i, c] - q[i, c]
# (p = softmax(x)). Class axis 1; positions are N and any trailing dims. Class indices never
# build q: it is (1-ls) * w[t] at the target class plus ls/C * w everywhere (zero where t ==
# ignore_index), so the target's term is gathered / scattered at t and the smoothing term is a
# plain weighted sum (a one-hot q cost as much as the rest of a small batch's loss).

def cross_entropy_coefficients(x, target, weight, ignore_index, label_smoothing):
    """(q like x, divisor of reduction='mean') for class-probability targets, as torch's
    cross_entropy defines them: q = ((1-ls) * t + ls/C) * w, mean divides by the number of positions."""
    c = x.shape[1]
    w_b = 1 if weight is None else weight.reshape((1, c) + (1,) * (x.ndim - 2))
    q = ((1 - label_smoothing) * target + label_smoothing / c) * w_b
    return q.astype(x.dtype, copy=False), x.size // c if c else 0


def _index_terms(x, target, weight, ignore_index):
    """For class-index targets: (t[:, None] with ignored positions at class 0, keep (1 or 0), w[t] * keep,
    both in x's dtype); the mean of reduction='mean' divides by the sum of the last."""
    kept = target != ignore_index
    safe = np.where(kept, target, 0)[:, None]
    keep = kept.astype(x.dtype)
    wt = keep if weight is None else weight[safe[:, 0]] * keep
    return safe, keep, wt


def _smoothing_sum(a, weight):
    """sum_c w_c * a[:, c] (w = 1 without weight)."""
    if weight is None:
        return a.sum(axis=1)
    return (a * weight.reshape((1, -1) + (1,) * (a.ndim - 2))).sum(axis=1)


def _mean(loss_sum, divisor):
    with np.errstate(invalid="ignore", divide="ignore"):  # nothing kept: 0/0 = NaN, as torch
        return loss_sum / divisor


def cross_entropy(x, target, weight, ignore_index, reduction, label_smoothing):
    lp = log_softmax(x, 1)
    if target.dtype.kind == "f":
        q, divisor = cross_entropy_coefficients(x, target, weight, ignore_index, label_smoothing)
        losses = -(q * lp).sum(axis=1)
    else:
        safe, keep, wt = _index_terms(x, target, weight, ignore_index)
        losses = -(1 - label_smoothing) * wt * np.take_along_axis(lp, safe, axis=1)[:, 0]
        if label_smoothing:
            losses -= (label_smoothing / x.shape[1]) * keep * _smoothing_sum(lp, weight)
        divisor = wt.sum()
    if reduction == "none":
        return losses
    total = losses.sum()
    return total if reduction == "sum" else _mean(total, divisor).astype(x.dtype)


def cross_entropy_backward(x, target, weight, ignore_index, reduction, label_smoothing, grad_output):
    p = softmax(x, 1)
    if target.dtype.kind == "f":
        q, divisor = cross_entropy_coefficients(x, target, weight, ignore_index, label_smoothing)
        grad = q.sum(axis=1, keepdims=True) * p - q
    else:
        safe, keep, wt = _index_terms(x, target, weight, ignore_index)
        c, ls = x.shape[1], label_smoothing
        target_coef = (1 - ls) * wt  # q at the target class, less the smoothing part
        q_sum = target_coef
        if ls:
            w_sum = c if weight is None else weight.sum()
            q_sum = target_coef + (ls / c) * w_sum * keep
        grad = q_sum[:, None] * p
        if ls:
            w_b = 1 if weight is None else weight.reshape((1, c) + (1,) * (x.ndim - 2))
            grad -= ((ls / c) * keep[:, None]) * w_b
        at_t = np.take_along_axis(grad, safe, axis=1)
        np.put_along_axis(grad, safe, at_t - target_coef[:, None], axis=1)
        grad = grad.astype(x.dtype, copy=False)
        divisor = wt.sum()
    if grad_output is None:  # d loss / d loss = 1
        grad_output = np.ones(x.shape[:1] + x.shape[2:] if reduction == "none" else (), x.dtype)
    g = np.asarray(grad_output, x.dtype)
    if reduction == "mean":  # nothing kept: every q is 0 and so is the gradient (not NaN), as torch
        g = (g / divisor).astype(x.dtype) if divisor else np.zeros_like(g)
    if reduction == "none":
        g = g[:, None]
    return grad * g


def log_softmax(x, dim):
    if x.size == 0:
        return np.empty_like(x)
    shifted = x - np.max(x, axis=dim, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=dim, keepdims=True))


def softmax(x, dim):
    if x.size == 0:
        return np.empty_like(x)
    e = np.exp(x - np.max(x, axis=dim, keepdims=True))
    return e / np.sum(e, axis=dim, keepdims=True)


# ---------------------------------------------------------------------------- dense ops (numpy BLAS)

def linear(x, w, b):
    """x (rows, in) @ w.T (+ b)."""
    if few_rows_linear(x, w, b):
        y = np.empty((x.shape[0], w.shape[0]), x.dtype)
        _C.linear_few_rows(x, w, b, y)
        return y
    y = x @ w.T
    if b is not None:
        y += b
    return y


def linear_backward(x, w, dy, needs_bias):
    """(grad_input, grad_weight, grad_bias or None) for x (rows, in), dy (rows, out)."""
    gb = dy.sum(axis=0) if needs_bias else None
    if few_rows_linear(x, w, dy):
        gx, gw = np.empty_like(x), np.empty_like(w)
        _C.linear_backward_few_rows(x, w, dy, gx, gw, False)
        return gx, gw, gb
    return dy @ w, dy.T @ x, gb


def few_rows_linear(x, w, other):
    """Whether linear / linear_backward run fastconv's own kernels on these arrays (x (rows, in),
    w (out, in), other: the bias or grad_output, or None): 1-8 rows, C-contiguous, one float
    dtype. Those read (forward, input gradient) or write (weight gradient) every weight once,
    streamed on fastconv's threads (csrc/dense/linear_few_rows.cpp says why: through BLAS,
    VGG-16's 411 MB classifier evicted the convolutions' data, and a forward took 150 ms instead
    of 110; in training fit() holds BLAS to one thread). Small layers too: numpy's OpenBLAS
    workers busy-wait for milliseconds after each call, one more spinning thread than there are
    cores beside fastconv's or torch's (ResNet-18's 2 MB head made every later step of a compiled
    forward wait for a core). More rows go to numpy's BLAS."""
    return (1 <= x.shape[0] <= _FEW_ROWS and x.dtype == w.dtype and x.dtype in (np.float32, np.float64)
            and x.flags.c_contiguous and w.flags.c_contiguous
            and (other is None or (other.dtype == w.dtype and other.flags.c_contiguous)))


_FEW_ROWS = 8


def bias_grad(dy):
    """Sum of grad_output over every axis but 1: (N, K, H, W) -> (K,), or (N, K) -> (K,)."""
    if dy.ndim == 4:
        # sum the contiguous H*W axis first (one reduction, no temporary transpose)
        return dy.reshape(dy.shape[0], dy.shape[1], -1).sum(axis=2).sum(axis=0)
    return dy.sum(axis=0)


def sigmoid(x):
    # split by sign so exp never overflows
    out = np.empty_like(x)
    pos = x >= 0
    out[pos] = 1 / (1 + np.exp(-x[pos]))
    e = np.exp(x[~pos])
    out[~pos] = e / (1 + e)
    return out


def sigmoid_backward(dy, y):
    return dy * y * (1 - y)


def tanh(x):
    return np.tanh(x)


def tanh_backward(dy, y):
    return dy * (1 - y * y)


def mse_loss(input, target, reduction):
    """(loss, diff = input - target); loss a Python float, mean over every element or summed."""
    diff = input - target
    s = float(np.sum(diff * diff))
    return (s / diff.size if reduction == "mean" else s), diff


def mse_backward(diff, reduction):
    g = 2 * diff
    return g / g.size if reduction == "mean" else g


# ---------------------------------------------------------------------------- array helpers

def mul(a, b):
    return a * b


def accumulate(acc, g):
    """acc += g in place; returns acc."""
    acc += g
    return acc


def copy_into(dst, src):
    """Overwrite dst's contents with src; returns dst (same identity)."""
    dst[...] = src
    return dst


def cast(a, dtype):
    """A copy of a converted to dtype."""
    return a.astype(dtype)


def zeros_like(a):
    return np.zeros_like(a)


# ---------------------------------------------------------------------------- optimizer updates
# In place on the parameter and its state, torch.optim semantics (weight decay as L2 on the
# gradient); the CUDA backend runs the same arithmetic as one fused kernel per parameter.

def sgd_step(p, grad, buf, lr, momentum, dampening, weight_decay, nesterov, first):
    """torch.optim.SGD on p: buf (momentum buffer, None without momentum) becomes g on the first step."""
    if _fused_update_ok(p, grad, buf):
        _C.sgd_update(p, grad, buf, lr, momentum, dampening, weight_decay, nesterov, first)
        return
    g = grad + weight_decay * p if weight_decay else grad
    if momentum:
        if first:
            buf[...] = g
        else:
            buf *= momentum
            buf += (1 - dampening) * g if dampening else g  # no temporary without dampening
        g = g + momentum * buf if nesterov else buf
    p -= lr * g


def _fused_update_ok(p, *others):
    """The compiled update takes C-contiguous arrays of one float dtype and shape (a parameter
    and its gradient and state almost always are); anything else runs the numpy lines."""
    return p.flags.c_contiguous and p.flags.writeable and p.dtype in (np.float32, np.float64) and all(
        a is None or (type(a) is np.ndarray and a.dtype == p.dtype and a.shape == p.shape and a.flags.c_contiguous)
        for a in others)


def adam_step(p, grad, m, v, lr, b1, b2, c1, c2, eps, weight_decay):
    """torch.optim.Adam on p; c1, c2 are the bias corrections 1 - beta^t."""
    if _fused_update_ok(p, grad, m, v):
        _C.adam_update(p, grad, m, v, lr, b1, b2, c1, c2, eps, weight_decay)
        return
    g = grad + weight_decay * p if weight_decay else grad
    m *= b1
    m += (1 - b1) * g
    v *= b2
    v += (1 - b2) * (g * g)
    denom = (v ** 0.5) / math.sqrt(c2) + eps
    p -= (lr / c1) * m / denom
