"""autograd Functions that run fastconv's kernels, and the functional forms users call.

Each Function keeps for backward only what backward will use, and computes only the gradients
autograd asks for (``ctx.needs_input_grad``). Backward passes are not themselves differentiable
(``once_differentiable``): double backward raises instead of being wrong. When autograd records
nothing (no_grad, inference_mode, no argument requiring a gradient) the ops skip the Function and
call the kernels directly, which saves its per-call cost. Arguments are validated by
fastconv.functional, which raises ValueError / TypeError naming them.
"""
from __future__ import annotations

import torch
from torch import Tensor, is_grad_enabled
from torch.autograd.function import once_differentiable

from fastconv import _cpu
from fastconv import functional as F
from fastconv._algorithm import winograd_unsupported
from fastconv._validate import int_pair
from fastconv.torch._arrays import FLOAT_DTYPES, needs_graph, to_array, to_tensor


def _check_tensor(t, name):
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")


def _input_grad_algorithm(algorithm, conv, weight_shape):
    """The algorithm for conv2d_input: the forward's, except where Winograd can run the forward
    but not its input gradient (explicit padding > 2): then "auto" (which runs direct)."""
    stride, padding, dilation, _ = conv
    if algorithm in ("auto", "direct") or isinstance(padding, str):
        return algorithm
    reason = winograd_unsupported(weight_shape[2:], int_pair(stride, "stride", 1), int_pair(dilation, "dilation", 1),
                                  int_pair(padding, "padding", 0), input_grad=True)
    return "auto" if reason else algorithm


# ---------------------------------------------------------------- forward computations

def _conv2d(input, weight, bias, stride, padding, dilation, groups, algorithm):
    if input.is_cuda:
        y = F.conv2d(to_array(input), to_array(weight), None if bias is None else to_array(bias),
                     stride, padding, dilation, groups, algorithm=algorithm)
        return to_tensor(y, input.device)
    # the CPU path spelled out (to_array / to_tensor inlined): this runs on every call, and a
    # tiny conv's whole adapter cost is a few such Python calls. force=True as in to_array;
    # F.conv2d rejects any other device's tensor with a clear error.
    y = F.conv2d(input.numpy(force=True), weight.numpy(force=True), None if bias is None else bias.numpy(force=True),
                 stride, padding, dilation, groups, algorithm=algorithm)
    return torch.from_numpy(y)


def _max_pool2d(input, kernel_size, stride, padding, dilation, ceil_mode):
    y, indices = F.max_pool2d(to_array(input), kernel_size, stride, padding, dilation, ceil_mode,
                              return_indices=True)
    return to_tensor(y, input.device), to_tensor(indices, input.device)


def _avg_pool2d(input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override):
    y = F.avg_pool2d(to_array(input), kernel_size, stride, padding, ceil_mode, count_include_pad,
                     divisor_override)
    return to_tensor(y, input.device)


@torch.compiler.disable
def linear(input, weight, bias=None):
    """torch.nn.functional.linear on fastconv's few-rows kernels where they apply (1-8 rows of a
    2-D CPU input, fastconv._cpu.few_rows_linear's rule: every weight read once per pass, streamed
    on fastconv's threads), torch's own linear otherwise."""
    if not (input.dim() == 2 and _cpu_float(input) and _cpu_float(weight) and (bias is None or _cpu_float(bias))
            and _cpu.few_rows_linear(to_array(input), to_array(weight), None if bias is None else to_array(bias))):
        return torch.nn.functional.linear(input, weight, bias)
    if needs_graph(input, weight, bias):
        return LinearFunction.apply(input, weight, bias)
    return _linear(input, weight, bias)


def _cpu_float(t):
    return t.device.type == "cpu" and t.dtype in FLOAT_DTYPES


def _linear(input, weight, bias):
    return torch.from_numpy(_cpu.linear(to_array(input), to_array(weight), None if bias is None else to_array(bias)))


# ---------------------------------------------------------------- autograd Functions

class LinearFunction(torch.autograd.Function):
    """y = x @ w.T + b for 1-8 rows; both gradients in one pass over the weights
    (_C.linear_backward_few_rows)."""

    @staticmethod
    def forward(ctx, input, weight, bias):
        ctx.save_for_backward(input, weight)
        return _linear(input, weight, bias)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output):
        input, weight = ctx.saved_tensors
        needs_input, needs_weight, needs_bias = ctx.needs_input_grad[:3]
        grad_input = grad_weight = grad_bias = None
        if needs_input or needs_weight:
            gx, gw, _ = _cpu.linear_backward(to_array(input), to_array(weight),
                                             to_array(grad_output.contiguous()), False)
            grad_input = torch.from_numpy(gx) if needs_input else None
            grad_weight = torch.from_numpy(gw) if needs_weight else None
        if needs_bias:
            grad_bias = grad_output.sum(0)
        return grad_input, grad_weight, grad_bias


