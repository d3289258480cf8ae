"""The CUDA backend: Numba CUDA kernels implementing fastconv.backend.BACKEND_OPS, the same
names and signatures as fastconv._cpu (tests/test_backend_interface.py checks it).

fastconv.functional validates arguments, then calls these functions with arrays exposing
``__cuda_array_interface__`` (Numba device arrays, CuPy arrays, PyTorch CUDA tensors); results
are Numba device arrays. Importing this package does not import numba: the kernels modules
load on the first call (``device_info()`` returns None when numba is missing), and each
kernel compiles on its first launch for the dtype it meets (no eager signatures).
Streams: see fastconv.cuda._device.
"""
from __future__ import annotations

import numpy as _np

# numba-cuda 0.30 registers an overload for np.row_stack, which numpy 2.5 removed (it was an
# alias of np.vstack): without it the first kernel compile under such a numpy fails with
# AttributeError. Every fastconv.cuda submodule is imported through this package, so this runs
# before any compile.
if not hasattr(_np, "row_stack"):
    _np.row_stack = _np.vstack

# The Winograd tiles these kernels implement (F(6,3) is CPU-only).
WINOGRAD_TILES = {"winograd_f2": 2, "winograd_f4": 4}


def device_info():
    """None when numba is missing or no usable GPU; else {name, compute_capability, simulator, ...}."""
    try:
        from fastconv.cuda import _device
    except ImportError:
        return None
    return _device.device_info()


def choose_algorithm(requested, in_shape, w_shape, geometry, *, input_grad=False, weights_reused=False,
                     weight_grad=False):
    """'direct' or 'winograd_f2' / 'winograd_f4' (fastconv._algorithm.choose, with the rule below
    as this backend's cost model). weights_reused is accepted for the shared signature; this
    rule does not price the weight transform yet. weight_grad: this backend has no Winograd
    weight gradient, so it validates the request as the forward's (same errors) and answers direct.

    F(4x4,3x3) for 3x3 stride-1 layers with at least 32 channels per group in and out and an
    output of at least 8x8 (where the transforms are amortised and tiles are mostly full),
    direct otherwise; "winograd" means F(4x4,3x3). This threshold is a first guess, not yet
    measured on a GPU: bench/bench_cuda.py times both on the VGG-16 layers.
    """
    from fastconv import _algorithm

    def cheapest(allow_direct):
        g = geometry
        big = w_shape[0] // g.groups >= 32 and w_shape[1] >= 32 and min(g.out_hw) >= 8
        return "winograd_f4" if big or not allow_direct else "direct"

    if weight_grad:
        _algorithm.choose(requested, w_shape, geometry, False, tiles=WINOGRAD_TILES, backend="CUDA",
                          cheapest=lambda allow_direct: "direct")
        return "direct"
    return _algorithm.choose(requested, w_shape, geometry, input_grad, tiles=WINOGRAD_TILES, backend="CUDA",
                             cheapest=cheapest)


def check_out(out, shape, dtype, name="out"):
    """A user-supplied result array: a CUDA array of this shape and dtype, C-contiguous."""
    from fastconv.cuda import _device
    _device.check_out(out, shape, dtype, name)


def winograd_weights(weight, tile, groups):
    """Pre-transformed Winograd weights are a CPU feature (fastconv._cpu.WinogradWeights)."""
    raise TypeError("winograd_weights supports numpy (CPU) weights only")


def _prep(*arrays):
    from fastconv.cuda import _device, elementwise
    names = ("input", "weight", "bias")
    dev = [_device.as_device(a, n) for a, n in zip(arrays, names + ("arg",) * len(arrays))]
    stream = _device.stream_of(*arrays)
    return [None if d is None else elementwise.contiguous(d, stream) for d in dev], stream


