"""Batches from in-memory arrays: seeded shuffling, drop_last, normalisation done once."""
from __future__ import annotations

import numpy as np


class DataLoader:
    """Iterates (images float32 (B, C, H, W), labels int64 (B,)). uint8 images are scaled to
    [0, 1]; mean/std (scalars or per-channel) normalise. The whole set is converted once at
    construction, so each batch costs one gather. Each pass draws a fresh permutation from a
    generator seeded once: epochs differ, runs repeat."""

    def __init__(self, images, labels, batch_size=64, shuffle=True, seed=0, drop_last=False, mean=None,
                 std=None):
        images, labels = np.asarray(images), np.asarray(labels)
        if images.ndim != 4:
            raise ValueError(f"images must be (N, C, H, W), got shape {images.shape}")
        if labels.shape != (images.shape[0],):
            raise ValueError(f"labels must have shape ({images.shape[0]},), got {labels.shape}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        x = images.astype(np.float32) / np.float32(255) if images.dtype == np.uint8 \
            else images.astype(np.float32, copy=True)
        if mean is not None or std is not None:
            c = x.shape[1]
            m = np.asarray(0.0 if mean is None else mean, np.float32).reshape(-1)
            s = np.asarray(1.0 if std is None else std, np.float32).reshape(-1)
            x -= m.reshape(1, -1, 1, 1) if m.size == c else m[0]
            x /= s.reshape(1, -1, 1, 1) if s.size == c else s[0]
        self.images, self.labels = np.ascontiguousarray(x), labels.astype(np.int64)
        self.batch_size, self.shuffle, self.drop_last = int(batch_size), bool(shuffle), bool(drop_last)
        self._rng = np.random.default_rng(seed)

    def __len__(self):
        n = len(self.labels)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self):
        n = len(self.labels)
        order = self._rng.permutation(n) if self.shuffle else None
        for i in range(len(self)):
            sl = slice(i * self.batch_size, min((i + 1) * self.batch_size, n))
            if order is None:
                yield self.images[sl], self.labels[sl]
            else:
                idx = order[sl]
                yield self.images[idx], self.labels[idx]
