"""The public op surface, with torch.nn.functional / torch.nn.grad names and semantics.

Every op validates its arguments once, then dispatches by array type: numpy arrays run the
compiled CPU kernels (fastconv._cpu -> fastconv._C), arrays exposing
``__cuda_array_interface__`` run the Numba CUDA kernels (fastconv.cuda), which implement the
same backend interface. Layout is NCHW for activations and OIHW for weights.
"""
from __future__ import annotations

import numpy as np

from fastconv import _cpu
from fastconv._geometry import conv_geometry, pool_geometry
from fastconv._validate import (array_meta, as_float_array, check_float_dtype, check_ndim,
                                check_out, check_same_dtype, is_cuda_array)

__all__ = [
    "conv2d", "conv2d_input", "conv2d_weight", "max_pool2d", "max_pool2d_backward",
    "avg_pool2d", "avg_pool2d_backward", "linear", "linear_backward", "relu", "relu_backward",
    "sigmoid", "sigmoid_backward", "tanh", "tanh_backward", "softmax", "log_softmax",
    "cross_entropy", "cross_entropy_backward", "winograd_weights", "WinogradWeights", "conv2d_algorithm",
]

WinogradWeights = _cpu.WinogradWeights


def _backend(*arrays):
    """_cpu for numpy arrays, fastconv.cuda for CUDA arrays; mixing them is an error."""
    cuda = [is_cuda_array(a) for a in arrays if a is not None]
    if any(cuda):
        if not all(cuda):
            raise TypeError("arguments mix CUDA arrays and host (numpy) arrays; move them to one device")
        from fastconv import cuda as cuda_backend  # imported lazily: numba is optional
        return cuda_backend
    return _cpu


def _unbatched(shape):
    return len(shape) == 3


def _batch(a):
    return a[None] if isinstance(a, np.ndarray) else a.reshape((1,) + tuple(array_meta(a, "input")[0]))


def _int_shape(size, name, ndim=4):
    try:
        size = tuple(int(v) for v in size)
    except TypeError:
        raise TypeError(f"{name} must be a sequence of {ndim} ints, got {size!r}") from None
    if len(size) != ndim or any(v <= 0 for v in size):
        raise ValueError(f"{name} must be {ndim} positive ints (N, C, H, W), got {size}")
    return size


# ---------------------------------------------------------------------------- convolution

def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, *,
           algorithm="auto", out=None):
    """2-D cross-correlation, as torch.nn.functional.conv2d.

    input (N, C, H, W) or (C, H, W); weight (K, C/groups, R, S); bias (K,) or None.
    padding: int, pair, "valid" or "same". algorithm: "auto", "direct", "winograd" (the tile
    picked for the shape) or "winograd_f2" / "winograd_f4" / "winograd_f6" (3x3, stride 1,
    dilation 1 only; see fastconv._cpu.ALGORITHMS). "auto" picks direct or a Winograd tile by a
    measured cost model. weight may also be a WinogradWeights from winograd_weights() (CPU
    only): the transform is then reused and its tile is used. out: optional result array.
    """
    input = as_float_array(input, "input")
    if isinstance(weight, WinogradWeights):
        return _conv2d_pretransformed(input, weight, bias, stride, padding, dilation, groups, algorithm, out)
    weight = as_float_array(weight, "weight")
    shape, dtype = array_meta(input, "input")
    wshape, wdtype = array_meta(weight, "weight")
    if _unbatched(shape):
        y = conv2d(_batch(input), weight, bias, stride, padding, dilation, groups, algorithm=algorithm,
                   out=None if out is None else _batch(out))
        return y[0]
    check_ndim(shape, 4, "input", "(N, C, H, W)")
    check_ndim(wshape, 4, "weight", "(K, C/groups, R, S)")
    check_same_dtype(dtype, wdtype, "input", "weight")
    if bias is not None:
        bias = as_float_array(bias, "bias")
        bshape, bdtype = array_meta(bias, "bias")
        check_same_dtype(dtype, bdtype, "input", "bias")
        if tuple(bshape) != (wshape[0],):
            raise ValueError(f"bias must have shape ({wshape[0]},), got {tuple(bshape)}")
    g = conv_geometry(shape, wshape, stride, padding, dilation, groups)
    backend = _backend(input, weight, bias)
    if backend is _cpu:
        check_out(out, (shape[0], wshape[0]) + g.out_hw, dtype)
    return backend.conv2d(input, weight, bias, g, algorithm, out)


