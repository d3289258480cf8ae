"""The one forward/backward walk every interpretation routine runs on a Sequential's leaves.

Why not Sequential.backward_from: it also computes (and accumulates into Parameter.grad) every
weight gradient, which costs as much as the input gradient and would pollute a training run's
gradients; interpretation needs d(objective)/d(input or activation) only. Walking the leaves
here also gives guided backprop its modified ReLU backward without any global hook.

Conv2d, Linear, ReLU, MaxPool2d, Sigmoid, Tanh, Flatten, Dropout (the identity: interpretation
is inference) run through fastconv.functional from the layers' public attributes; any other
leaf (AvgPool2d, AdaptiveAvgPool2d, Softmax, user layers) runs its own forward/backward.
"""
from __future__ import annotations

import numpy as np

from fastconv import functional as F
from fastconv import nn
from fastconv.device import is_cuda_array, to_device, to_host


def layer_names(model):
    return [name for name, _ in model.leaves()]


def end_index(model, name):
    """One past the last leaf that is `name` or lies inside it; ValueError for unknown names."""
    if not isinstance(name, str):
        raise TypeError(f"layer must be a layer name (str), got {type(name).__name__}")
    hits = [i for i, n in enumerate(layer_names(model)) if n == name or n.startswith(name + ".")]
    if not hits:
        raise ValueError(f"unknown layer {name!r}; layers: {layer_names(model)}")
    return hits[-1] + 1


def check_model(model):
    if not isinstance(model, nn.Sequential):
        raise TypeError(f"model must be a fastconv.nn.Sequential, got {type(model).__name__}")
    return model


def param_dtype(model):
    for p in model.parameters():
        return np.dtype(p.data.dtype)
    return np.dtype(np.float32)


def input_channels(model):
    """in_channels of the first Conv2d (None when the net has no convolution)."""
    for _, layer in model.leaves():
        if isinstance(layer, nn.Conv2d):
            return layer.in_channels
    return None


def check_images(model, images, name="images"):
    """(N, C, H, W) floating array with the model's input channels, as the model's dtype on the
    model's device. Host inputs are checked for finiteness."""
    if not is_cuda_array(images):
        images = np.asarray(images)
    shape, dtype = tuple(images.shape), np.dtype(images.dtype)
    if len(shape) != 4 or min(shape) < 1:
        raise ValueError(f"{name} must be a non-empty (N, C, H, W) array, got shape {shape}")
    if dtype.kind != "f":
        raise TypeError(f"{name} must be floating point (values as the model was trained on), got {dtype}")
    c = input_channels(model)
    if c is not None and shape[1] != c:
        raise ValueError(f"{name} must have {c} channels for this model, got shape {shape}")
    if not is_cuda_array(images) and not np.isfinite(images).all():
        raise ValueError(f"{name} contains NaN or infinity")
    return on_model_device(model, images)


def on_model_device(model, a):
    """a cast to the model's dtype and moved to its device (host arrays stay host arrays)."""
    dtype = param_dtype(model)
    if model.device == "cuda":
        return to_device(np.ascontiguousarray(to_host(a), dtype=dtype))
    return np.ascontiguousarray(to_host(a), dtype=dtype)


def check_targets(targets, n, num_classes, name="targets"):
    """(n,) int64 class indices from an int or a sequence, each in [0, num_classes)."""
    t = np.asarray(targets)
    if t.dtype.kind not in "iu" and not (t.dtype.kind == "f" and np.all(t == np.round(t))):
        raise TypeError(f"{name} must be class indices (ints), got {targets!r}")
    t = t.astype(np.int64).reshape(-1)
    if t.size == 1 and n > 1:
        t = np.repeat(t, n)
    if t.size != n:
        raise ValueError(f"{name} must be one int or {n} ints (one per image), got {t.size}")
    bad = t[(t < 0) | (t >= num_classes)]
    if bad.size:
        raise ValueError(f"{name} must be in [0, {num_classes}) (the model's outputs), got {int(bad[0])}")
    return t


