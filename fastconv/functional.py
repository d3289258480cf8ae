"""The public op surface, with torch.nn.functional / torch.nn.grad names and semantics.

Every op validates its arguments once, then hands the call to the arrays' backend
(fastconv.backend.backend_of): numpy arrays run the compiled CPU kernels (fastconv._cpu ->
fastconv._C), arrays exposing ``__cuda_array_interface__`` run the Numba CUDA kernels
(fastconv.cuda); both implement fastconv.backend.BACKEND_OPS. Layout is NCHW for activations
and OIHW for weights.

The hot ops (conv2d, conv2d_input, conv2d_weight, max_pool2d, avg_pool2d and their backwards,
linear, linear_backward, relu, relu_backward) remember what a validated call resolved: a later call with
numpy arrays of the same types, shapes, dtypes and strides and the same arguments (by type and
value) goes straight to the backend (fastconv._plans says exactly what the key holds).
"""
from __future__ import annotations

import numpy as np

from fastconv import _plans
from fastconv._algorithm import check_algorithm, winograd_unsupported
from fastconv._geometry import adaptive_output_size, conv_geometry, pool_geometry
from fastconv._validate import (array_meta, as_float_array, check_float_dtype, check_int, check_ndim,
                                check_same_dtype, number_in_range, positive_int)
from fastconv.backend import WinogradWeights, backend_named, backend_of
from fastconv.device import is_cuda_array

__all__ = [
    "conv2d", "conv2d_input", "conv2d_weight", "max_pool2d", "max_pool2d_backward",
    "avg_pool2d", "avg_pool2d_backward", "adaptive_avg_pool2d", "adaptive_avg_pool2d_backward",
    "adaptive_max_pool2d", "adaptive_max_pool2d_backward", "linear", "linear_backward",
    "relu", "relu_backward", "epilogue", "sigmoid", "sigmoid_backward", "tanh", "tanh_backward",
    "softmax", "softmax_backward", "log_softmax", "log_softmax_backward",
    "cross_entropy", "cross_entropy_backward", "dropout", "dropout_backward",
    "winograd_weights", "WinogradWeights", "conv2d_algorithm",
]


def _unbatched(shape):
    return len(shape) == 3


def _batch(a):
    return a.reshape((1,) + tuple(array_meta(a, "input")[0]))


def _int_shape(size, name, unbatched_ok=False, empty_batch_ok=False):
    """size as a tuple of 4 positive ints (N, C, H, W), or of 3 (C, H, W) where unbatched_ok;
    N may be 0 where empty_batch_ok."""
    layout = "(N, C, H, W) or (C, H, W)" if unbatched_ok else "(N, C, H, W)"
    try:
        size = tuple(int(v) for v in size)
    except TypeError:
        raise TypeError(f"{name} must be a sequence of ints {layout}, got {size!r}") from None
    empty_n = empty_batch_ok and len(size) == 4 and size[0] == 0
    if len(size) not in ((3, 4) if unbatched_ok else (4,)) or any(v <= 0 for v in size[1 if empty_n else 0:]):
        raise ValueError(f"{name} must be positive ints {layout}, got {size}")
    return size


def _empty_batch(backend, shape, dtype, out=None):
    """The result of an op on an empty batch (N = 0), or the zero weight gradient it yields:
    no kernel runs. Host arrays only."""
    if backend is not backend_named("cpu"):
        raise ValueError("an empty batch (N = 0) is supported for numpy arrays only")
    if out is None:
        return np.zeros(shape, dtype)
    out[...] = 0
    return out


def _ndim(a, name):
    return len(array_meta(a, name)[0])


# ---------------------------------------------------------------------------- convolution

def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, *,
           algorithm="auto", out=None):
    """2-D cross-correlation, as torch.nn.functional.conv2d.

    input (N, C, H, W) or (C, H, W); weight (K, C/groups, R, S); bias (K,) or None.
    padding: int, pair, "valid" or "same". algorithm: "auto", "direct", "winograd" (the tile
    picked for the shape) or "winograd_f2" / "winograd_f4" / "winograd_f6" (output tile 2, 4 or 6 of
    a 3x3 kernel, 2 or 4 of a 5x5 one (CPU); stride 1, dilation 1 only; see fastconv._algorithm.ALGORITHMS). "auto" picks direct or a Winograd tile by a
    measured cost model. weight may also be a WinogradWeights from winograd_weights() (CPU
    only): the transform is then reused and its tile is used. out: optional result array.
    """
    return _conv2d_op("conv2d", input, weight, bias, stride, padding, dilation, groups, algorithm, out)


def _conv2d_relu(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, *, algorithm="auto", out=None):
    """relu(conv2d(...)) with the same arguments and checks, the ReLU inside the conv's own output
    pass where the backend has one (the CPU's conv epilogue): nn.Sequential's inference runs
    Conv2d -> ReLU through it."""
    return _conv2d_op("conv2d_relu", input, weight, bias, stride, padding, dilation, groups, algorithm, out)