def winograd_weights(weight, tile=4, groups=1):
    """Transform a 3x3 weight (K, C/groups, 3, 3) once for Winograd F(tile x tile, 3 x 3),
    tile in {2, 4, 6}; pass the result to conv2d in place of the weight to skip the weight
    transform on every call (CPU only; the object holds a copy of the transformed values)."""
    weight = as_float_array(weight, "weight")
    if not isinstance(weight, np.ndarray):
        raise TypeError("winograd_weights supports numpy (CPU) weights only")
    if isinstance(tile, bool) or tile not in (2, 4, 6):
        raise ValueError(f"tile must be 2, 4 or 6, got {tile!r}")
    if isinstance(groups, bool) or not isinstance(groups, (int, np.integer)) or groups < 1:
        raise ValueError(f"groups must be a positive int, got {groups!r}")
    check_ndim(weight.shape, 4, "weight", "(K, C/groups, 3, 3)")
    if weight.shape[2:] != (3, 3):
        raise ValueError(f"winograd_weights needs a 3x3 kernel, got weight shape {weight.shape}")
    if weight.shape[0] % groups:
        raise ValueError(f"weight has {weight.shape[0]} output channels, not divisible by groups={groups}")
    return WinogradWeights(weight, tile, groups)


def conv2d_algorithm(input_size, weight_size, stride=1, padding=0, dilation=1, groups=1, *, weights_reused=False):
    """The algorithm conv2d(algorithm="auto") runs on the CPU for these shapes: "direct" or
    "winograd_f2" / "_f4" / "_f6". weights_reused=True answers for a caller that keeps
    winograd_weights() between calls (the weight transform is then nearly free), as nn.Conv2d does."""
    input_size = _int_shape(input_size, "input_size")
    weight_size = _int_shape(weight_size, "weight_size")
    g = conv_geometry(input_size, weight_size, stride, padding, dilation, groups, "input_size")
    return _cpu.choose_algorithm("auto", input_size, weight_size, g, weights_reused=weights_reused)


def _conv2d_pretransformed(input, ww, bias, stride, padding, dilation, groups, algorithm, out):
    """conv2d with a WinogradWeights in place of the weight."""
    if not isinstance(input, np.ndarray):
        raise TypeError("a WinogradWeights weight works with numpy (CPU) inputs only")
    shape, dtype = array_meta(input, "input")
    if _unbatched(shape):
        y = _conv2d_pretransformed(_batch(input), ww, bias, stride, padding, dilation, groups, algorithm,
                                   None if out is None else out[None])
        return y[0]
    check_ndim(shape, 4, "input", "(N, C, H, W)")
    if dtype != ww.dtype:
        raise TypeError(f"weight (WinogradWeights) has dtype {ww.dtype} but input has dtype {dtype}; they must match")
    if groups != ww.groups:
        raise ValueError(f"groups={groups} does not match the WinogradWeights (made with groups={ww.groups})")
    tile_algo = f"winograd_f{ww.tile}"
    if algorithm not in ("auto", "winograd", tile_algo):
        raise ValueError(f"algorithm={algorithm!r} cannot use weights transformed for {tile_algo}; "
                         f"pass 'auto', 'winograd' or {tile_algo!r}")
    if bias is not None:
        bias = as_float_array(bias, "bias")
        bshape, bdtype = array_meta(bias, "bias")
        check_same_dtype(dtype, bdtype, "input", "bias")
        if tuple(bshape) != (ww.weight_shape[0],):
            raise ValueError(f"bias must have shape ({ww.weight_shape[0]},), got {tuple(bshape)}")
    g = conv_geometry(shape, ww.weight_shape, stride, padding, dilation, groups)
    reason = _cpu.winograd_unsupported(ww.weight_shape, g)
    if reason:
        raise ValueError(f"weight is a WinogradWeights but this convolution cannot use Winograd: {reason}")
    check_out(out, (shape[0], ww.weight_shape[0]) + g.out_hw, dtype)
    return _cpu.conv2d(input, ww, bias, g, algorithm, out)


