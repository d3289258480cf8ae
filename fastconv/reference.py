"""Plain numpy float64 implementations of every op: slow, obvious, and the oracle of the tests.

Each function takes the same arguments as its twin in :mod:`fastconv.functional` (already
normalised: stride/padding/dilation as ``(h, w)`` pairs of ints) and returns float64.
"""
from __future__ import annotations

import numpy as np

from fastconv._geometry import conv_output_size, pool_output_size  # the one formula
from fastconv._validate import int_pair


def _taps(xp, r, s, oh, ow, stride, dilation):
    """The (N, C, OH, OW) input values kernel tap (r, s) sees (xp is already padded)."""
    h0, w0 = r * dilation[0], s * dilation[1]
    return xp[:, :, h0:h0 + stride[0] * (oh - 1) + 1:stride[0], w0:w0 + stride[1] * (ow - 1) + 1:stride[1]]


def conv2d(x, w, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """Cross-correlation, NCHW x OIHW -> NKHW, float64."""
    stride, dilation = int_pair(stride, "stride", 1), int_pair(dilation, "dilation", 1)
    padding = int_pair(padding, "padding", 0)
    x = np.asarray(x, np.float64)
    w = np.asarray(w, np.float64)
    n, c, h, wd = x.shape
    k, cg, r_, s_ = w.shape
    kg = k // groups
    oh = conv_output_size(h, r_, stride[0], padding[0], dilation[0])
    ow = conv_output_size(wd, s_, stride[1], padding[1], dilation[1])
    xp = np.pad(x, ((0, 0), (0, 0), (padding[0],) * 2, (padding[1],) * 2))
    y = np.zeros((n, k, oh, ow))
    for g in range(groups):
        xg = xp[:, g * cg:(g + 1) * cg]
        wg = w[g * kg:(g + 1) * kg]
        for r in range(r_):
            for s in range(s_):
                y[:, g * kg:(g + 1) * kg] += np.einsum(
                    "nchw,kc->nkhw", _taps(xg, r, s, oh, ow, stride, dilation), wg[:, :, r, s])
    if bias is not None:
        y += np.asarray(bias, np.float64)[None, :, None, None]
    return y


def conv2d_input(input_size, w, grad_output, stride=1, padding=0, dilation=1, groups=1):
    """d(loss)/d(input) of conv2d: the adjoint of :func:`conv2d` applied to grad_output."""
    stride, dilation = int_pair(stride, "stride", 1), int_pair(dilation, "dilation", 1)
    padding = int_pair(padding, "padding", 0)
    w = np.asarray(w, np.float64)
    dy = np.asarray(grad_output, np.float64)
    n, c, h, wd = input_size
    k, cg, r_, s_ = w.shape
    kg = k // groups
    oh, ow = dy.shape[2:]
    dxp = np.zeros((n, c, h + 2 * padding[0], wd + 2 * padding[1]))
    for g in range(groups):
        wg = w[g * kg:(g + 1) * kg]
        dyg = dy[:, g * kg:(g + 1) * kg]
        for r in range(r_):
            for s in range(s_):
                view = _taps(dxp[:, g * cg:(g + 1) * cg], r, s, oh, ow, stride, dilation)
                view += np.einsum("nkhw,kc->nchw", dyg, wg[:, :, r, s])
    return dxp[:, :, padding[0]:padding[0] + h, padding[1]:padding[1] + wd]


def conv2d_weight(x, weight_size, grad_output, stride=1, padding=0, dilation=1, groups=1):
    """d(loss)/d(weight) of conv2d."""
    stride, dilation = int_pair(stride, "stride", 1), int_pair(dilation, "dilation", 1)
    padding = int_pair(padding, "padding", 0)
    x = np.asarray(x, np.float64)
    dy = np.asarray(grad_output, np.float64)
    k, cg, r_, s_ = weight_size
    kg = k // groups
    oh, ow = dy.shape[2:]
    xp = np.pad(x, ((0, 0), (0, 0), (padding[0],) * 2, (padding[1],) * 2))
    dw = np.zeros(tuple(weight_size))
    for g in range(groups):
        xg = xp[:, g * cg:(g + 1) * cg]
        dyg = dy[:, g * kg:(g + 1) * kg]
        for r in range(r_):
            for s in range(s_):
                dw[g * kg:(g + 1) * kg, :, r, s] = np.einsum(
                    "nkhw,nchw->kc", dyg, _taps(xg, r, s, oh, ow, stride, dilation))
    return dw


def max_pool2d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    """Returns (values, indices). Sequential semantics of PyTorch's CPU kernel: a value
    replaces the running maximum if it is greater or NaN, so the first maximum wins and the
    last NaN wins."""
    kernel_size = int_pair(kernel_size, "kernel_size", 1)
    stride = kernel_size if stride is None else int_pair(stride, "stride", 1)
    padding, dilation = int_pair(padding, "padding", 0), int_pair(dilation, "dilation", 1)
    x = np.asarray(x, np.float64)
    n, c, h, w = x.shape
    oh = pool_output_size(h, kernel_size[0], stride[0], padding[0], dilation[0], ceil_mode)
    ow = pool_output_size(w, kernel_size[1], stride[1], padding[1], dilation[1], ceil_mode)
    y = np.empty((n, c, oh, ow))
    idx = np.empty((n, c, oh, ow), np.int64)
    flat = x.reshape(n, c, h * w)
    for i in range(oh):
        taps_h = [i * stride[0] - padding[0] + a * dilation[0] for a in range(kernel_size[0])]
        hs = [v for v in taps_h if 0 <= v < h]
        for j in range(ow):
            taps_w = [j * stride[1] - padding[1] + b * dilation[1] for b in range(kernel_size[1])]
            ws = [v for v in taps_w if 0 <= v < w]
            pos = np.array([a * w + b for a in hs for b in ws], np.int64)
            if not pos.size:  # a dilated window wholly in the padding: torch gives -inf and the
                # flat index of its first tap at or past the top-left corner (outside the plane)
                y[:, :, i, j] = -np.inf
                idx[:, :, i, j] = min(v for v in taps_h if v >= 0) * w + min(v for v in taps_w if v >= 0)
                continue
            vals = flat[:, :, pos]
            first_max = np.argmax(vals, axis=2)  # argmax: first occurrence of the maximum
            nan = np.isnan(vals)
            last_nan = vals.shape[2] - 1 - np.argmax(nan[:, :, ::-1], axis=2)
            choose = np.where(nan.any(axis=2), last_nan, first_max)
            if np.all(np.isneginf(vals)):
                choose[...] = 0
            idx[:, :, i, j] = pos[choose]
            y[:, :, i, j] = np.take_along_axis(vals, choose[:, :, None], axis=2)[:, :, 0]
    return y, idx


def max_pool2d_backward(grad_output, indices, input_size):
    dy = np.asarray(grad_output, np.float64)
    n, c, h, w = input_size
    dx = np.zeros((n, c, h * w))
    ind = np.asarray(indices).reshape(n, c, -1)
    flat = dy.reshape(n, c, -1)
    for a in range(n):
        for b in range(c):
            np.add.at(dx[a, b], ind[a, b], flat[a, b])
    return dx.reshape(n, c, h, w)


def _avg_windows(h, w, oh, ow, kernel_size, stride, padding, count_include_pad, divisor_override):
    for i in range(oh):
        for j in range(ow):
            h0, w0 = i * stride[0] - padding[0], j * stride[1] - padding[1]
            h1 = min(h0 + kernel_size[0], h + padding[0])
            w1 = min(w0 + kernel_size[1], w + padding[1])
            pool = (h1 - h0) * (w1 - w0)
            h0, w0, h1, w1 = max(h0, 0), max(w0, 0), min(h1, h), min(w1, w)
            if h0 >= h1 or w0 >= w1:
                yield i, j, None, 0
                continue
            div = divisor_override or (pool if count_include_pad else (h1 - h0) * (w1 - w0))
            yield i, j, (slice(h0, h1), slice(w0, w1)), div


def avg_pool2d(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    kernel_size = int_pair(kernel_size, "kernel_size", 1)
    stride = kernel_size if stride is None else int_pair(stride, "stride", 1)
    padding = int_pair(padding, "padding", 0)
    x = np.asarray(x, np.float64)
    n, c, h, w = x.shape
    oh = pool_output_size(h, kernel_size[0], stride[0], padding[0], 1, ceil_mode)
    ow = pool_output_size(w, kernel_size[1], stride[1], padding[1], 1, ceil_mode)
    y = np.zeros((n, c, oh, ow))
    for i, j, win, div in _avg_windows(h, w, oh, ow, kernel_size, stride, padding,
                                       count_include_pad, divisor_override):
        if win is not None:
            y[:, :, i, j] = x[:, :, win[0], win[1]].sum(axis=(2, 3)) / div
    return y


def avg_pool2d_backward(grad_output, input_size, kernel_size, stride=None, padding=0,
                        ceil_mode=False, count_include_pad=True, divisor_override=None):
    kernel_size = int_pair(kernel_size, "kernel_size", 1)
    stride = kernel_size if stride is None else int_pair(stride, "stride", 1)
    padding = int_pair(padding, "padding", 0)
    dy = np.asarray(grad_output, np.float64)
    n, c, h, w = input_size
    dx = np.zeros((n, c, h, w))
    oh, ow = dy.shape[2:]
    for i, j, win, div in _avg_windows(h, w, oh, ow, kernel_size, stride, padding,
                                       count_include_pad, divisor_override):
        if win is not None:
            dx[:, :, win[0], win[1]] += (dy[:, :, i, j] / div)[:, :, None, None]
    return dx


def linear(x, weight, bias=None):
    y = np.asarray(x, np.float64) @ np.asarray(weight, np.float64).T
    return y if bias is None else y + np.asarray(bias, np.float64)


def relu(x):
    x = np.asarray(x, np.float64)
    return np.where(x > 0, x, 0.0) if not np.isnan(x).any() else np.where(np.isnan(x), x, np.maximum(x, 0))


def epilogue(x, scale=None, bias=None, residual=None, activation=None, residual_after_activation=False,
             min_val=-1.0, max_val=1.0):
    """act(x * scale[c] + bias[c] + residual) (or act(...) + residual), c the axis-1 channel."""
    y = np.asarray(x, np.float64)
    per_channel = (1, -1) + (1,) * (y.ndim - 2)
    if scale is not None:
        y = y * np.asarray(scale, np.float64).reshape(per_channel)
    if bias is not None:
        y = y + np.asarray(bias, np.float64).reshape(per_channel)
    r = None if residual is None else np.asarray(residual, np.float64)
    if r is not None and not residual_after_activation:
        y = y + r
    if activation == "relu":
        y = relu(y)
    elif activation in ("relu6", "hardtanh"):
        lo, hi = (0.0, 6.0) if activation == "relu6" else (min_val, max_val)
        y = np.where(np.isnan(y), y, np.clip(y, lo, hi))
    elif activation == "silu":
        y = y * sigmoid(y)
    return y + r if r is not None and residual_after_activation else y


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-np.asarray(x, np.float64)))