def one_hot_like(out, targets, scale=1.0):
    """Gradient seed: scale at (i, targets[i]) of an (N, classes) output, on out's device."""
    g = np.zeros(tuple(out.shape), np.dtype(out.dtype))
    g[np.arange(len(targets)), targets] = scale
    return to_device(g) if is_cuda_array(out) else g


class Tape:
    """Forward through model.leaves() keeping what the input gradient needs, then backward.

    forward(x, stop) runs leaves [0, stop); backward(g, top, bottom) takes g as the gradient of
    leaf top-1's output and returns the gradient of leaf bottom's input. guided=True makes every
    ReLU pass only positive gradients where its output is positive (Springenberg et al. 2015)."""

    def __init__(self, model, guided=False):
        self.model = check_model(model)
        self.leaves = model.leaves()
        self.guided = guided
        self._cache = [None] * len(self.leaves)
        self._linear_t = {}  # CUDA only: transposed Linear weights, made once per tape

    def forward(self, x, stop=None, start=0, keep=()):
        """Output of leaf stop-1 fed x at leaf start; also {name: output} for names in keep."""
        stop = len(self.leaves) if stop is None else stop
        kept = {}
        for i in range(start, stop):
            name, layer = self.leaves[i]
            x = self._forward_leaf(i, layer, x)
            if name in keep:
                kept[name] = x
        return (x, kept) if keep else x

    def backward(self, g, top=None, bottom=0):
        top = len(self.leaves) if top is None else top
        for i in range(top - 1, bottom - 1, -1):
            g = self._backward_leaf(i, self.leaves[i][1], g)
        return g

    def _forward_leaf(self, i, layer, x):
        if isinstance(layer, nn.Conv2d):
            self._cache[i] = tuple(x.shape)
            return F.conv2d(x, layer.weight.data, None if layer.bias is None else layer.bias.data,
                            layer.stride, layer.padding, layer.dilation, layer.groups)
        if isinstance(layer, nn.Linear):
            self._cache[i] = None
            return F.linear(x, layer.weight.data, None if layer.bias is None else layer.bias.data)
        if isinstance(layer, nn.ReLU):
            y = F.relu(x)
            self._cache[i] = y
            return y
        if isinstance(layer, (nn.Sigmoid, nn.Tanh)):
            y = F.sigmoid(x) if isinstance(layer, nn.Sigmoid) else F.tanh(x)
            self._cache[i] = y
            return y
        if isinstance(layer, nn.MaxPool2d):
            y, idx = F.max_pool2d(x, layer.kernel_size, layer.stride, layer.padding, layer.dilation,
                                  layer.ceil_mode, return_indices=True)
            self._cache[i] = (idx, tuple(x.shape))
            return y
        if isinstance(layer, nn.Flatten):
            self._cache[i] = tuple(x.shape)
            return x.reshape(x.shape[0], -1)
        if isinstance(layer, (nn.Dropout, nn.Identity)):
            return x
        return layer.forward(x)

    def _backward_leaf(self, i, layer, g):
        c = self._cache[i]
        if isinstance(layer, nn.Conv2d):
            return F.conv2d_input(c, layer.weight.data, g, layer.stride, layer.padding, layer.dilation,
                                  layer.groups)
        if isinstance(layer, nn.Linear):
            return self._linear_input_grad(i, layer, g)
        if isinstance(layer, nn.ReLU):
            return F.relu_backward(F.relu(g) if self.guided else g, c)
        if isinstance(layer, nn.Sigmoid):
            return F.sigmoid_backward(g, c)
        if isinstance(layer, nn.Tanh):
            return F.tanh_backward(g, c)
        if isinstance(layer, nn.MaxPool2d):
            return F.max_pool2d_backward(g, c[0], c[1])
        if isinstance(layer, nn.Flatten):
            return g.reshape(c)
        if isinstance(layer, (nn.Dropout, nn.Identity)):
            return g
        return layer.backward(g)

    def _linear_input_grad(self, i, layer, g):
        w = layer.weight.data
        if not is_cuda_array(g):
            return g @ w  # BLAS reads w transposed in place: no copy, no weight gradient
        if i not in self._linear_t:
            self._linear_t[i] = to_device(np.ascontiguousarray(to_host(w).T))
        return F.linear(g, self._linear_t[i])