def _conv2d_op(op, input, weight, bias, stride, padding, dilation, groups, algorithm, out):
    """conv2d's checks, then the backend op `op` ("conv2d" or "conv2d_relu", same signature)."""
    key, plan = _plans.find(op, (input, weight, bias), (stride, padding, dilation, groups, algorithm), out)
    if plan is not None:
        return plan(input, weight, bias)
    input = as_float_array(input, "input")
    if isinstance(weight, WinogradWeights):
        return _conv2d_pretransformed(op, input, weight, bias, stride, padding, dilation, groups, algorithm, out)
    weight = as_float_array(weight, "weight")
    shape, dtype = array_meta(input, "input")
    wshape, wdtype = array_meta(weight, "weight")
    if _unbatched(shape):
        y = _conv2d_op(op, _batch(input), weight, bias, stride, padding, dilation, groups, algorithm,
                       None if out is None else _batch(out))
        return y[0]
    check_ndim(shape, 4, "input", "(N, C, H, W)", empty_batch_ok=True)
    check_ndim(wshape, 4, "weight", "(K, C/groups, R, S)")
    check_same_dtype(dtype, wdtype, "input", "weight")
    if bias is not None:
        bias = as_float_array(bias, "bias")
        bshape, bdtype = array_meta(bias, "bias")
        check_same_dtype(dtype, bdtype, "input", "bias")
        if tuple(bshape) != (wshape[0],):
            raise ValueError(f"bias must have shape ({wshape[0]},), got {tuple(bshape)}")
    check_algorithm(algorithm)
    g = conv_geometry(shape, wshape, stride, padding, dilation, groups)
    backend = backend_of(input, weight, bias)
    backend.check_out(out, (shape[0], wshape[0]) + g.out_hw, dtype)
    if shape[0] == 0:  # nothing to compute, but an algorithm that cannot run this shape is still refused
        backend.choose_algorithm(algorithm, shape, wshape, g)
        return _empty_batch(backend, (0, wshape[0]) + g.out_hw, dtype, out)
    run = getattr(backend, op)
    y = run(input, weight, bias, g, algorithm, out)
    _plans.remember(key, lambda x, w, b, run=run: run(x, w, b, g, algorithm, None))
    return y


def winograd_weights(weight, tile=4, groups=1):
    """Transform a 3x3 weight (K, C/groups, 3, 3) once for Winograd F(tile x tile, 3 x 3), tile in
    {2, 4, 6}, or a 5x5 one for F(tile x tile, 5 x 5), tile in {2, 4}; pass the result to conv2d
    in place of the weight to skip the weight transform on every call (CPU only; the object holds
    a copy of the transformed values)."""
    weight = as_float_array(weight, "weight")
    if isinstance(tile, bool) or tile not in (2, 4, 6):
        raise ValueError(f"tile must be 2, 4 or 6, got {tile!r}")
    groups = positive_int(groups, "groups")
    wshape, _ = array_meta(weight, "weight")
    check_ndim(wshape, 4, "weight", "(K, C/groups, 3, 3)")
    if tuple(wshape[2:]) not in ((3, 3), (5, 5)):
        raise ValueError(f"winograd_weights needs a 3x3 or 5x5 kernel, got weight shape {tuple(wshape)}")
    # (tile 6 on a 5x5 kernel: the transform's binding raises "tile must be 2 or 4 for a 5x5 kernel")
    if wshape[0] % groups:
        raise ValueError(f"weight has {wshape[0]} output channels, not divisible by groups={groups}")
    return backend_of(weight).winograd_weights(weight, tile, groups)


def conv2d_algorithm(input_size, weight_size, stride=1, padding=0, dilation=1, groups=1, *, weights_reused=False):
    """The algorithm conv2d(algorithm="auto") runs on the CPU for these shapes: "direct" or
    "winograd_f2" / "_f4" / "_f6". weights_reused=True answers for a caller that keeps
    winograd_weights() between calls (the weight transform is then nearly free), as nn.Conv2d does."""
    input_size = _int_shape(input_size, "input_size")
    weight_size = _int_shape(weight_size, "weight_size")
    g = conv_geometry(input_size, weight_size, stride, padding, dilation, groups, "input_size")
    return backend_named("cpu").choose_algorithm("auto", input_size, weight_size, g, weights_reused=weights_reused)


