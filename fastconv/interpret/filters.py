"""Filters as the lecture shows them: a trained net's first-layer kernels, the Sobel edge
detector applied to a real photo, and the worked 6x6 convolution example."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fastconv import functional as F
from fastconv import nn
from fastconv.interpret._engine import check_model
from fastconv.device import to_host

# The lecture's Sobel operator: responds to horizontal lines (intensity changing downwards);
# its transpose responds to vertical ones.
SOBEL_HORIZONTAL = np.array([[1, 2, 1], [0, 0, 0], [-1, -2, -1]], np.float32)
SOBEL_VERTICAL = SOBEL_HORIZONTAL.T.copy()


def first_layer_filters(model):
    """first_layer_filters(model) -> (K, C, kh, kw) host array: the first Conv2d's weights
    (draw them with render.filter_grid)."""
    for _, layer in check_model(model).leaves():
        if isinstance(layer, nn.Conv2d):
            return to_host(layer.weight.data).copy()
    raise ValueError("model has no Conv2d layer")


def sobel(image):
    """sobel(image) -> (2, H, W) float32: the responses of SOBEL_HORIZONTAL and SOBEL_VERTICAL
    (conv2d, padding 1) on the luminance of image ((H, W), (1, H, W) or (3, H, W), e.g. from
    fastconv.data.load_image)."""
    a = np.asarray(image)
    if a.ndim == 2:
        a = a[None]
    if a.ndim != 3 or a.shape[0] not in (1, 3) or min(a.shape[1:]) < 3:
        raise ValueError(f"image must be (H, W), (1, H, W) or (3, H, W) with H, W >= 3, got shape {np.shape(image)}")
    if a.dtype.kind not in "fiu":
        raise TypeError(f"image must be numeric, got {a.dtype}")
    a = a.astype(np.float32)
    grey = a[0] if a.shape[0] == 1 else 0.299 * a[0] + 0.587 * a[1] + 0.114 * a[2]  # ITU-R 601 luma
    kernels = np.stack([SOBEL_HORIZONTAL, SOBEL_VERTICAL])[:, None]
    return F.conv2d(np.ascontiguousarray(grey[None, None]), kernels, padding=1)[0]


@dataclass(frozen=True)
class WorkedExample:
    """The lecture's example: image (6x6) * kernel (3x3) = first (4x4); first * kernel =
    second (2x2), each of whose units sees a receptive_field x receptive_field (5x5) window."""
    image: np.ndarray
    kernel: np.ndarray
    first: np.ndarray
    second: np.ndarray
    receptive_field: int


LECTURE_IMAGE = np.array([[3, 3, 5, 1, 2, 3], [3, 4, 0, 1, 4, 5], [5, 1, 2, 3, 2, 0],
                          [5, 0, 4, 5, 2, 1], [3, 4, 3, 1, 0, 2], [2, 0, 4, 3, 5, 1]], np.float64)
LECTURE_KERNEL = np.array([[0, 1, 0], [-1, 2, -1], [0, 1, 0]], np.float64)


def lecture_example(image=LECTURE_IMAGE, kernel=LECTURE_KERNEL):
    """lecture_example(image=LECTURE_IMAGE, kernel=LECTURE_KERNEL) -> WorkedExample.

    The lecture's worked convolution (cross-correlation, no padding, as conv2d computes it):
    the 6x6 image and 3x3 kernel give [[9, 2, 2, 6], [-1, 4, 8, 7], [-4, 8, 8, 0], [2, 9, 7, 4]];
    applying the kernel again gives a 2x2 map whose units each see a 5x5 window of the image:
    two stacked 3x3 convolutions see as far as one 5x5, with 18 weights instead of 25."""
    x = np.asarray(image, np.float64)
    k = np.asarray(kernel, np.float64)
    if x.ndim != 2 or k.ndim != 2 or k.shape[0] != k.shape[1] or min(x.shape) < 2 * k.shape[0] - 1:
        raise ValueError(f"image must be 2-D and at least {2 * k.shape[0] - 1} wide for a "
                         f"{k.shape} kernel applied twice, got {x.shape}")
    first = F.conv2d(x[None, None], k[None, None])
    second = F.conv2d(first, k[None, None])
    return WorkedExample(x, k, first[0, 0], second[0, 0], 2 * k.shape[0] - 1)
