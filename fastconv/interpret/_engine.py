"""The one forward/backward walk every interpretation routine runs on a Sequential's leaves.

Why not Sequential.backward_from: it also computes (and accumulates into Parameter.grad) every
weight gradient, which costs as much as the input gradient and would pollute a training run's
gradients; interpretation needs d(objective)/d(input or activation) only, which each layer's
input_grad gives. The layers run themselves, so nn.Conv2d's cached Winograd weights serve the
hundreds of forwards of a gradient ascent. Walking the leaves here also gives guided backprop
its modified ReLU backward without any global hook.
"""
from __future__ import annotations

import numpy as np

from fastconv import functional as F
from fastconv import nn
from fastconv.device import is_cuda_array, to_device, to_host


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
    """Forward through model.leaves(), each layer keeping what its input gradient needs, then
    backward through the layers' input_grad (no parameter gradient is computed or touched).

    forward(x, stop) runs leaves [0, stop); backward(g, top, bottom) takes g as the gradient of
    leaf top-1's output and returns the gradient of leaf bottom's input. Dropout is the identity
    (interpretation is inference). guided=True makes every ReLU pass only positive gradients
    where its output is positive (Springenberg et al. 2015)."""

    def __init__(self, model, guided=False):
        self.model = check_model(model)
        self.leaves = model.leaves()
        self.guided = guided

    def forward(self, x, stop=None, start=0, keep=()):
        """Output of leaf stop-1 fed x at leaf start; also {name: output} for names in keep."""
        stop = len(self.leaves) if stop is None else stop
        kept = {}
        for name, layer in self.leaves[start:stop]:
            if not isinstance(layer, nn.Dropout):
                x = layer.forward(x)
            if name in keep:
                kept[name] = x
        return (x, kept) if keep else x

    def backward(self, g, top=None, bottom=0):
        top = len(self.leaves) if top is None else top
        for _, layer in reversed(self.leaves[bottom:top]):
            if isinstance(layer, nn.Dropout):
                continue
            if self.guided and isinstance(layer, nn.ReLU):
                g = F.relu(g)
            g = layer.input_grad(g)
        return g