def _conv2d_pretransformed(op, input, ww, bias, stride, padding, dilation, groups, algorithm, out):
    """conv2d (or the backend op `op`) with a WinogradWeights in place of the weight."""
    if not isinstance(input, np.ndarray):
        raise TypeError("a WinogradWeights weight works with numpy (CPU) inputs only")
    shape, dtype = array_meta(input, "input")
    if _unbatched(shape):
        y = _conv2d_pretransformed(op, _batch(input), ww, bias, stride, padding, dilation, groups, algorithm,
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
    # the kernel size was accepted when the weights were transformed: only the geometry is checked
    reason = winograd_unsupported(ww.weight_shape[2:], g.stride, g.dilation, kernel_sizes=(ww.weight_shape[2],))
    if reason:
        raise ValueError(f"weight is a WinogradWeights but this convolution cannot use Winograd: {reason}")
    backend = backend_of(input)
    backend.check_out(out, (shape[0], ww.weight_shape[0]) + g.out_hw, dtype)
    return getattr(backend, op)(input, ww, bias, g, algorithm, out)


def conv2d_input(input_size, weight, grad_output, stride=1, padding=0, dilation=1, groups=1, *,
                 algorithm="auto", out=None):
    """Gradient of conv2d with respect to its input, as torch.nn.grad.conv2d_input.
    input_size (N, C, H, W) with grad_output (N, K, OH, OW), or unbatched (C, H, W) with (K, OH, OW)."""
    key, plan = _plans.find("conv2d_input", (weight, grad_output),
                            (input_size, stride, padding, dilation, groups, algorithm), out)
    if plan is not None:
        return plan(weight, grad_output)
    input_size = _int_shape(input_size, "input_size", unbatched_ok=True, empty_batch_ok=True)
    weight = as_float_array(weight, "weight")
    grad_output = as_float_array(grad_output, "grad_output")
    if _unbatched(input_size):
        check_ndim(array_meta(grad_output, "grad_output")[0], 3, "grad_output", "(K, OH, OW) for a 3-D input_size")
        dx = conv2d_input((1,) + input_size, weight, _batch(grad_output), stride, padding, dilation, groups,
                          algorithm=algorithm, out=None if out is None else _batch(out))
        return dx[0]
    wshape, wdtype = array_meta(weight, "weight")
    gshape, gdtype = array_meta(grad_output, "grad_output")
    check_ndim(wshape, 4, "weight", "(K, C/groups, R, S)")
    check_ndim(gshape, 4, "grad_output", "(N, K, OH, OW)", empty_batch_ok=True)
    check_same_dtype(gdtype, wdtype, "grad_output", "weight")
    check_algorithm(algorithm)
    g = conv_geometry(input_size, wshape, stride, padding, dilation, groups, "input_size")
    expected = (input_size[0], wshape[0]) + g.out_hw
    if tuple(gshape) != expected:
        raise ValueError(f"grad_output must have shape {expected} for input_size {input_size}, got {tuple(gshape)}")
    backend = backend_of(weight, grad_output)
    backend.check_out(out, input_size, gdtype)
    if input_size[0] == 0:
        backend.choose_algorithm(algorithm, input_size, wshape, g, input_grad=True)
        return _empty_batch(backend, input_size, gdtype, out)
    dx = backend.conv2d_input(input_size, weight, grad_output, g, algorithm, out)
    _plans.remember(key, lambda w, dy, run=backend.conv2d_input: run(input_size, w, dy, g, algorithm, None))
    return dx


def conv2d_weight(input, weight_size, grad_output, stride=1, padding=0, dilation=1, groups=1, *,
                  algorithm="auto", out=None):
    """Gradient of conv2d with respect to its weight, as torch.nn.grad.conv2d_weight.
    input (N, C, H, W) with grad_output (N, K, OH, OW), or unbatched (C, H, W) with (K, OH, OW).
    algorithm: as conv2d's; Winograd runs the weight gradient of 3x3 stride-1 dilation-1
    convolutions at any padding (on the CPU; the CUDA backend validates the request, then runs
    direct, its only weight-gradient algorithm)."""
    key, plan = _plans.find("conv2d_weight", (input, grad_output),
                            (weight_size, stride, padding, dilation, groups, algorithm), out)
    if plan is not None:
        return plan(input, grad_output)
    input = as_float_array(input, "input")
    grad_output = as_float_array(grad_output, "grad_output")
    if _ndim(input, "input") == 3:
        check_ndim(array_meta(grad_output, "grad_output")[0], 3, "grad_output", "(K, OH, OW) for a 3-D input")
        return conv2d_weight(_batch(input), weight_size, _batch(grad_output), stride, padding, dilation, groups,
                             algorithm=algorithm, out=out)
    weight_size = _int_shape(weight_size, "weight_size")
    shape, dtype = array_meta(input, "input")
    gshape, gdtype = array_meta(grad_output, "grad_output")
    check_ndim(shape, 4, "input", "(N, C, H, W)", empty_batch_ok=True)
    check_ndim(gshape, 4, "grad_output", "(N, K, OH, OW)", empty_batch_ok=True)
    check_same_dtype(dtype, gdtype, "input", "grad_output")
    check_algorithm(algorithm)
    g = conv_geometry(shape, weight_size, stride, padding, dilation, groups)
    expected = (shape[0], weight_size[0]) + g.out_hw
    if tuple(gshape) != expected:
        raise ValueError(f"grad_output must have shape {expected}, got {tuple(gshape)}")
    backend = backend_of(input, grad_output)
    backend.check_out(out, weight_size, dtype)
    if shape[0] == 0:
        backend.choose_algorithm(algorithm, shape, weight_size, g, weight_grad=True)
        return _empty_batch(backend, weight_size, dtype, out)
    dw = backend.conv2d_weight(input, weight_size, grad_output, g, algorithm, out)
    _plans.remember(key, lambda x, dy, run=backend.conv2d_weight: run(x, weight_size, dy, g, algorithm, None))
    return dw


# ---------------------------------------------------------------------------- pooling

def _pool_input(input):
    input = as_float_array(input, "input")
    shape, _ = array_meta(input, "input")
    if _unbatched(shape):
        return _batch(input), True
    check_ndim(shape, 4, "input", "(N, C, H, W)", empty_batch_ok=True)
    return input, False


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False, *, out=None):
    """Max pooling, as torch.nn.functional.max_pool2d. Indices are int64, flat (h*W + w)
    within each (n, c) plane; the first maximum wins and NaN propagates."""
    key, plan = _plans.find("max_pool2d", (input,), (kernel_size, stride, padding, dilation, ceil_mode,
                                                     return_indices), out)
    if plan is not None:
        return plan(input)
    x, unbatched = _pool_input(input)
    shape, dtype = array_meta(x, "input")
    g = pool_geometry(shape, kernel_size, stride, padding, dilation, ceil_mode)
    backend = backend_of(x)
    if not unbatched:
        backend.check_out(out, shape[:2] + g.out_hw, dtype)
    if shape[0] == 0:
        y, idx = _empty_batch(backend, shape[:2] + g.out_hw, dtype, out), np.zeros(shape[:2] + g.out_hw, np.int64)
    else:
        # indices only where asked for: the values-only kernel skips their selects and stores
        y, idx = backend.max_pool2d(x, g, None if unbatched else out, indices=return_indices)
        if not unbatched:
            _plans.remember(key, _max_pool_plan(backend.max_pool2d, g, return_indices))
    if not return_indices:
        return y[0] if unbatched else y
    return (y[0], idx[0]) if unbatched else (y, idx)