def conv2d_input(input_size, weight, grad_output, stride=1, padding=0, dilation=1, groups=1, *,
                 algorithm="auto", out=None):
    """Gradient of conv2d with respect to its input, as torch.nn.grad.conv2d_input."""
    input_size = _int_shape(input_size, "input_size")
    weight = as_float_array(weight, "weight")
    grad_output = as_float_array(grad_output, "grad_output")
    wshape, wdtype = array_meta(weight, "weight")
    gshape, gdtype = array_meta(grad_output, "grad_output")
    check_ndim(wshape, 4, "weight", "(K, C/groups, R, S)")
    check_ndim(gshape, 4, "grad_output", "(N, K, OH, OW)")
    check_same_dtype(gdtype, wdtype, "grad_output", "weight")
    g = conv_geometry(input_size, wshape, stride, padding, dilation, groups, "input_size")
    expected = (input_size[0], wshape[0]) + g.out_hw
    if tuple(gshape) != expected:
        raise ValueError(f"grad_output must have shape {expected} for input_size {input_size}, got {tuple(gshape)}")
    backend = _backend(weight, grad_output)
    if backend is _cpu:
        check_out(out, input_size, gdtype)
    return backend.conv2d_input(input_size, weight, grad_output, g, algorithm, out)


def conv2d_weight(input, weight_size, grad_output, stride=1, padding=0, dilation=1, groups=1, *,
                  out=None):
    """Gradient of conv2d with respect to its weight, as torch.nn.grad.conv2d_weight."""
    input = as_float_array(input, "input")
    grad_output = as_float_array(grad_output, "grad_output")
    weight_size = _int_shape(weight_size, "weight_size")
    shape, dtype = array_meta(input, "input")
    gshape, gdtype = array_meta(grad_output, "grad_output")
    check_ndim(shape, 4, "input", "(N, C, H, W)")
    check_ndim(gshape, 4, "grad_output", "(N, K, OH, OW)")
    check_same_dtype(dtype, gdtype, "input", "grad_output")
    g = conv_geometry(shape, weight_size, stride, padding, dilation, groups)
    expected = (shape[0], weight_size[0]) + g.out_hw
    if tuple(gshape) != expected:
        raise ValueError(f"grad_output must have shape {expected}, got {tuple(gshape)}")
    backend = _backend(input, grad_output)
    if backend is _cpu:
        check_out(out, weight_size, dtype)
    return backend.conv2d_weight(input, weight_size, grad_output, g, out)


# ---------------------------------------------------------------------------- pooling

def _pool_input(input):
    input = as_float_array(input, "input")
    shape, _ = array_meta(input, "input")
    if _unbatched(shape):
        return _batch(input), True
    check_ndim(shape, 4, "input", "(N, C, H, W)")
    return input, False


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False, *, out=None):
    """Max pooling, as torch.nn.functional.max_pool2d. Indices are int64, flat (h*W + w)
    within each (n, c) plane; the first maximum wins and NaN propagates."""
    x, unbatched = _pool_input(input)
    shape, dtype = array_meta(x, "input")
    g = pool_geometry(shape, kernel_size, stride, padding, dilation, ceil_mode)
    backend = _backend(x)
    if backend is _cpu and not unbatched:
        check_out(out, shape[:2] + g.out_hw, dtype)
    y, idx = backend.max_pool2d(x, g, None if unbatched else out)
    if unbatched:
        y, idx = y[0], idx[0]
    return (y, idx) if return_indices else y


def max_pool2d_backward(grad_output, indices, input_size, *, out=None):
    """Gradient of max_pool2d: grad_output scatter-added at indices into input_size."""
    grad_output = as_float_array(grad_output, "grad_output")
    input_size = _int_shape(input_size, "input_size")
    gshape, gdtype = array_meta(grad_output, "grad_output")
    check_ndim(gshape, 4, "grad_output", "(N, C, OH, OW)")
    ishape, idtype = array_meta(indices, "indices")
    if idtype != np.int64:
        raise TypeError(f"indices must have dtype int64, got {idtype}")
    if tuple(ishape) != tuple(gshape):
        raise ValueError(f"indices must have the shape of grad_output {tuple(gshape)}, got {tuple(ishape)}")
    if tuple(gshape[:2]) != input_size[:2]:
        raise ValueError(f"input_size {input_size} must share (N, C) with grad_output {tuple(gshape)}")
    backend = _backend(grad_output, indices)
    if backend is _cpu:
        check_out(out, input_size, gdtype)
    return backend.max_pool2d_backward(grad_output, indices, input_size, out)