def tanh(x):
    return np.tanh(np.asarray(x, np.float64))


def log_softmax(x, dim=-1):
    x = np.asarray(x, np.float64)
    m = x.max(axis=dim, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=dim, keepdims=True))


def softmax(x, dim=-1):
    return np.exp(log_softmax(x, dim))


def cross_entropy(logits, target, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0):
    """torch.nn.functional.cross_entropy written out as torch's source composes it:
    (1 - ls) * nll_loss + ls/C * smoothing term for class indices, a weighted soft-target sum
    for class probabilities. logits (N, C, d1, ...) or (C,)."""
    x = np.asarray(logits, np.float64)
    target = np.asarray(target)
    if x.ndim == 1:
        x, target = x[None], target[None]
    lp = log_softmax(x, 1)
    c = x.shape[1]
    w = np.ones(c) if weight is None else np.asarray(weight, np.float64)
    w_b = w.reshape((1, c) + (1,) * (x.ndim - 2))
    if target.dtype.kind == "f":
        t = (1 - label_smoothing) * np.asarray(target, np.float64) + label_smoothing / c
        losses = -(lp * t * w_b).sum(axis=1)
        divisor = losses.size
    else:
        keep = target != ignore_index
        safe = np.where(keep, target, 0)
        picked = np.take_along_axis(lp, safe[:, None], axis=1)[:, 0]
        nll = np.where(keep, -w[safe] * picked, 0.0)
        smooth = np.where(keep, -(lp * w_b).sum(axis=1), 0.0)
        losses = (1 - label_smoothing) * nll + label_smoothing / c * smooth
        divisor = np.where(keep, w[safe], 0.0).sum()
    if reduction == "none":
        return losses[0] if np.asarray(logits).ndim == 1 else losses
    with np.errstate(invalid="ignore", divide="ignore"):
        return losses.sum() if reduction == "sum" else losses.sum() / divisor