def _max_pool_plan(run, g, return_indices):
    if return_indices:
        return lambda x: run(x, g, None)
    return lambda x: run(x, g, None, indices=False)[0]


def max_pool2d_backward(grad_output, indices, input_size, *, out=None):
    """Gradient of max_pool2d: grad_output scatter-added at indices into input_size.
    Batched (N, C, ...) or unbatched (C, ...) like the forward call."""
    key, plan = _plans.find("max_pool2d_backward", (grad_output, indices), (input_size,), out)
    if plan is not None:
        return plan(grad_output, indices)
    grad_output = as_float_array(grad_output, "grad_output")
    input_size = _int_shape(input_size, "input_size", unbatched_ok=True, empty_batch_ok=True)
    if _unbatched(input_size):
        check_ndim(array_meta(grad_output, "grad_output")[0], 3, "grad_output", "(C, OH, OW) for a 3-D input_size")
        check_ndim(array_meta(indices, "indices")[0], 3, "indices", "(C, OH, OW) for a 3-D input_size")
        dx = max_pool2d_backward(_batch(grad_output), _batch(indices), (1,) + input_size,
                                 out=None if out is None else _batch(out))
        return dx[0]
    gshape, gdtype = array_meta(grad_output, "grad_output")
    check_ndim(gshape, 4, "grad_output", "(N, C, OH, OW)", empty_batch_ok=True)
    ishape, idtype = array_meta(indices, "indices")
    if idtype != np.int64:
        raise TypeError(f"indices must have dtype int64, got {idtype}")
    if tuple(ishape) != tuple(gshape):
        raise ValueError(f"indices must have the shape of grad_output {tuple(gshape)}, got {tuple(ishape)}")
    if tuple(gshape[:2]) != input_size[:2]:
        raise ValueError(f"input_size {input_size} must share (N, C) with grad_output {tuple(gshape)}")
    backend = backend_of(grad_output, indices)
    backend.check_out(out, input_size, gdtype)
    if input_size[0] == 0:
        return _empty_batch(backend, input_size, gdtype, out)
    dx = backend.max_pool2d_backward(grad_output, indices, input_size, out)
    _plans.remember(key, lambda dy, idx, run=backend.max_pool2d_backward: run(dy, idx, input_size, None))
    return dx


def _check_divisor(divisor_override):
    # torch divides by any non-zero override, negative ones included
    if divisor_override is not None:
        if check_int(divisor_override, "divisor_override") == 0:
            raise ValueError(f"divisor_override must be a non-zero int or None, got {divisor_override!r}")


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None, *, out=None):
    """Average pooling, as torch.nn.functional.avg_pool2d."""
    key, plan = _plans.find("avg_pool2d", (input,), (kernel_size, stride, padding, ceil_mode, count_include_pad,
                                                     divisor_override), out)
    if plan is not None:
        return plan(input)
    x, unbatched = _pool_input(input)
    shape, dtype = array_meta(x, "input")
    _check_divisor(divisor_override)
    g = pool_geometry(shape, kernel_size, stride, padding, 1, ceil_mode)
    backend = backend_of(x)
    if not unbatched:
        backend.check_out(out, shape[:2] + g.out_hw, dtype)
    if shape[0] == 0:
        return _empty_batch(backend, shape[:2] + g.out_hw, dtype, out)
    y = backend.avg_pool2d(x, g, count_include_pad, divisor_override, None if unbatched else out)
    if not unbatched:
        _plans.remember(key, lambda x, run=backend.avg_pool2d: run(x, g, count_include_pad, divisor_override, None))
    return y[0] if unbatched else y


