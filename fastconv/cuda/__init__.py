"""The CUDA backend: Numba CUDA kernels behind the same interface as fastconv._cpu.

fastconv.functional validates arguments, then calls these functions with arrays exposing
``__cuda_array_interface__`` (Numba device arrays, CuPy arrays, PyTorch CUDA tensors); results
are Numba device arrays. Importing this package does not import numba: the kernels modules
load on the first call (``device_info()`` returns None when numba is missing), and each
kernel compiles on its first launch for the dtype it meets (no eager signatures).
Streams: see fastconv.cuda._device.
"""
from __future__ import annotations

ALGORITHMS = ("auto", "direct", "winograd", "winograd_f2", "winograd_f4")
_WINOGRAD_TILE = {"winograd": 4, "winograd_f2": 2, "winograd_f4": 4}


def device_info():
    """None when numba is missing or no usable GPU; else {name, compute_capability, simulator, ...}."""
    try:
        from fastconv.cuda import _device
    except ImportError:
        return None
    return _device.device_info()


def choose_algorithm(requested, w_shape, g, pad_ok=True):
    """'direct' or a Winograd tile size m (2 or 4).

    auto: F(4x4,3x3) for 3x3 stride-1 layers with at least 32 channels per group in and out
    and an output of at least 8x8 (where the transforms are amortised and tiles are mostly
    full), direct otherwise. This threshold is a first guess, not yet measured on a GPU:
    bench/bench_cuda.py times both on the VGG-16 layers.
    """
    if requested not in ALGORITHMS:
        raise ValueError(f"algorithm must be one of {ALGORITHMS} on CUDA, got {requested!r}")
    from fastconv.cuda.conv_winograd import supports
    ok = supports(w_shape, g) and pad_ok
    if requested == "direct":
        return "direct"
    if requested == "auto":
        big = w_shape[0] // g.groups >= 32 and w_shape[1] >= 32 and min(g.out_hw) >= 8
        return 4 if ok and big else "direct"
    if not ok:
        raise ValueError(f"algorithm={requested!r} needs a 3x3 kernel with stride 1 and dilation 1"
                         f"{'' if pad_ok else ' and padding <= 2'}; got kernel {tuple(w_shape[2:])}, "
                         f"stride {g.stride}, dilation {g.dilation}, padding {g.padding}")
    return _WINOGRAD_TILE[requested]


def _prep(*arrays):
    from fastconv.cuda import _device
    names = ("input", "weight", "bias")
    dev = [_device.as_device(a, n) for a, n in zip(arrays, names + ("arg",) * len(arrays))]
    stream = _device.stream_of(*arrays)
    return [None if d is None else _device.contiguous(d, stream) for d in dev], stream


def conv2d(x, w, bias, g, algorithm, out):
    from fastconv.cuda import _device, conv_direct, conv_winograd
    (x, w, bias), stream = _prep(x, w, bias)
    algo = choose_algorithm(algorithm, w.shape, g)
    shape = (x.shape[0], w.shape[0]) + tuple(g.out_hw)
    y = _device.check_out(out, shape, x.dtype) if out is not None else _device.empty(shape, x.dtype, stream)
    if algo == "direct":
        return conv_direct.conv2d(x, w, bias, g, y, stream)
    return conv_winograd.conv2d(x, w, bias, g, algo, y, stream)


def conv2d_input(input_shape, w, dy, g, algorithm, out):
    from fastconv.cuda import _device, conv_direct, conv_winograd
    (w, dy), stream = _prep(w, dy)
    algo = choose_algorithm(algorithm, w.shape, g, pad_ok=max(g.padding) <= 2)
    shape = tuple(input_shape)
    dx = _device.check_out(out, shape, dy.dtype) if out is not None else _device.empty(shape, dy.dtype, stream)
    if algo == "direct":
        return conv_direct.conv2d_input(shape, w, dy, g, dx, stream)
    return conv_winograd.conv2d_input(shape, w, dy, g, algo, dx, stream)


def conv2d_weight(x, weight_shape, dy, g, out):
    from fastconv.cuda import _device, conv_direct
    (x, dy), stream = _prep(x, dy)
    shape = tuple(weight_shape)
    dw = _device.check_out(out, shape, x.dtype) if out is not None else _device.empty(shape, x.dtype, stream)
    return conv_direct.conv2d_weight(x, shape, dy, g, dw, stream)


def max_pool2d(x, g, out):
    from fastconv.cuda import _device, pool
    (x,), stream = _prep(x)
    shape = tuple(x.shape[:2]) + tuple(g.out_hw)
    y = _device.check_out(out, shape, x.dtype) if out is not None else _device.empty(shape, x.dtype, stream)
    return pool.max_pool2d(x, g, y, stream)


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


def cross_entropy(x, target, reduction, label_smoothing):
    from fastconv.cuda import dense
    (x, target), stream = _prep(x, target)
    return dense.cross_entropy(x, target, reduction, label_smoothing, stream)


def cross_entropy_backward(x, target, reduction, label_smoothing):
    from fastconv.cuda import dense
    (x, target), stream = _prep(x, target)
    return dense.cross_entropy_backward(x, target, reduction, label_smoothing, stream)