class Conv2dFunction(torch.autograd.Function):
    """y = conv2d(x, w, b); gradients by fastconv's conv2d_input / conv2d_weight kernels."""

    @staticmethod
    def forward(ctx, input, weight, bias, conv, algorithm):
        """conv: (stride, padding, dilation, groups), one argument so that apply() has fewer to scan."""
        needs_input, needs_weight = ctx.needs_input_grad[:2]
        # conv2d_input reads only the weight, conv2d_weight only the input
        ctx.save_for_backward(weight if needs_input else None, input if needs_weight else None)
        ctx.input_shape = input.shape
        ctx.weight_shape = weight.shape
        ctx.conv = conv
        ctx.algorithm = algorithm
        return _conv2d(input, weight, bias, *conv, algorithm)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output):
        weight, input = ctx.saved_tensors
        needs_input, needs_weight, needs_bias = ctx.needs_input_grad[:3]
        dy = to_array(grad_output)
        device = grad_output.device
        grad_input = grad_weight = grad_bias = None
        if needs_input:
            algorithm = _input_grad_algorithm(ctx.algorithm, ctx.conv, ctx.weight_shape)
            grad_input = to_tensor(F.conv2d_input(ctx.input_shape, to_array(weight), dy, *ctx.conv,
                                                  algorithm=algorithm), device)
        if needs_weight:
            grad_weight = to_tensor(F.conv2d_weight(to_array(input), ctx.weight_shape, dy, *ctx.conv,
                                                    algorithm=ctx.algorithm), device)
        if needs_bias:
            grad_bias = grad_output.sum((0, 2, 3))
        return grad_input, grad_weight, grad_bias, None, None


class MaxPool2dFunction(torch.autograd.Function):
    """(y, indices) = max_pool2d(x); the gradient scatter-adds grad_output at the indices."""

    @staticmethod
    def forward(ctx, input, pool):
        """pool: (kernel_size, stride, padding, dilation, ceil_mode)."""
        y, indices = _max_pool2d(input, *pool)
        ctx.mark_non_differentiable(indices)
        ctx.save_for_backward(indices)
        ctx.input_shape = input.shape
        return y, indices

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output, _grad_indices):
        (indices,) = ctx.saved_tensors
        grad = F.max_pool2d_backward(to_array(grad_output), to_array(indices), ctx.input_shape)
        return to_tensor(grad, grad_output.device), None


class AvgPool2dFunction(torch.autograd.Function):
    """y = avg_pool2d(x); its gradient spreads each grad_output value over its window."""

    @staticmethod
    def forward(ctx, input, pool):
        """pool: (kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override)."""
        ctx.input_shape = input.shape
        ctx.pool = pool
        return _avg_pool2d(input, *pool)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output):
        grad = F.avg_pool2d_backward(to_array(grad_output), ctx.input_shape, *ctx.pool)
        return to_tensor(grad, grad_output.device), None


# ---------------------------------------------------------------- the functional forms
# Same signatures as torch.nn.functional. Unbatched (C, H, W) input runs as a batch of one: the
# unsqueeze / squeeze are torch views, so autograd sees through them.
# torch.compile: dynamo cannot trace into numpy-backed kernels, so it breaks the graph at each
# op. torch.compiler.disable makes it stop at the call instead of tracing into our code first,
# which cuts compile time ~8x (43 s -> 5 s for a 7-layer net here) for ~1 us per eager call.


@torch.compiler.disable
def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, *, algorithm="auto"):
    """torch.nn.functional.conv2d on fastconv's kernels; algorithm as in fastconv.functional.conv2d."""
    # one combined test on the hot path; the per-argument checks only to name the culprit
    if not (isinstance(input, Tensor) and isinstance(weight, Tensor) and (bias is None or isinstance(bias, Tensor))):
        _check_tensor(input, "input")
        _check_tensor(weight, "weight")
        _check_tensor(bias, "bias")
    if input.dim() == 3:
        return conv2d(input.unsqueeze(0), weight, bias, stride, padding, dilation, groups,
                      algorithm=algorithm).squeeze(0)
    # needs_graph(input, weight, bias), inlined
    if is_grad_enabled() and (input.requires_grad or weight.requires_grad
                              or (bias is not None and bias.requires_grad)):
        return Conv2dFunction.apply(input, weight, bias, (stride, padding, dilation, groups), algorithm)
    return _conv2d(input, weight, bias, stride, padding, dilation, groups, algorithm)


@torch.compiler.disable
def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """torch.nn.functional.max_pool2d on fastconv's kernels (indices flat per plane, int64, as torch)."""
    _check_tensor(input, "input")
    if input.dim() == 3:
        y, indices = max_pool2d(input.unsqueeze(0), kernel_size, stride, padding, dilation, ceil_mode, True)
        return (y.squeeze(0), indices.squeeze(0)) if return_indices else y.squeeze(0)
    pool = (kernel_size, stride, padding, dilation, ceil_mode)
    if needs_graph(input):
        y, indices = MaxPool2dFunction.apply(input, pool)
        return (y, indices) if return_indices else y
    if not return_indices:  # no graph, no indices asked for: the values-only kernel
        return to_tensor(F.max_pool2d(to_array(input), *pool), input.device)
    return _max_pool2d(input, *pool)


@torch.compiler.disable
def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    """torch.nn.functional.avg_pool2d on fastconv's kernels."""
    _check_tensor(input, "input")
    if input.dim() == 3:
        return avg_pool2d(input.unsqueeze(0), kernel_size, stride, padding, ceil_mode, count_include_pad,
                          divisor_override).squeeze(0)
    pool = (kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override)
    return AvgPool2dFunction.apply(input, pool) if needs_graph(input) else _avg_pool2d(input, *pool)