def avg_pool2d_backward(grad_output, input_size, kernel_size, stride=None, padding=0,
                        ceil_mode=False, count_include_pad=True, divisor_override=None, *, out=None):
    """Gradient of avg_pool2d; batched (N, C, ...) or unbatched (C, ...) like the forward call."""
    key, plan = _plans.find("avg_pool2d_backward", (grad_output,), (input_size, kernel_size, stride, padding,
                                                                    ceil_mode, count_include_pad, divisor_override), out)
    if plan is not None:
        return plan(grad_output)
    grad_output = as_float_array(grad_output, "grad_output")
    input_size = _int_shape(input_size, "input_size", unbatched_ok=True, empty_batch_ok=True)
    if _unbatched(input_size):
        check_ndim(array_meta(grad_output, "grad_output")[0], 3, "grad_output", "(C, OH, OW) for a 3-D input_size")
        dx = avg_pool2d_backward(_batch(grad_output), (1,) + input_size, kernel_size, stride, padding, ceil_mode,
                                 count_include_pad, divisor_override, out=None if out is None else _batch(out))
        return dx[0]
    gshape, gdtype = array_meta(grad_output, "grad_output")
    check_ndim(gshape, 4, "grad_output", "(N, C, OH, OW)", empty_batch_ok=True)
    _check_divisor(divisor_override)
    g = pool_geometry(input_size, kernel_size, stride, padding, 1, ceil_mode)
    expected = input_size[:2] + g.out_hw
    if tuple(gshape) != expected:
        raise ValueError(f"grad_output must have shape {expected} for input_size {input_size}, got {tuple(gshape)}")
    backend = backend_of(grad_output)
    backend.check_out(out, input_size, gdtype)
    if input_size[0] == 0:
        return _empty_batch(backend, input_size, gdtype, out)
    dx = backend.avg_pool2d_backward(grad_output, input_size, g, count_include_pad, divisor_override, out)
    _plans.remember(key, lambda dy, run=backend.avg_pool2d_backward: run(dy, input_size, g, count_include_pad,
                                                                         divisor_override, None))
    return dx


def adaptive_avg_pool2d(input, output_size):
    """torch.nn.functional.adaptive_avg_pool2d: input (N, C, H, W) or (C, H, W); output_size an
    int or a pair (None keeps that input size). Window i along an axis of size L covers
    [floor(i*L/out), ceil((i+1)*L/out)); sizes that divide evenly run as one avg_pool2d."""
    x, unbatched = _pool_input(input)
    shape, _ = array_meta(x, "input")
    size = adaptive_output_size(output_size, shape[2:])
    kernel = _even_adaptive_kernel(shape[2:], size)
    if kernel is not None:
        y = avg_pool2d(x, kernel, kernel)
    else:
        y = backend_of(x).adaptive_avg_pool2d(x, size)
    return y[0] if unbatched else y


def adaptive_avg_pool2d_backward(grad_output, input_size):
    """Gradient of adaptive_avg_pool2d; grad_output (N, C, OH, OW) or unbatched (C, OH, OW)."""
    grad_output = as_float_array(grad_output, "grad_output")
    input_size = _int_shape(input_size, "input_size", unbatched_ok=True, empty_batch_ok=True)
    gshape, _ = array_meta(grad_output, "grad_output")
    if _unbatched(input_size):
        check_ndim(gshape, 3, "grad_output", "(C, OH, OW) for a 3-D input_size")
        return adaptive_avg_pool2d_backward(_batch(grad_output), (1,) + input_size)[0]
    check_ndim(gshape, 4, "grad_output", "(N, C, OH, OW)", empty_batch_ok=True)
    if tuple(gshape[:2]) != input_size[:2]:
        raise ValueError(f"input_size {input_size} must share (N, C) with grad_output {tuple(gshape)}")
    kernel = _even_adaptive_kernel(input_size[2:], gshape[2:])
    if kernel is not None:
        return avg_pool2d_backward(grad_output, input_size, kernel, kernel)
    return backend_of(grad_output).adaptive_avg_pool2d_backward(grad_output, input_size)


