"""The UCI 8x8 handwritten digits (1,797 images; the copy scikit-learn ships as load_digits()),
bundled with fastconv as digits.npz (45 KB, CC BY 4.0: see digits.LICENSE.txt), resized for LeNet-5.

Bundled rather than read from scikit-learn so that `fastconv demo` runs after a plain
`pip install .`, with no network and without a 40 MB dependency for a 45 KB file."""
from __future__ import annotations

import numpy as np


def _bilinear_matrix(n_in, n_out):
    """(n_out, n_in) interpolation matrix with torch's align_corners=False sampling."""
    m = np.zeros((n_out, n_in), np.float64)
    scale = n_in / n_out
    for i in range(n_out):
        src = max((i + 0.5) * scale - 0.5, 0.0)
        i0 = min(int(np.floor(src)), n_in - 1)
        i1 = min(i0 + 1, n_in - 1)
        frac = src - i0
        m[i, i0] += 1 - frac
        m[i, i1] += frac
    return m


def resize_bilinear(images, size):
    """(N, C, H, W) -> (N, C, size, size) float32, bilinear (separable matrix products)."""
    n, c, h, w = images.shape
    rh, rw = _bilinear_matrix(h, size), _bilinear_matrix(w, size)
    out = rh @ images.astype(np.float64) @ rw.T  # (size, h) @ (..., h, w) @ (w, size)
    return out.astype(np.float32)


def digits_raw():
    """(images (1797, 8, 8) uint8 with values 0..16, labels (1797,) int64), as stored."""
    from importlib.resources import files
    with files("fastconv.data").joinpath("digits.npz").open("rb") as f, np.load(f, allow_pickle=False) as z:
        return z["images"], z["labels"].astype(np.int64)


def digits(size=32, split="all", test_fraction=0.2, seed=0):
    """(images (N, 1, size, size) float32 in [0, 1], labels (N,) int64). split 'all' | 'train' |
    'test' makes a seeded stratification-free random split (test_fraction of the images)."""
    if split not in ("all", "train", "test"):
        raise ValueError(f"split must be 'all', 'train' or 'test', got {split!r}")
    raw, labels = digits_raw()
    images = (raw / 16.0)[:, None]  # pixel values are 0..16
    images = resize_bilinear(images, size) if size != 8 else images.astype(np.float32)
    if split == "all":
        return images, labels
    order = np.random.default_rng(seed).permutation(len(labels))
    n_test = int(round(len(labels) * test_fraction))
    pick = order[:n_test] if split == "test" else order[n_test:]
    return np.ascontiguousarray(images[pick]), labels[pick]
