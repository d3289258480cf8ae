"""Losses: __call__(input, target) -> scalar loss; backward() -> d loss / d input.

With CUDA inputs the loss and its gradient are computed on the device; __call__ returns a
Python float, so it copies the one loss value back to the host (one small synchronising copy
per call); backward() stays on the device."""
from __future__ import annotations

import numpy as np

from fastconv import functional as F
from fastconv.backend import backend_of
from fastconv.device import device_of, move, to_host
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
        return float(to_host(loss))

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
        if device_of(input) == "cpu":
            input = np.asarray(input)
        target = _ops.cast(move(target, device_of(input)), input.dtype)  # onto input's device and dtype
        if tuple(input.shape) != tuple(target.shape):
            raise ValueError(f"target shape {tuple(target.shape)} must equal input shape {tuple(input.shape)}")
        loss, self._diff = backend_of(input).mse_loss(input, target, self.reduction)
        return float(to_host(loss))

    def backward(self):
        return backend_of(self._diff).mse_backward(self._diff, self.reduction)