def _adaptive_window(i, size, out):
    return i * size // out, -((-(i + 1) * size) // out)


def adaptive_avg_pool2d(x, output_size):
    """output_size: a pair of ints (OH, OW)."""
    x = np.asarray(x, np.float64)
    n, c, h, w = x.shape
    oh, ow = output_size
    y = np.empty((n, c, oh, ow))
    for i in range(oh):
        h0, h1 = _adaptive_window(i, h, oh)
        for j in range(ow):
            w0, w1 = _adaptive_window(j, w, ow)
            y[:, :, i, j] = x[:, :, h0:h1, w0:w1].mean(axis=(2, 3))
    return y


def adaptive_max_pool2d(x, output_size):
    """(values, flat indices), element by element as torch's CPU loop: a value replaces the
    running maximum if it is greater or NaN."""
    x = np.asarray(x, np.float64)
    n, c, h, w = x.shape
    oh, ow = output_size
    y = np.empty((n, c, oh, ow))
    idx = np.empty((n, c, oh, ow), np.int64)
    for a in range(n):
        for b in range(c):
            for i in range(oh):
                h0, h1 = _adaptive_window(i, h, oh)
                for j in range(ow):
                    w0, w1 = _adaptive_window(j, w, ow)
                    best, best_at = -np.inf, h0 * w + w0
                    for r in range(h0, h1):
                        for s in range(w0, w1):
                            v = x[a, b, r, s]
                            if v > best or np.isnan(v):
                                best, best_at = v, r * w + s
                    y[a, b, i, j], idx[a, b, i, j] = best, best_at
    return y, idx


def dropout(x, keep, p):
    """Inverted dropout with a given keep mask (bool): kept values scaled by 1/(1-p)."""
    x = np.asarray(x, np.float64)
    return np.where(keep, x / (1 - p), 0.0) if p < 1 else np.zeros_like(x)
