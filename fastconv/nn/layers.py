"""Layers: forward(x) caches what backward needs; backward(grad_output) returns grad_input and
accumulates parameter gradients into Parameter.grad; input_grad(grad_output) returns grad_input
alone (fastconv.interpret's walk). Constructor arguments mirror torch.nn.

Everything runs through fastconv.functional (or fastconv.nn._ops), so a layer works on
whichever device its arrays live on. Shapes in the one-line comment of each forward.
"""
from __future__ import annotations

import math

import numpy as np

from fastconv import functional as F
from fastconv._geometry import adaptive_output_size
from fastconv._validate import int_pair
from fastconv.device import device_of, to_device, to_host
from fastconv.nn import _ops
from fastconv.nn import init
from fastconv.nn.grad_mode import is_grad_enabled, needed, saved
from fastconv.nn.module import Module, Parameter


class Conv2d(Module):
    """torch.nn.Conv2d. On the CPU the layer keeps its Winograd-transformed weights between
    calls when auto picks Winograd for the input shape (fastconv.functional.conv2d_algorithm
    with weights_reused=True): a 512-channel layer at a 14x14 map then skips transforming
    9 MB of weights per call. The cache belongs to one (Parameter, data array, version): an
    optimizer step, load_state_dict, a new Parameter or new data all make it stale."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, bias=True, *, rng=None, seed=None, dtype=np.float32):
        super().__init__()
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"in_channels {in_channels} and out_channels {out_channels} must be divisible "
                             f"by groups {groups}")
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel_size = int_pair(kernel_size, "kernel_size", 1)
        self.stride = int_pair(stride, "stride", 1)
        self.padding = padding if isinstance(padding, str) else int_pair(padding, "padding", 0)
        self.dilation = int_pair(dilation, "dilation", 1)
        self.groups = int(groups)
        rng = init.resolve_rng(rng, seed)
        shape = (out_channels, in_channels // groups) + self.kernel_size
        self.weight = Parameter(init.kaiming_uniform(shape, rng=rng, dtype=dtype))
        self.bias = Parameter(init.uniform((out_channels,), 1 / math.sqrt(init.fan_in(shape)), rng, dtype)) \
            if bias else None
        self._x = None
        self._winograd = None  # ((Parameter, array, version), {input shape: plan}); see _weight_for

    def forward(self, x):  # (N, C, H, W) -> (N, K, OH, OW)
        self._x = saved(x)
        return F.conv2d(x, self._weight_for(x), None if self.bias is None else self.bias.data,
                        self.stride, self.padding, self.dilation, self.groups)

    def forward_relu(self, x):
        """relu(forward(x)) for inference (fastconv.nn.no_grad()): one call, the ReLU in the conv's
        own output pass where the backend has one (the CPU's conv epilogue, as in the compiled
        torch plans), so the output is written once rather than written, then read and written
        again by a ReLU pass. With gradients enabled the two run in turn (the ReLU's backward
        needs its own output)."""
        if is_grad_enabled():
            return F.relu(self.forward(x))
        self._x = None
        return F._conv2d_relu(x, self._weight_for(x), None if self.bias is None else self.bias.data,
                              self.stride, self.padding, self.dilation, self.groups)

    def _weight_for(self, x):
        """The weight to hand to conv2d for input x: the cached Winograd transform when the same
        weight values run a second time and auto then picks Winograd, else the weight array.
        (Training changes the weights every step: nothing would be reused, so nothing is cached.)"""
        w = self.weight
        if not (self.kernel_size in ((3, 3), (5, 5)) and isinstance(x, np.ndarray) and isinstance(w.data, np.ndarray)  # cheapest test first
                and x.ndim == 4 and x.dtype == w.data.dtype and x.dtype in (np.float32, np.float64)):
            return w.data
        values = (w, w.data, w.version)  # the objects themselves: ids of freed ones could recur
        if self._winograd is None or not _same_values(self._winograd[0], values):
            self._winograd = (values, {})  # first sight of these values: no transform yet
            return w.data
        plans = self._winograd[1]  # input shape -> WinogradWeights, or None for direct
        if x.shape not in plans:
            args = (x.shape, w.shape, self.stride, self.padding, self.dilation, self.groups)
            algorithm = F.conv2d_algorithm(*args, weights_reused=True)
            # None: conv2d gets the weight array and auto picks per call. That is also the better
            # choice where the model picks direct with cached weights but Winograd without: few
            # tiles run a driver that transforms each weight slice as it goes and cannot read a
            # cache (winograd.cpp's tile-rows driver; AlexNet's 13x13 layers).
            plans[x.shape] = None if algorithm == "direct" else self._transformed(int(algorithm[-1]), plans)
        plan = plans[x.shape]
        return w.data if plan is None else plan

    def _transformed(self, tile, plans):
        """The weights transformed for tile, shared by every input shape that uses that tile."""
        for plan in plans.values():
            if plan is not None and plan.tile == tile:
                return plan
        return F.winograd_weights(self.weight.data, tile, self.groups)

    def backward(self, dy, need_input_grad=True):  # (N, K, OH, OW) -> (N, C, H, W)
        x, w = needed(self._x, self), self.weight
        w.grad = _ops.accumulate(w.grad, F.conv2d_weight(x, w.shape, dy, self.stride, self.padding,
                                                         self.dilation, self.groups))
        if self.bias is not None:
            self.bias.grad = _ops.accumulate(self.bias.grad, _ops.bias_grad(dy))
        if not need_input_grad:
            return None
        return F.conv2d_input(x.shape, w.data, dy, self.stride, self.padding, self.dilation, self.groups)

    def input_grad(self, dy):  # (N, K, OH, OW) -> (N, C, H, W), no weight gradient
        return F.conv2d_input(needed(self._x, self).shape, self.weight.data, dy, self.stride, self.padding,
                              self.dilation, self.groups)

    def extra_repr(self):
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}")


def _same_values(a, b):
    """(Parameter, array, version) triples naming the same weight values."""
    return a[0] is b[0] and a[1] is b[1] and a[2] == b[2]


class Linear(Module):
    def __init__(self, in_features, out_features, bias=True, *, rng=None, seed=None, dtype=np.float32):
        super().__init__()
        self.in_features, self.out_features = int(in_features), int(out_features)
        rng = init.resolve_rng(rng, seed)
        shape = (out_features, in_features)
        self.weight = Parameter(init.kaiming_uniform(shape, rng=rng, dtype=dtype))
        self.bias = Parameter(init.uniform((out_features,), 1 / math.sqrt(in_features), rng, dtype)) \
            if bias else None
        self._x = None
        self._weight_t = None  # ((Parameter, array, version), w.T as a contiguous device array)

    def forward(self, x):  # (N, in) -> (N, out)
        self._x = saved(x)
        return F.linear(x, self.weight.data, None if self.bias is None else self.bias.data)

    def backward(self, dy, need_input_grad=True):  # (N, out) -> (N, in)
        gx, gw, gb = F.linear_backward(needed(self._x, self), self.weight.data, dy, self.bias is not None)
        self.weight.grad = _ops.accumulate(self.weight.grad, gw)
        if self.bias is not None:
            self.bias.grad = _ops.accumulate(self.bias.grad, gb)
        return gx if need_input_grad else None

    def input_grad(self, dy):  # (N, out) -> (N, in), no weight gradient
        return F.linear(dy, self._transposed_weight())

    def _transposed_weight(self):
        """weight.T: a view on the host (BLAS reads it in place); on a device a contiguous copy,
        kept while the weight values stay (interpretation runs many steps on one set)."""
        w = self.weight
        if device_of(w.data) == "cpu":
            return w.data.T
        values = (w, w.data, w.version)
        if self._weight_t is None or not _same_values(self._weight_t[0], values):
            self._weight_t = (values, to_device(np.ascontiguousarray(to_host(w.data).T)))
        return self._weight_t[1]

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}"


class MaxPool2d(Module):
    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.dilation, self.ceil_mode = dilation, ceil_mode
        self._idx = self._in_shape = None

    def forward(self, x):  # (N, C, H, W) -> (N, C, OH, OW)
        self._in_shape = tuple(x.shape)
        pool = (self.kernel_size, self.stride, self.padding, self.dilation, self.ceil_mode)
        if not is_grad_enabled():  # nothing to save: the values-only kernel
            self._idx = None
            return F.max_pool2d(x, *pool)
        y, self._idx = F.max_pool2d(x, *pool, return_indices=True)
        return y

    def backward(self, dy, need_input_grad=True):
        return F.max_pool2d_backward(dy, needed(self._idx, self), self._in_shape) if need_input_grad else None

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}"


class AvgPool2d(Module):
    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
                 divisor_override=None):
        super().__init__()
        self.args = (kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override)
        self._in_shape = None

    def forward(self, x):  # (N, C, H, W) -> (N, C, OH, OW)
        self._in_shape = tuple(x.shape)
        return F.avg_pool2d(x, *self.args)

    def backward(self, dy, need_input_grad=True):
        return F.avg_pool2d_backward(dy, self._in_shape, *self.args) if need_input_grad else None

    def extra_repr(self):
        return f"kernel_size={self.args[0]}, stride={self.args[1]}"


class AdaptiveAvgPool2d(Module):
    """torch.nn.AdaptiveAvgPool2d: fastconv.functional.adaptive_avg_pool2d and its backward."""

    def __init__(self, output_size):
        super().__init__()
        adaptive_output_size(output_size, (1, 1))  # reject a bad size now, not at the first forward
        self.output_size = output_size
        self._in_shape = None

    def forward(self, x):  # (N, C, H, W) -> (N, C, oh, ow)
        self._in_shape = tuple(x.shape)
        return F.adaptive_avg_pool2d(x, self.output_size)

    def backward(self, dy, need_input_grad=True):
        return F.adaptive_avg_pool2d_backward(dy, self._in_shape) if need_input_grad else None

    def extra_repr(self):
        return f"output_size={self.output_size}"


class ReLU(Module):
    def __init__(self, inplace=False):  # inplace accepted for torch compatibility; ignored
        super().__init__()
        self._y = None

    def forward(self, x):
        y = F.relu(x)
        self._y = saved(y)
        return y

    def backward(self, dy, need_input_grad=True):
        return F.relu_backward(dy, needed(self._y, self))


class Sigmoid(Module):
    def __init__(self):
        super().__init__()
        self._y = None

    def forward(self, x):
        y = F.sigmoid(x)
        self._y = saved(y)
        return y

    def backward(self, dy, need_input_grad=True):
        return F.sigmoid_backward(dy, needed(self._y, self))


class Tanh(Module):
    def __init__(self):
        super().__init__()
        self._y = None

    def forward(self, x):
        y = F.tanh(x)
        self._y = saved(y)
        return y

    def backward(self, dy, need_input_grad=True):
        return F.tanh_backward(dy, needed(self._y, self))


class Softmax(Module):
    """Probabilities along dim (inference output; train on logits with CrossEntropyLoss)."""

    def __init__(self, dim=1):
        super().__init__()
        self.dim = dim
        self._y = None

    def forward(self, x):
        y = F.softmax(x, self.dim)
        self._y = saved(y)
        return y

    def backward(self, dy, need_input_grad=True):
        return _ops.softmax_backward(dy, needed(self._y, self), self.dim)


class Flatten(Module):
    def __init__(self, start_dim=1):
        super().__init__()
        if start_dim != 1:
            raise ValueError(f"only start_dim=1 is supported, got {start_dim}")
        self._in_shape = None

    def forward(self, x):  # (N, ...) -> (N, prod(...))
        self._in_shape = tuple(x.shape)
        return x.reshape(self._in_shape[0], int(np.prod(self._in_shape[1:])))

    def backward(self, dy, need_input_grad=True):
        return dy.reshape(self._in_shape)


class Identity(Module):
    def forward(self, x):
        return x

    def backward(self, dy, need_input_grad=True):
        return dy


class Dropout(Module):
    """Zeroes elements with probability p in training (scaling the rest by 1/(1-p)); identity in eval."""

    def __init__(self, p=0.5, inplace=False, *, rng=None, seed=None):
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout probability p must be in [0, 1), got {p}")
        self.p = float(p)
        # a generator of its own, seeded from the global one at construction: reproducible
        # after fastconv.nn.manual_seed without coupling to the order of other draws
        base = init.resolve_rng(rng, seed)
        self._rng = np.random.default_rng(base.integers(2**63)) if rng is None else rng
        self._mask = None

    def forward(self, x):
        if not self.training or self.p == 0.0:
            self._mask = None
            return x
        y, self._mask = _ops.dropout_mask_mul(x, self.p, self._rng)
        return y

    def backward(self, dy, need_input_grad=True):
        return dy if self._mask is None else _ops.mul(dy, self._mask)

    def extra_repr(self):
        return f"p={self.p}"
