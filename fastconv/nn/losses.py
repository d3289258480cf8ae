"""Losses: __call__(input, target) -> scalar loss; backward() -> d loss / d input.

With CUDA inputs the loss and its gradient are computed on the device; __call__ returns a
Python float, so it copies the one loss value back to the host (one small synchronising copy
per call); backward() stays on the device."""
from __future__ import annotations

import numpy as np

from fastconv import functional as F
from fastconv._validate import is_cuda_array
from fastconv.nn import _ops


class CrossEntropyLoss:
    """Cross-entropy from logits (N, classes) and integer targets (N,), torch semantics."""

    def __init__(self, reduction="mean", label_smoothing=0.0):
        if reduction not in ("mean", "sum"):
            raise ValueError(f"reduction must be 'mean' or 'sum', got {reduction!r}")
        self.reduction, self.label_smoothing = reduction, float(label_smoothing)
        self._saved = None

    def __call__(self, logits, target):
        self._saved = (logits, target)
        loss = F.cross_entropy(logits, target, reduction=self.reduction, label_smoothing=self.label_smoothing)
        return float(_ops.to_host(loss) if is_cuda_array(loss) else loss)

    def backward(self):
        logits, target = self._saved
        return F.cross_entropy_backward(logits, target, reduction=self.reduction,
                                        label_smoothing=self.label_smoothing)


class MSELoss:
    """Mean (or summed) squared error, torch semantics: mean over every element."""

    def __init__(self, reduction="mean"):
        if reduction not in ("mean", "sum"):
            raise ValueError(f"reduction must be 'mean' or 'sum', got {reduction!r}")
        self.reduction = reduction
        self._diff = None

    def __call__(self, input, target):
        if is_cuda_array(input):
            from fastconv import cuda
            target = _ops.to_device(target)
            if np.dtype(target.dtype) != np.dtype(input.dtype):
                target = _ops.cast(target, input.dtype)
            if tuple(input.shape) != tuple(target.shape):
                raise ValueError(f"target shape {tuple(target.shape)} must equal input shape {tuple(input.shape)}")
            loss, self._diff = cuda.mse_loss(input, target, self.reduction)
            return float(_ops.to_host(loss))
        input = np.asarray(input)
        target = np.asarray(target, dtype=input.dtype)
        if input.shape != target.shape:
            raise ValueError(f"target shape {target.shape} must equal input shape {input.shape}")
        self._diff = input - target
        s = float(np.sum(self._diff * self._diff))
        return s / self._diff.size if self.reduction == "mean" else s

    def backward(self):
        if is_cuda_array(self._diff):
            from fastconv import cuda
            return cuda.mse_backward(self._diff, self.reduction)
        g = 2 * self._diff
        return g / g.size if self.reduction == "mean" else g
