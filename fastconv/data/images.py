"""Reading the user's images (PNG, JPEG, anything Pillow decodes) into float arrays.

One door for every command that takes an image file, so every one of them gets the same checks:
a missing or unreadable file, a decompression bomb (Pillow's own pixel-count guard, turned into
an error rather than a warning) and a mode we cannot convert all end in a ValueError that names
the file.
"""
from __future__ import annotations

import os
import warnings

import numpy as np

from fastconv._validate import int_pair

# Pillow warns above MAX_IMAGE_PIXELS and raises above twice that. A CLI that analyses photos
# has no use for a 90-megapixel image, so both become errors here.
MAX_PIXELS = 89_478_485  # Pillow's default MAX_IMAGE_PIXELS

_MODES = (None, "L", "RGB")


def _decode(img, mode, size):
    """An opened Pillow image -> float32 (H, W) or (H, W, C) in [0, 1]."""
    from PIL import Image

    if mode is None:
        mode = "L" if img.mode in ("1", "L", "I", "I;16", "F") else "RGB"
    img = img.convert(mode)
    if size is not None:
        img = img.resize((size[1], size[0]), Image.BILINEAR)
    return np.asarray(img, dtype=np.float32) / 255.0


def load_image(path, *, mode=None, size=None) -> np.ndarray:
    """Image file -> float32 array (C, H, W) with values in [0, 1].

    mode: None keeps grey images grey (C=1) and turns everything else into RGB (C=3);
    "L" or "RGB" forces one. size: (height, width) to resize to (bilinear), or None.
    """
    from PIL import Image

    if mode not in _MODES:
        raise ValueError(f"mode must be one of {_MODES}, got {mode!r}")
    if size is not None:
        size = int_pair(size, "size (height, width)", 1)
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ValueError(f"{path}: no such image file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                w, h = img.size
                arr = _decode(img, mode, size) if w * h <= MAX_PIXELS else None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise ValueError(f"{path}: refused as a possible decompression bomb ({e})") from None
    except MemoryError:
        raise
    except Exception as e:  # noqa: BLE001 - whatever a decoder raises on a malformed file
        # (OSError, SyntaxError, EOFError, but also ValueError, struct.error, IndexError from
        # Pillow's plugins: found by fuzz/fuzz_image.py) means the same thing to the caller
        raise ValueError(f"{path}: not a readable image ({type(e).__name__}: {e})") from None
    if arr is None:
        raise ValueError(f"{path}: {w}x{h} pixels is more than the {MAX_PIXELS} allowed")
    if arr.ndim == 2:
        arr = arr[None]
    else:
        arr = np.ascontiguousarray(arr.transpose(2, 0, 1))
    return arr