def _even_adaptive_kernel(in_hw, out_hw):
    """The avg_pool2d kernel (= stride) equal to adaptive pooling when out divides in, else None."""
    (h, w), (oh, ow) = in_hw, out_hw
    return (h // oh, w // ow) if h % oh == 0 and w % ow == 0 else None


def adaptive_max_pool2d(input, output_size, return_indices=False):
    """torch.nn.functional.adaptive_max_pool2d (windows as adaptive_avg_pool2d; int64 flat
    indices like max_pool2d). Host (numpy) arrays only: there is no CUDA kernel for it."""
    x, unbatched = _pool_input(input)
    size = adaptive_output_size(output_size, array_meta(x, "input")[0][2:])
    y, idx = backend_of(x).adaptive_max_pool2d(x, size)
    if unbatched:
        y, idx = y[0], idx[0]
    return (y, idx) if return_indices else y


def adaptive_max_pool2d_backward(grad_output, indices, input_size, *, out=None):
    """Gradient of adaptive_max_pool2d: grad_output scatter-added at indices, as max_pool2d_backward."""
    return max_pool2d_backward(grad_output, indices, input_size, out=out)


# ---------------------------------------------------------------------------- dense ops
# numpy (BLAS) on the host; the CUDA backend provides functions of the same names.

def linear(input, weight, bias=None):
    """y = input @ weight.T + bias, as torch.nn.functional.linear. input (..., in)."""
    key, plan = _plans.find("linear", (input, weight, bias), ())
    if plan is not None:
        return plan(input, weight, bias)
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
    # the backends take (rows, in): flatten the leading dims
    run, rows, y_shape = backend_of(input, weight, bias).linear, (-1, wshape[1]), tuple(shape[:-1]) + (wshape[0],)
    y = run(input.reshape(rows), weight, bias).reshape(y_shape)
    _plans.remember(key, lambda x, w, b: run(x.reshape(rows), w, b).reshape(y_shape))
    return y


def linear_backward(input, weight, grad_output, needs_bias=True):
    """(grad_input, grad_weight, grad_bias) of linear for input (..., in) and grad_output
    (..., out); grad_bias is None unless needs_bias."""
    key, plan = _plans.find("linear_backward", (input, weight, grad_output), (needs_bias,))
    if plan is not None:
        return plan(input, weight, grad_output)
    input = as_float_array(input, "input")
    weight = as_float_array(weight, "weight")
    grad_output = as_float_array(grad_output, "grad_output")
    shape, dtype = array_meta(input, "input")
    wshape, wdtype = array_meta(weight, "weight")
    gshape, gdtype = array_meta(grad_output, "grad_output")
    check_same_dtype(dtype, wdtype, "input", "weight")
    check_same_dtype(dtype, gdtype, "input", "grad_output")
    if len(wshape) != 2 or len(shape) < 1 or shape[-1] != wshape[1]:
        raise ValueError(f"input (..., in_features) and weight (out_features, in_features) do not match: "
                         f"{tuple(shape)} and {tuple(wshape)}")
    if tuple(gshape) != tuple(shape[:-1]) + (wshape[0],):
        raise ValueError(f"grad_output must have shape {tuple(shape[:-1]) + (wshape[0],)}, got {tuple(gshape)}")
    run = backend_of(input, weight, grad_output).linear_backward
    x_rows, g_rows, x_shape = (-1, wshape[1]), (-1, wshape[0]), tuple(shape)

    def plan(x, w, dy):
        gx, gw, gb = run(x.reshape(x_rows), w, dy.reshape(g_rows), needs_bias)
        return gx.reshape(x_shape), gw, gb
    result = plan(input, weight, grad_output)
    _plans.remember(key, plan)
    return result


def relu(input, inplace=False):
    """max(input, 0); NaN propagates, as torch.relu. inplace=True writes the result into input."""
    key, plan = _plans.find("relu", (input,), (inplace,))
    if plan is not None:
        return plan(input)
    input = as_float_array(input, "input")
    backend = backend_of(input)
    run, copy_into = backend.relu, backend.copy_into
    plan = (lambda x: copy_into(x, run(x))) if inplace else run
    y = plan(input)
    _plans.remember(key, plan)
    return y


# The activations epilogue() runs: name -> (kernel activation, its clamp bounds or None to take
# min_val / max_val). relu6 and hardtanh are one clamp kernel.
_EPILOGUE_ACTIVATIONS = {None: (None, None), "relu": ("relu", None), "relu6": ("clamp", (0.0, 6.0)),
                         "hardtanh": ("clamp", None), "silu": ("silu", None)}


def epilogue(input, scale=None, bias=None, residual=None, *, activation=None, residual_after_activation=False,
             min_val=-1.0, max_val=1.0, out=None):
    """One pass over memory: y = act(input * scale[c] + bias[c] + residual), c the channel axis 1
    (the conv / linear epilogue; an eval BatchNorm is scale + bias). With
    residual_after_activation=True the residual is added after the activation instead.

    input (N, C, ...) with N, C >= 0; scale, bias (C,) or None; residual input's shape or None.
    activation: None, "relu", "relu6", "hardtanh" (clamped to [min_val, max_val]) or "silu".
    out: the result array (may be input itself, for an in-place pass).
    """
    input = as_float_array(input, "input")
    shape, dtype = array_meta(input, "input")
    if len(shape) < 2:
        raise ValueError(f"input must have at least 2 dimensions (N, C, ...), got shape {tuple(shape)}")
    if activation not in _EPILOGUE_ACTIVATIONS:
        raise ValueError(f"activation must be one of {list(_EPILOGUE_ACTIVATIONS)}, got {activation!r}")
    act, bounds = _EPILOGUE_ACTIVATIONS[activation]
    if activation == "hardtanh":
        if not min_val <= max_val:
            raise ValueError(f"min_val must not exceed max_val, got min_val={min_val}, max_val={max_val}")
        bounds = (float(min_val), float(max_val))
    channel_args = []
    for name, a in (("scale", scale), ("bias", bias)):
        if a is not None:
            a = as_float_array(a, name)
            ashape, adtype = array_meta(a, name)
            check_same_dtype(dtype, adtype, "input", name)
            if tuple(ashape) != (shape[1],):
                raise ValueError(f"{name} must have shape ({shape[1]},), got {tuple(ashape)}")
        channel_args.append(a)
    if residual is not None:
        residual = as_float_array(residual, "residual")
        rshape, rdtype = array_meta(residual, "residual")
        check_same_dtype(dtype, rdtype, "input", "residual")
        if tuple(rshape) != tuple(shape):
            raise ValueError(f"residual must have input's shape {tuple(shape)}, got {tuple(rshape)}")
    backend = backend_of(input, *channel_args, residual)
    backend.check_out(out, shape, dtype)
    return backend.epilogue(input, *channel_args, residual, act, bool(residual_after_activation), bounds, out)


def _grad_and_saved(grad_output, saved, saved_name):
    """grad_output and the array a backward saved from its forward (output, mask): float
    arrays of one dtype and shape."""
    grad_output = as_float_array(grad_output, "grad_output")
    saved = as_float_array(saved, saved_name)
    gshape, gdtype = array_meta(grad_output, "grad_output")
    sshape, sdtype = array_meta(saved, saved_name)
    check_same_dtype(gdtype, sdtype, "grad_output", saved_name)
    if tuple(gshape) != tuple(sshape):
        raise ValueError(f"{saved_name} must have the shape of grad_output {tuple(gshape)}, got {tuple(sshape)}")
    return grad_output, saved


def relu_backward(grad_output, output):
    """Gradient of relu given its output (or input: the sign is the same)."""
    key, plan = _plans.find("relu_backward", (grad_output, output), ())
    if plan is not None:
        return plan(grad_output, output)
    grad_output, output = _grad_and_saved(grad_output, output, "output")
    run = backend_of(grad_output, output).relu_backward
    _plans.remember(key, run)
    return run(grad_output, output)


def sigmoid(input):
    input = as_float_array(input, "input")
    return backend_of(input).sigmoid(input)


def sigmoid_backward(grad_output, output):
    return backend_of(grad_output, output).sigmoid_backward(grad_output, output)


def tanh(input):
    input = as_float_array(input, "input")
    return backend_of(input).tanh(input)


def tanh_backward(grad_output, output):
    return backend_of(grad_output, output).tanh_backward(grad_output, output)


def _check_dim(shape, dim):
    # a 0-d array has one valid dim, like torch: -1 or 0
    rank = max(len(shape), 1)
    if not -rank <= check_int(dim, "dim") < rank:
        raise ValueError(f"dim must be an int in [{-rank}, {rank - 1}], got {dim!r}")


def _softmax_like(name, input, dim, dtype):
    """softmax / log_softmax: validation, dtype= cast, 0-d input as a 1-element line."""
    input = as_float_array(input, "input")
    shape, _ = array_meta(input, "input")
    _check_dim(shape, dim)
    if dtype is not None:
        check_float_dtype(np.dtype(dtype), "dtype")
        input = _cast(input, np.dtype(dtype))
    if len(shape) == 0:
        return _softmax_like(name, input.reshape(1), 0, None).reshape(())
    return getattr(backend_of(input), name)(input, dim)


def _cast(a, dtype):
    return a if array_meta(a, "input")[1] == dtype else backend_of(a).cast(a, dtype)


def log_softmax(input, dim=-1, *, dtype=None):
    """torch.nn.functional.log_softmax along dim; dtype= casts the input first, as torch."""
    return _softmax_like("log_softmax", input, dim, dtype)


def softmax(input, dim=-1, *, dtype=None):
    """torch.nn.functional.softmax along dim; dtype= casts the input first, as torch."""
    return _softmax_like("softmax", input, dim, dtype)


def _softmax_grad_args(grad_output, output, dim):
    grad_output, output = _grad_and_saved(grad_output, output, "output")
    gshape, _ = array_meta(grad_output, "grad_output")
    _check_dim(gshape, dim)
    if len(gshape) == 0:
        return grad_output.reshape(1), output.reshape(1), 0
    return grad_output, output, dim


def softmax_backward(grad_output, output, dim):
    """Gradient of softmax given its output."""
    g, y, d = _softmax_grad_args(grad_output, output, dim)
    return backend_of(g, y).softmax_backward(g, y, d).reshape(array_meta(grad_output, "grad_output")[0])


def log_softmax_backward(grad_output, output, dim):
    """Gradient of log_softmax given its output (host arrays only)."""
    g, y, d = _softmax_grad_args(grad_output, output, dim)
    return backend_of(g, y).log_softmax_backward(g, y, d).reshape(array_meta(grad_output, "grad_output")[0])


def _cross_entropy_args(input, target, weight, ignore_index, reduction, label_smoothing):
    """Validated (input, target, weight) for cross_entropy and its backward, unbatched input
    (C,) made (1, C) (returned flag: True then)."""
    if isinstance(weight, str):
        raise TypeError(f"cross_entropy's third argument is weight (torch's order), got {weight!r}; "
                        "pass reduction= by keyword")
    input = as_float_array(input, "input")
    if not is_cuda_array(target):
        target = np.asarray(target)
    shape, dtype = array_meta(input, "input")
    tshape, tdtype = array_meta(target, "target")
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    number_in_range(label_smoothing, "label_smoothing", 0.0, 1.0)
    check_int(ignore_index, "ignore_index")
    if len(shape) == 0:
        raise ValueError("input must be logits (N, C, d1, ...) or unbatched (C,), got a 0-d array")
    probabilities = tdtype.kind == "f"
    if probabilities:
        check_same_dtype(dtype, tdtype, "input", "target")
        if tuple(tshape) != tuple(shape):
            raise ValueError(f"class-probability target must have the input's shape {tuple(shape)}, got {tuple(tshape)}")
        if ignore_index >= 0:
            raise ValueError("ignore_index is not supported with class-probability targets")
    elif tdtype.kind in "iu":
        expected = tuple(shape[:1]) + tuple(shape[2:]) if len(shape) > 1 else ()
        if tuple(tshape) != expected:
            raise ValueError(f"class-index target must have shape {expected} for input {tuple(shape)}, "
                             f"got {tuple(tshape)}")
        if isinstance(target, np.ndarray):
            bad = (target != ignore_index) & ((target < 0) | (target >= shape[1 if len(shape) > 1 else 0]))
            if bad.any():
                raise ValueError(f"target values must lie in [0, {shape[1 if len(shape) > 1 else 0]}) "
                                 f"or equal ignore_index={ignore_index}, got {target[bad].flat[0]}")
    else:
        raise TypeError(f"target must hold integer class indices or float class probabilities, got dtype {tdtype}")
    if weight is not None:
        weight = as_float_array(weight, "weight")
        wshape, wdtype = array_meta(weight, "weight")
        check_same_dtype(dtype, wdtype, "input", "weight")
        classes = shape[1] if len(shape) > 1 else shape[0]
        if tuple(wshape) != (classes,):
            raise ValueError(f"weight must have shape ({classes},), got {tuple(wshape)}")
    unbatched = len(shape) == 1
    if unbatched:
        input, target = _batch(input), _batch(target)
    return input, target, weight, unbatched


def cross_entropy(input, target, weight=None, *, ignore_index=-100, reduction="mean", label_smoothing=0.0):
    """torch.nn.functional.cross_entropy from logits, computed stably through log_softmax.

    input (N, C), (N, C, d1, ...) or unbatched (C,); target class indices (N, d1, ...) (int),
    or class probabilities of the input's shape (float). weight (C,) rescales each class;
    positions whose index target equals ignore_index count neither in the loss nor in the
    mean. reduction 'mean' | 'sum' | 'none'; label_smoothing in [0, 1].
    """
    x, t, w, unbatched = _cross_entropy_args(input, target, weight, ignore_index, reduction, label_smoothing)
    loss = backend_of(x, t, w).cross_entropy(x, t, w, ignore_index, reduction, float(label_smoothing))
    return loss[0] if unbatched and reduction == "none" else loss


def cross_entropy_backward(input, target, weight=None, *, ignore_index=-100, reduction="mean",
                           label_smoothing=0.0, grad_output=None):
    """d(cross_entropy)/d(input), same arguments as cross_entropy. grad_output: the gradient
    arriving at the loss (a scalar, or the loss's shape for reduction='none'); None means 1."""
    x, t, w, unbatched = _cross_entropy_args(input, target, weight, ignore_index, reduction, label_smoothing)
    if grad_output is not None:
        shape = tuple(array_meta(x, "input")[0])
        loss_shape = shape[:1] + shape[2:] if reduction == "none" else ()
        grad_output = as_float_array(grad_output, "grad_output")
        gshape = tuple(array_meta(grad_output, "grad_output")[0])
        expected = loss_shape if not unbatched else ()
        if gshape != expected:
            raise ValueError(f"grad_output must have the loss's shape {expected}, got {gshape}")
        grad_output = grad_output.reshape(loss_shape)
    grad = backend_of(x, t, w, grad_output).cross_entropy_backward(x, t, w, ignore_index, reduction,
                                                                   float(label_smoothing), grad_output)
    return grad[0] if unbatched else grad


# ---------------------------------------------------------------------------- dropout

def dropout(input, p=0.5, training=True, inplace=False, *, generator=None, return_mask=False):
    """torch.nn.functional.dropout: in training, zero each element with probability p and
    scale the rest by 1/(1-p) (p = 1 zeroes everything); otherwise return input unchanged.

    generator: a numpy Generator or an int seed for a reproducible mask (None: fresh entropy).
    return_mask=True returns (output, mask) with mask = keep / (1-p) for dropout_backward
    (mask None when nothing was dropped). inplace=True writes the result into input.
    """
    input = as_float_array(input, "input")
    p = number_in_range(p, "dropout probability p", 0.0, 1.0)
    if not isinstance(training, (bool, np.bool_)):
        raise TypeError(f"training must be a bool, got {training!r}")
    if not training or p == 0:
        return (input, None) if return_mask else input
    if generator is None or isinstance(generator, (int, np.integer)) and not isinstance(generator, bool):
        generator = np.random.default_rng(generator)
    elif not isinstance(generator, np.random.Generator):
        raise TypeError(f"generator must be a numpy Generator, an int seed or None, got {type(generator).__name__}")
    backend = backend_of(input)
    y, mask = backend.dropout_mask_mul(input, float(p), generator)
    if inplace:
        y = backend.copy_into(input, y)
    return (y, mask) if return_mask else y


def dropout_backward(grad_output, mask):
    """Gradient of dropout: grad_output * mask (the mask dropout returned; None: identity)."""
    if mask is None:
        return as_float_array(grad_output, "grad_output")
    grad_output, mask = _grad_and_saved(grad_output, mask, "mask")
    return backend_of(grad_output, mask).mul(grad_output, mask)