def conv2d(x, w, bias, g, algorithm, out):
    from fastconv.cuda import _device, conv_direct, conv_winograd
    (x, w, bias), stream = _prep(x, w, bias)
    algo = choose_algorithm(algorithm, x.shape, w.shape, g)
    shape = (x.shape[0], w.shape[0]) + tuple(g.out_hw)
    y = _device.check_out(out, shape, x.dtype) if out is not None else _device.empty(shape, x.dtype, stream)
    if algo == "direct":
        return conv_direct.conv2d(x, w, bias, g, y, stream)
    return conv_winograd.conv2d(x, w, bias, g, WINOGRAD_TILES[algo], y, stream)


def conv2d_input(input_shape, w, dy, g, algorithm, out):
    from fastconv.cuda import _device, conv_direct, conv_winograd
    (w, dy), stream = _prep(w, dy)
    shape = tuple(input_shape)
    algo = choose_algorithm(algorithm, shape, w.shape, g, input_grad=True)
    dx = _device.check_out(out, shape, dy.dtype) if out is not None else _device.empty(shape, dy.dtype, stream)
    if algo == "direct":
        return conv_direct.conv2d_input(shape, w, dy, g, dx, stream)
    return conv_winograd.conv2d_input(shape, w, dy, g, WINOGRAD_TILES[algo], dx, stream)


def conv2d_weight(x, weight_shape, dy, g, algorithm, out):
    """Direct for every algorithm: a Winograd request is validated (choose_algorithm), then runs
    direct, this backend's only weight-gradient kernel."""
    from fastconv.cuda import _device, conv_direct
    (x, dy), stream = _prep(x, dy)
    shape = tuple(weight_shape)
    choose_algorithm(algorithm, x.shape, shape, g, weight_grad=True)
    dw = _device.check_out(out, shape, x.dtype) if out is not None else _device.empty(shape, x.dtype, stream)
    return conv_direct.conv2d_weight(x, shape, dy, g, dw, stream)


def max_pool2d(x, g, out, indices=True):
    """(y, idx); idx None where indices=False (the kernel writes them regardless)."""
    from fastconv.cuda import _device, pool
    (x,), stream = _prep(x)
    shape = tuple(x.shape[:2]) + tuple(g.out_hw)
    y = _device.check_out(out, shape, x.dtype) if out is not None else _device.empty(shape, x.dtype, stream)
    y, idx = pool.max_pool2d(x, g, y, stream)
    return y, idx if indices else None


def max_pool2d_backward(dy, indices, input_shape, out):
    from fastconv.cuda import _device, pool
    (dy, indices), stream = _prep(dy, indices)
    shape = tuple(input_shape)
    dx = _device.check_out(out, shape, dy.dtype) if out is not None else _device.empty(shape, dy.dtype, stream)
    return pool.max_pool2d_backward(dy, indices, dx, stream)


def avg_pool2d(x, g, count_include_pad, divisor_override, out):
    from fastconv.cuda import _device, pool
    (x,), stream = _prep(x)
    shape = tuple(x.shape[:2]) + tuple(g.out_hw)
    y = _device.check_out(out, shape, x.dtype) if out is not None else _device.empty(shape, x.dtype, stream)
    return pool.avg_pool2d(x, g, count_include_pad, divisor_override, y, stream)


def avg_pool2d_backward(dy, input_shape, g, count_include_pad, divisor_override, out):
    from fastconv.cuda import _device, pool
    (dy,), stream = _prep(dy)
    shape = tuple(input_shape)
    dx = _device.check_out(out, shape, dy.dtype) if out is not None else _device.empty(shape, dy.dtype, stream)
    return pool.avg_pool2d_backward(dy, shape, g, count_include_pad, divisor_override, dx, stream)


def linear(x, w, b):
    from fastconv.cuda import dense
    (x, w, b), stream = _prep(x, w, b)
    return dense.linear(x, w, b, stream)


def linear_backward(x, w, dy, needs_bias):
    from fastconv.cuda import dense
    (x, w, dy), stream = _prep(x, w, dy)
    return dense.linear_backward(x, w, dy, needs_bias, stream)