def _check_divisor(divisor_override):
    if divisor_override is not None:
        if isinstance(divisor_override, bool) or not isinstance(divisor_override, (int, np.integer)) \
                or divisor_override <= 0:
            raise ValueError(f"divisor_override must be a positive int or None, got {divisor_override!r}")


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None, *, out=None):
    """Average pooling, as torch.nn.functional.avg_pool2d."""
    x, unbatched = _pool_input(input)
    shape, dtype = array_meta(x, "input")
    _check_divisor(divisor_override)
    g = pool_geometry(shape, kernel_size, stride, padding, 1, ceil_mode)
    backend = _backend(x)
    if backend is _cpu and not unbatched:
        check_out(out, shape[:2] + g.out_hw, dtype)
    y = backend.avg_pool2d(x, g, count_include_pad, divisor_override, None if unbatched else out)
    return y[0] if unbatched else y


def avg_pool2d_backward(grad_output, input_size, kernel_size, stride=None, padding=0,
                        ceil_mode=False, count_include_pad=True, divisor_override=None, *, out=None):
    """Gradient of avg_pool2d."""
    grad_output = as_float_array(grad_output, "grad_output")
    input_size = _int_shape(input_size, "input_size")
    gshape, gdtype = array_meta(grad_output, "grad_output")
    check_ndim(gshape, 4, "grad_output", "(N, C, OH, OW)")
    _check_divisor(divisor_override)
    g = pool_geometry(input_size, kernel_size, stride, padding, 1, ceil_mode)
    expected = input_size[:2] + g.out_hw
    if tuple(gshape) != expected:
        raise ValueError(f"grad_output must have shape {expected} for input_size {input_size}, got {tuple(gshape)}")
    backend = _backend(grad_output)
    if backend is _cpu:
        check_out(out, input_size, gdtype)
    return backend.avg_pool2d_backward(grad_output, input_size, g, count_include_pad, divisor_override, out)


# ---------------------------------------------------------------------------- dense ops
# numpy (BLAS) on the host; the CUDA backend provides functions of the same names.

def linear(input, weight, bias=None):
    """y = input @ weight.T + bias, as torch.nn.functional.linear. input (..., in)."""
    input = as_float_array(input, "input")
    weight = as_float_array(weight, "weight")
    shape, dtype = array_meta(input, "input")
    wshape, wdtype = array_meta(weight, "weight")
    if len(wshape) != 2:
        raise ValueError(f"weight must be 2-D (out_features, in_features), got shape {tuple(wshape)}")
    if len(shape) < 1 or shape[-1] != wshape[1]:
        raise ValueError(f"input must end in in_features={wshape[1]}, got shape {tuple(shape)}")
    check_same_dtype(dtype, wdtype, "input", "weight")
    if bias is not None:
        bias = as_float_array(bias, "bias")
        bshape, bdtype = array_meta(bias, "bias")
        check_same_dtype(dtype, bdtype, "input", "bias")
        if tuple(bshape) != (wshape[0],):
            raise ValueError(f"bias must have shape ({wshape[0]},), got {tuple(bshape)}")
    backend = _backend(input, weight, bias)
    if backend is not _cpu:
        return backend.linear(input, weight, bias)
    y = input @ weight.T
    if bias is not None:
        y += bias
    return y


def linear_backward(input, weight, grad_output, needs_bias=True):
    """(grad_input, grad_weight, grad_bias) of linear for 2-D input (N, in)."""
    backend = _backend(input, weight, grad_output)
    if backend is not _cpu:
        return backend.linear_backward(input, weight, grad_output, needs_bias)
    gx = grad_output @ weight
    gw = grad_output.T @ input
    gb = grad_output.sum(axis=0) if needs_bias else None
    return gx, gw, gb


def relu(input):
    """max(input, 0); NaN propagates, as torch.relu."""
    input = as_float_array(input, "input")
    return _backend(input).relu(input)


def relu_backward(grad_output, output):
    """Gradient of relu given its output (or input: the sign is the same)."""
    grad_output = as_float_array(grad_output, "grad_output")
    output = as_float_array(output, "output")
    gshape, gdtype = array_meta(grad_output, "grad_output")
    oshape, odtype = array_meta(output, "output")
    check_same_dtype(gdtype, odtype, "grad_output", "output")
    if tuple(gshape) != tuple(oshape):
        raise ValueError(f"output must have the shape of grad_output {tuple(gshape)}, got {tuple(oshape)}")
    return _backend(grad_output, output).relu_backward(grad_output, output)


