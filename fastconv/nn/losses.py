"""Losses: __call__(input, target) -> scalar loss; backward() -> d loss / d input."""
from __future__ import annotations

import numpy as np

from fastconv import functional as F


class CrossEntropyLoss:
    """Cross-entropy from logits (N, classes) and integer targets (N,), torch semantics."""

    def __init__(self, reduction="mean", label_smoothing=0.0):
        if reduction not in ("mean", "sum"):
            raise ValueError(f"reduction must be 'mean' or 'sum', got {reduction!r}")
        self.reduction, self.label_smoothing = reduction, float(label_smoothing)
        self._saved = None

    def __call__(self, logits, target):
        self._saved = (logits, target)
        return float(F.cross_entropy(logits, target, self.reduction, self.label_smoothing))

    def backward(self):
        logits, target = self._saved
        return F.cross_entropy_backward(logits, target, self.reduction, self.label_smoothing)


class MSELoss:
    """Mean (or summed) squared error, torch semantics: mean over every element."""

    def __init__(self, reduction="mean"):
        if reduction not in ("mean", "sum"):
            raise ValueError(f"reduction must be 'mean' or 'sum', got {reduction!r}")
        self.reduction = reduction
        self._diff = None

    def __call__(self, input, target):
        input = np.asarray(input)
        target = np.asarray(target, dtype=input.dtype)
        if input.shape != target.shape:
            raise ValueError(f"target shape {target.shape} must equal input shape {input.shape}")
        self._diff = input - target
        s = float(np.sum(self._diff * self._diff))
        return s / self._diff.size if self.reduction == "mean" else s

    def backward(self):
        g = 2 * self._diff
        return g / g.size if self.reduction == "mean" else g