def _unary(name, x):
    from fastconv.cuda import elementwise
    (x,), stream = _prep(x)
    return elementwise.unary(elementwise.KERNELS[name], x, stream)


def _binary(name, dy, y):
    from fastconv.cuda import elementwise
    (dy, y), stream = _prep(dy, y)
    return elementwise.binary(elementwise.KERNELS[name], dy, y, stream)


def epilogue(x, scale, bias, residual, act, residual_after_act, bounds, out):
    from fastconv.cuda import _device, elementwise
    (x, scale, bias, residual), stream = _prep(x, scale, bias, residual)
    out = _device.check_out(out, x.shape, x.dtype)
    return elementwise.epilogue(x, scale, bias, residual, act, residual_after_act, bounds, out, stream)


def conv2d_relu(x, w, bias, g, algorithm, out):
    """relu(conv2d(...)): the conv, then the ReLU kernel (no fused epilogue on the GPU yet)."""
    return relu(conv2d(x, w, bias, g, algorithm, out))


def relu(x):
    return _unary("relu", x)


def sigmoid(x):
    return _unary("sigmoid", x)


def tanh(x):
    return _unary("tanh", x)


def relu_backward(dy, y):
    return _binary("relu_backward", dy, y)


def sigmoid_backward(dy, y):
    return _binary("sigmoid_backward", dy, y)


def tanh_backward(dy, y):
    return _binary("tanh_backward", dy, y)


def softmax(x, dim):
    from fastconv.cuda import dense
    (x,), stream = _prep(x)
    return dense.softmax(x, dim, stream)


def log_softmax(x, dim):
    from fastconv.cuda import dense
    (x,), stream = _prep(x)
    return dense.log_softmax(x, dim, stream)


def _check_cross_entropy(target, weight, ignore_index, x, grad_output=None):
    """The kernels cover (N, C) logits with class-index targets; name what they lack."""
    from fastconv._validate import array_meta
    options = [name for name, unsupported in (
        ("weight", weight is not None), ("ignore_index", ignore_index != -100),
        ("class-probability targets", array_meta(target, "target")[1].kind == "f"),
        ("K-dimensional input (N, C, d1, ...)", len(array_meta(x, "input")[0]) > 2),
        ("grad_output", grad_output is not None)) if unsupported]
    if options:
        raise TypeError(f"cross_entropy on CUDA arrays does not support {', '.join(options)}; use numpy arrays")


def cross_entropy(x, target, weight, ignore_index, reduction, label_smoothing):
    from fastconv.cuda import dense
    _check_cross_entropy(target, weight, ignore_index, x)
    (x, target), stream = _prep(x, target)
    return dense.cross_entropy(x, target, reduction, label_smoothing, stream)


def cross_entropy_backward(x, target, weight, ignore_index, reduction, label_smoothing, grad_output):
    from fastconv.cuda import dense
    _check_cross_entropy(target, weight, ignore_index, x, grad_output)
    (x, target), stream = _prep(x, target)
    return dense.cross_entropy_backward(x, target, reduction, label_smoothing, stream)


def log_softmax_backward(dy, y, dim):
    raise TypeError("log_softmax_backward supports numpy (host) arrays only; there is no CUDA kernel for it")


def adaptive_max_pool2d(x, output_size):
    raise TypeError("adaptive_max_pool2d supports numpy (host) arrays only; there is no CUDA kernel for it")


# ---------------------------------------------------------------------------- training helpers
# Used by fastconv.nn and the optimizers through fastconv.backend.backend_of (kernels in
# fastconv.cuda.training, dense_backward, adaptive_pool, optim). Results are Numba device arrays
# on the inputs' stream.

def _prep_any(*arrays):
    # like _prep, without forcing contiguity (in-place targets must stay the caller's array)
    from fastconv.cuda import _device
    dev = [_device.as_device(a, "arg") for a in arrays]
    return dev, _device.stream_of(*arrays)