def sigmoid(input):
    input = as_float_array(input, "input")
    backend = _backend(input)
    if backend is not _cpu:
        return backend.sigmoid(input)
    # split by sign so exp never overflows
    out = np.empty_like(input)
    pos = input >= 0
    out[pos] = 1 / (1 + np.exp(-input[pos]))
    e = np.exp(input[~pos])
    out[~pos] = e / (1 + e)
    return out


def sigmoid_backward(grad_output, output):
    backend = _backend(grad_output, output)
    if backend is not _cpu:
        return backend.sigmoid_backward(grad_output, output)
    return grad_output * output * (1 - output)


def tanh(input):
    input = as_float_array(input, "input")
    backend = _backend(input)
    return backend.tanh(input) if backend is not _cpu else np.tanh(input)


def tanh_backward(grad_output, output):
    backend = _backend(grad_output, output)
    if backend is not _cpu:
        return backend.tanh_backward(grad_output, output)
    return grad_output * (1 - output * output)


def _check_dim(shape, dim):
    if not isinstance(dim, (int, np.integer)) or not -len(shape) <= dim < len(shape):
        raise ValueError(f"dim must be an int in [{-len(shape)}, {len(shape) - 1}], got {dim!r}")


def log_softmax(input, dim=-1):
    input = as_float_array(input, "input")
    shape, _ = array_meta(input, "input")
    _check_dim(shape, dim)
    backend = _backend(input)
    if backend is not _cpu:
        return backend.log_softmax(input, dim)
    m = np.max(input, axis=dim, keepdims=True)
    shifted = input - m
    return shifted - np.log(np.sum(np.exp(shifted), axis=dim, keepdims=True))


def softmax(input, dim=-1):
    input = as_float_array(input, "input")
    shape, _ = array_meta(input, "input")
    _check_dim(shape, dim)
    backend = _backend(input)
    if backend is not _cpu:
        return backend.softmax(input, dim)
    e = np.exp(input - np.max(input, axis=dim, keepdims=True))
    return e / np.sum(e, axis=dim, keepdims=True)


def _check_targets(shape, target):
    tshape, tdtype = array_meta(target, "target")
    if len(shape) != 2:
        raise ValueError(f"input must be 2-D logits (N, classes), got shape {tuple(shape)}")
    if tdtype.kind not in "iu":
        raise TypeError(f"target must hold integer class indices, got dtype {tdtype}")
    if tuple(tshape) != (shape[0],):
        raise ValueError(f"target must have shape ({shape[0]},), got {tuple(tshape)}")
    if isinstance(target, np.ndarray) and target.size and (target.min() < 0 or target.max() >= shape[1]):
        raise ValueError(f"target values must lie in [0, {shape[1]}), got [{target.min()}, {target.max()}]")


def cross_entropy(input, target, reduction="mean", label_smoothing=0.0):
    """Cross-entropy from logits (N, classes) and integer targets (N,), computed stably
    through log_softmax; reduction 'mean' | 'sum' | 'none'."""
    input = as_float_array(input, "input")
    if not is_cuda_array(target):
        target = np.asarray(target)
    shape, _ = array_meta(input, "input")
    _check_targets(shape, target)
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1], got {label_smoothing}")
    backend = _backend(input, target)
    if backend is not _cpu:
        return backend.cross_entropy(input, target, reduction, label_smoothing)
    lp = log_softmax(input, 1)
    nll = -lp[np.arange(shape[0]), target]
    if label_smoothing:
        nll = (1 - label_smoothing) * nll - label_smoothing * lp.mean(axis=1)
    if reduction == "none":
        return nll
    return nll.sum() if reduction == "sum" else nll.mean()


def cross_entropy_backward(input, target, reduction="mean", label_smoothing=0.0):
    """d(cross_entropy)/d(logits): softmax - one_hot (smoothed), scaled by the reduction."""
    backend = _backend(input, target)
    if backend is not _cpu:
        return backend.cross_entropy_backward(input, target, reduction, label_smoothing)
    target = np.asarray(target)
    n, k = input.shape
    grad = softmax(input, 1)
    onehot = np.zeros_like(grad)
    onehot[np.arange(n), target] = 1
    if label_smoothing:
        onehot = (1 - label_smoothing) * onehot + label_smoothing / k
    grad -= onehot
    return grad / n if reduction == "mean" else grad