def bias_grad(dy):
    from fastconv.cuda import dense_backward
    (dy,), stream = _prep(dy)
    return dense_backward.bias_grad(dy, stream)


def accumulate(acc, g):
    """acc += g in place on the device; returns acc."""
    from fastconv.cuda import training
    (acc_d, g), stream = _prep_any(acc, g)
    training.accumulate(acc_d, g, stream)
    return acc


def mul(a, b):
    from fastconv.cuda import training
    (a, b), stream = _prep(a, b)
    return training.mul(a, b, stream)


def dropout_mask_mul(x, p, rng):
    """(x * mask, mask) with mask = Bernoulli(1-p) / (1-p) (all zeros for p = 1)."""
    from fastconv.cuda import training
    if p == 1.0:
        return zeros_like(x), zeros_like(x)
    (x,), stream = _prep(x)
    return training.dropout_mask_mul(x, p, rng, stream)


def softmax_backward(dy, y, dim):
    from fastconv.cuda import dense_backward
    (dy, y), stream = _prep(dy, y)
    return dense_backward.softmax_backward(dy, y, dim, stream)


def copy_into(dst, src):
    """Overwrite the CUDA array dst with src (host array, or a CUDA array of the same shape)."""
    import numpy as np
    from fastconv.cuda import _device
    d = _device.as_device(dst, "dst")
    if hasattr(src, "__cuda_array_interface__") or getattr(type(src), "__cuda_ndarray__", False):
        s = _device.as_device(src, "src")
        d.copy_to_device(s, stream=_device.stream_of(dst, src))
    else:
        d.copy_to_device(np.ascontiguousarray(src, dtype=np.dtype(d.dtype)), stream=_device.stream_of(dst))
    return dst


def cast(a, dtype):
    """A device copy of a converted to dtype."""
    from fastconv.cuda import training
    (a,), stream = _prep(a)
    return training.cast(a, dtype, stream)


def mse_loss(input, target, reduction):
    """(0-d device loss, device diff = input - target)."""
    from fastconv.cuda import dense_backward
    (input, target), stream = _prep(input, target)
    return dense_backward.mse_loss(input, target, reduction, stream)


def mse_backward(diff, reduction):
    from fastconv.cuda import dense_backward
    (diff,), stream = _prep(diff)
    return dense_backward.mse_backward(diff, reduction, stream)


def adaptive_avg_pool2d(x, output_size):
    from fastconv.cuda import adaptive_pool
    (x,), stream = _prep(x)
    return adaptive_pool.adaptive_avg_pool2d(x, tuple(output_size), stream)


def adaptive_avg_pool2d_backward(dy, input_shape):
    from fastconv.cuda import adaptive_pool
    (dy,), stream = _prep(dy)
    return adaptive_pool.adaptive_avg_pool2d_backward(dy, tuple(input_shape), stream)


def zeros_like(a):
    from fastconv.cuda import elementwise
    (a,), stream = _prep_any(a)
    return elementwise.zeros(a.shape, a.dtype, stream)


def sgd_step(p, grad, buf, lr, momentum, dampening, weight_decay, nesterov, first):
    """Fused torch.optim.SGD update of the CUDA array p in place (and of buf, the momentum buffer)."""
    from fastconv.cuda import optim
    (p, grad, buf), stream = _prep_any(p, grad, buf)
    optim.sgd_step(p, grad, buf, lr, momentum, dampening, weight_decay, nesterov, first, stream)


def adam_step(p, grad, m, v, lr, b1, b2, c1, c2, eps, weight_decay):
    """Fused torch.optim.Adam update of the CUDA array p (and its moments m, v) in place."""
    from fastconv.cuda import optim
    (p, grad, m, v), stream = _prep_any(p, grad, m, v)
    optim.adam_step(p, grad, m, v, lr, b1, b2, c1, c2, eps, weight_decay, stream)
