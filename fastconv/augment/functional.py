"""The augmentation op layer: batch-level kernels with per-sample parameters.

Every op validates its arguments, then dispatches by array type: numpy arrays run the compiled
CPU kernels (fastconv._C, csrc/augment/), arrays exposing ``__cuda_array_interface__`` go to
``fastconv.cuda.augment`` when that exists. The transforms in fastconv.augment.transforms call
only this module, so a GPU backend slots in here without touching them.

Conventions: batches are (N, C, H, W) float32/float64; pixel centres sit at integer
coordinates (x right, y down); geometric matrices are *forward* 2x3 maps from input pixel
coordinates to output pixel coordinates (one per sample, or one for all).
"""
from __future__ import annotations


import numpy as np

from fastconv import _C
from fastconv._validate import finite_number
from fastconv.device import is_cuda_array

__all__ = ["warp_affine", "flip", "gaussian_blur", "adjust_color", "brightness_contrast_steps", "gaussian_noise",
           "salt_and_pepper", "cutout", "INTERPOLATIONS", "BORDERS", "LAYOUTS"]

INTERPOLATIONS = {"nearest": 0, "bilinear": 1}
# reflect: mirror without repeating the edge pixel (numpy 'reflect', cv2 BORDER_REFLECT_101).
BORDERS = {"constant": 0, "reflect": 1, "replicate": 2}
LAYOUTS = ("NCHW", "NHWC")
DTYPES = (np.dtype(np.float32), np.dtype(np.float64), np.dtype(np.uint8))


# --------------------------------------------------------------------------------- checks

def check_batch(x, name="input", layout="NCHW", channels=None):
    """x as a contiguous 4-D numpy array of a supported dtype; wrong type, ndim, dtype, layout
    or channel count -> a clear error naming the argument."""
    if is_cuda_array(x):
        raise TypeError(f"{name}: CUDA arrays are not supported by the augmentation kernels yet")
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{name} must be a numpy array, got {type(x).__name__}")
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    if x.ndim != 4:
        raise ValueError(f"{name} must be 4-D ({', '.join(layout)}), got shape {x.shape}")
    if x.dtype not in DTYPES:
        raise ValueError(f"{name} must have dtype float32, float64 or uint8, got {x.dtype}")
    if any(d == 0 for d in x.shape):
        raise ValueError(f"{name} must not have empty dimensions, got shape {x.shape}")
    c = x.shape[3] if layout == "NHWC" else x.shape[1]
    if channels is not None and c != channels:
        raise ValueError(f"{name} must have {channels} channels, got {c}")
    return np.ascontiguousarray(x)


def logical_shape(x, layout):
    """(N, C, H, W) of a batch in either layout."""
    return (x.shape[0], x.shape[3], x.shape[1], x.shape[2]) if layout == "NHWC" else tuple(x.shape)


def _native(x):
    """The array the kernels run on (float64 is processed in float32) and the value scale:
    uint8 holds intensities in [0, 255], so [0, 1]-scale parameters are multiplied by 255."""
    if x.dtype == np.float64:
        return x.astype(np.float32), 1.0
    return x, (255.0 if x.dtype == np.uint8 else 1.0)


def _result(y, x, out):
    """Back to the caller's dtype, into `out` when given."""
    if y.dtype != x.dtype:
        y = y.astype(x.dtype)
        if out is not None:
            np.copyto(out, y)
            return out
    return y


def _choice(value, table, name):
    if value not in table:
        raise ValueError(f"{name} must be one of {tuple(table)}, got {value!r}")
    return table[value]


def per_sample(value, n, name, dtype=np.float64, minimum=None):
    """A scalar or a length-n sequence as a contiguous length-n array of finite values."""
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim == 0:
        arr = np.full(n, float(arr))
    if arr.shape != (n,):
        raise ValueError(f"{name} must be a scalar or have shape ({n},), got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite, got {value!r}")
    if minimum is not None and np.any(arr < minimum):
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
    return np.ascontiguousarray(arr, dtype=dtype)


def _value_range(value_range, name="value_range"):
    if value_range is None:
        return -np.inf, np.inf
    try:
        lo, hi = value_range
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be None or a pair (low, high), got {value_range!r}") from None
    lo, hi = finite_number(lo, f"{name}[0]"), finite_number(hi, f"{name}[1]")
    if lo > hi:
        raise ValueError(f"{name} must have low <= high, got {value_range!r}")
    return lo, hi


def _check_out(x, out, shape=None):
    """Validate `out` against the caller's array (shape and dtype)."""
    shape = x.shape if shape is None else shape
    if out is None:
        return None
    if not isinstance(out, np.ndarray) or out.shape != tuple(shape) or out.dtype != x.dtype \
            or not out.flags.c_contiguous or not out.flags.writeable:
        raise ValueError(f"out must be a writable C-contiguous {x.dtype} array of shape {tuple(shape)}")
    return out


def _buffer(xn, out, shape=None):
    """Where the kernel writes: `out` when it has the native dtype, else a new array."""
    shape = xn.shape if shape is None else shape
    if out is not None and out.dtype == xn.dtype:
        return out
    return np.empty(shape, xn.dtype)


def _keys(key, n):
    arr = np.asarray(key)
    if arr.ndim == 0:
        arr = np.full(n, int(arr), dtype=np.uint64)
    if arr.shape != (n,) or arr.dtype.kind not in "ui":
        raise ValueError(f"key must be an integer or {n} integers (one per sample), got {key!r}")
    return np.ascontiguousarray(arr.astype(np.uint64))


# ---------------------------------------------------------------------------- geometry

def _matrices(m, n, name="matrix"):
    m = np.asarray(m, dtype=np.float64)
    if m.shape in ((2, 3), (3, 3)):
        m = np.broadcast_to(m, (n,) + m.shape)
    if m.shape not in ((n, 2, 3), (n, 3, 3)):
        raise ValueError(f"{name} must have shape (2, 3), (3, 3), ({n}, 2, 3) or ({n}, 3, 3), got {m.shape}")
    if not np.all(np.isfinite(m)):
        raise ValueError(f"{name} must be finite")
    full = np.zeros((n, 3, 3))
    full[:, :2] = m[:, :2]
    full[:, 2, 2] = 1.0
    return full


def invert_affine(forward):
    """(N, 3, 3) forward matrices -> (N, 2, 3) inverse (output -> input) matrices; entries
    within 1e-9 of an integer are snapped to it so that 90-degree turns and whole-pixel
    shifts sample exactly at pixel centres."""
    det = forward[:, 0, 0] * forward[:, 1, 1] - forward[:, 0, 1] * forward[:, 1, 0]
    if np.any(np.abs(det) < 1e-12):
        raise ValueError("matrix must be invertible (it maps the image onto a line or a point)")
    inv = np.linalg.inv(forward)[:, :2]
    snapped = np.round(inv)
    close = np.abs(inv - snapped) < 1e-9
    return np.ascontiguousarray(np.where(close, snapped, inv))


def warp_affine(x, matrix, out_size=None, interpolation="bilinear", border="constant", fill=0.0,
                *, layout="NCHW", out=None):
    """Warp each sample by its forward affine matrix: output(p) = input(M^-1 p).

    x (N, C, H, W) (or (N, H, W, C) with layout='NHWC'); matrix (2, 3), (3, 3), or one per
    sample (N, 2|3, 3); out_size (OH, OW), default (H, W). Taps outside the input follow
    `border` ('constant' uses `fill`, in [0, 1] units for uint8 images).
    """
    x = check_batch(x, layout=layout)
    n, c, h, w = logical_shape(x, layout)
    forward = _matrices(matrix, n)
    if out_size is None:
        out_size = (h, w)
    try:
        oh, ow = (int(v) for v in out_size)
    except (TypeError, ValueError):
        raise ValueError(f"out_size must be a pair of positive ints, got {out_size!r}") from None
    if oh <= 0 or ow <= 0:
        raise ValueError(f"out_size must be a pair of positive ints, got {out_size!r}")
    interp = _choice(interpolation, INTERPOLATIONS, "interpolation")
    bd = _choice(border, BORDERS, "border")
    fill = finite_number(fill, "fill")
    shape = (n, oh, ow, c) if layout == "NHWC" else (n, c, oh, ow)
    _check_out(x, out, shape)
    if out is not None and np.shares_memory(out, x):
        raise ValueError("out must not overlap input for warp_affine")
    xn, scale = _native(x)
    y = _buffer(xn, out, shape)
    _C.aug_warp_affine(xn, y, invert_affine(forward), interp, bd, fill * scale, layout == "NHWC")
    return _result(y, x, out)


def flip(x, horizontal=False, vertical=False, *, layout="NCHW", out=None):
    """Exact per-sample flips: horizontal / vertical are bools or length-N bool arrays."""
    x = check_batch(x, layout=layout)
    n = x.shape[0]
    h = np.ascontiguousarray(np.broadcast_to(np.asarray(horizontal, dtype=bool), (n,)), dtype=np.uint8)
    v = np.ascontiguousarray(np.broadcast_to(np.asarray(vertical, dtype=bool), (n,)), dtype=np.uint8)
    _check_out(x, out)
    if out is not None and np.shares_memory(out, x):
        raise ValueError("out must not overlap input for flip")
    xn, _ = _native(x)
    y = _buffer(xn, out)
    _C.aug_flip(xn, y, h, v, layout == "NHWC")
    return _result(y, x, out)


# ------------------------------------------------------------------------------ filters

# The kernel holds 2r+1 taps and each thread pads a row by r on both sides: past this radius
# (sigma ~1e6) those buffers reach hundreds of MB per thread, and a failed allocation inside the
# C++ parallel region would abort the process instead of raising.
MAX_BLUR_RADIUS = 1 << 22


def gaussian_blur(x, sigma, truncate=4.0, border="reflect", *, layout="NCHW", out=None):
    """Separable Gaussian blur, sigma per sample (0 leaves the sample unchanged); the kernel
    radius is int(truncate * sigma + 0.5), as scipy.ndimage.gaussian_filter. out may be x."""
    x = check_batch(x, layout=layout)
    sig = per_sample(sigma, x.shape[0], "sigma", minimum=0.0)
    truncate = finite_number(truncate, "truncate")
    if truncate <= 0:
        raise ValueError(f"truncate must be > 0, got {truncate}")
    radius = float(truncate) * float(sig.max()) + 0.5 if sig.size else 0.0  # Python floats: inf, not OverflowError
    if radius > MAX_BLUR_RADIUS:
        raise ValueError(f"sigma * truncate gives a kernel radius of {radius:.4g}; at most {MAX_BLUR_RADIUS} "
                         "is supported")
    # a radius-0 kernel is the single tap 1 (no blur); a tiny sigma would make it exp(-0/0) = NaN
    sig[truncate * sig + 0.5 < 1] = 0.0
    bd = _choice(border, BORDERS, "border")
    _check_out(x, out)
    xn, _ = _native(x)
    y = _buffer(xn, out)
    _C.aug_gaussian_blur(xn, y, sig, truncate, bd, layout == "NHWC")
    return _result(y, x, out)


def adjust_color(x, brightness=1.0, contrast=1.0, saturation=1.0, hue=0.0,
                 value_range=(0.0, 1.0), *, layout="NCHW", out=None):
    """Brightness (x*b), contrast (blend with the grayscale mean), saturation (blend with the
    grayscale image) and hue (rotation in HSV, a fraction of a turn in [-0.5, 0.5]), in that
    order, each clamped to value_range (torchvision.transforms.functional semantics; for uint8
    images value_range is in [0, 1] units). Each factor is a scalar or one value per sample;
    saturation and hue need 3 channels. out may be x."""
    x = check_batch(x, layout=layout)
    n, c = logical_shape(x, layout)[:2]
    params = np.empty((n, 4), np.float32)
    params[:, 0] = per_sample(brightness, n, "brightness", minimum=0.0)
    params[:, 1] = per_sample(contrast, n, "contrast", minimum=0.0)
    params[:, 2] = per_sample(saturation, n, "saturation", minimum=0.0)
    params[:, 3] = per_sample(hue, n, "hue")
    if np.any(np.abs(params[:, 3]) > 0.5):
        raise ValueError(f"hue must lie in [-0.5, 0.5], got {hue!r}")
    if c != 3 and (np.any(params[:, 2] != 1) or np.any(params[:, 3] != 0)):
        raise ValueError(f"saturation and hue need 3 (RGB) channels, input has {c}")
    lo, hi = _value_range(value_range)
    _check_out(x, out)
    xn, scale = _native(x)
    y = _buffer(xn, out)
    _C.aug_color_adjust(xn, y, params, lo * scale, hi * scale, layout == "NHWC")
    return _result(y, x, out)


def brightness_contrast_steps(x, steps, *, layout="NCHW", out=None):
    """uint8 images only: a run of brightness / contrast steps, each a (brightness, contrast,
    value_range) triple applied as adjust_color(previous result, brightness, contrast,
    value_range=value_range) would, in one pass over the pixels: the steps compose into one
    256-entry table per image (the contrast anchors come from one histogram of the input).
    Equal to running the steps one after another, up to the last bit of an anchor."""
    x = check_batch(x, layout=layout)
    if x.dtype != np.uint8:
        raise TypeError(f"brightness_contrast_steps needs a uint8 batch, got {x.dtype}")
    steps = list(steps)
    if not steps:
        raise ValueError("steps must hold at least one (brightness, contrast, value_range) triple")
    n = x.shape[0]
    params = np.empty((n, len(steps), 2), np.float32)
    ranges = np.empty((len(steps), 2), np.float32)
    for s, (brightness, contrast, value_range) in enumerate(steps):
        params[:, s, 0] = per_sample(brightness, n, f"steps[{s}] brightness", minimum=0.0)
        params[:, s, 1] = per_sample(contrast, n, f"steps[{s}] contrast", minimum=0.0)
        ranges[s] = np.asarray(_value_range(value_range, f"steps[{s}] value_range")) * 255.0
    _check_out(x, out)
    y = _buffer(x, out)
    _C.aug_color_lut_chain(x, y, params, ranges, layout == "NHWC")
    return y


def gaussian_noise(x, std, key, value_range=(0.0, 1.0), *, layout="NCHW", out=None):
    """x + std * z per sample, z ~ N(0, 1) a counter-based function of (key[n], element index
    in memory order), clamped to value_range (std and value_range in [0, 1] units for uint8).
    out may be x."""
    x = check_batch(x, layout=layout)
    n = x.shape[0]
    sd = per_sample(std, n, "std", minimum=0.0)
    lo, hi = _value_range(value_range)
    _check_out(x, out)
    xn, scale = _native(x)
    y = _buffer(xn, out)
    _C.aug_gaussian_noise(xn, y, _keys(key, n), np.ascontiguousarray(sd * scale, np.float32),
                          lo * scale, hi * scale)
    return _result(y, x, out)


def salt_and_pepper(x, amount, key, salt=1.0, pepper=0.0, *, layout="NCHW", out=None):
    """Each element becomes `salt` or `pepper` with probability amount/2 each (per sample).
    out may be x."""
    x = check_batch(x, layout=layout)
    n = x.shape[0]
    am = per_sample(amount, n, "amount", dtype=np.float32, minimum=0.0)
    if np.any(am > 1):
        raise ValueError(f"amount must lie in [0, 1], got {amount!r}")
    salt, pepper = finite_number(salt, "salt"), finite_number(pepper, "pepper")
    _check_out(x, out)
    xn, scale = _native(x)
    y = _buffer(xn, out)
    _C.aug_salt_pepper(xn, y, _keys(key, n), am, salt * scale, pepper * scale)
    return _result(y, x, out)


def cutout(x, boxes, fill=0.0, *, layout="NCHW", out=None):
    """Fill rectangles: boxes (N, K, 4) integer (y0, x0, y1, x1) per sample, half-open and
    clipped to the image; empty boxes (y1 <= y0) change nothing. out may be x."""
    x = check_batch(x, layout=layout)
    n, _, h, w = logical_shape(x, layout)
    boxes = np.asarray(boxes)
    if boxes.ndim != 3 or boxes.shape[0] != n or boxes.shape[2] != 4 or boxes.dtype.kind not in "iu":
        raise ValueError(f"boxes must be an integer array of shape ({n}, K, 4), got {boxes.shape} {boxes.dtype}")
    fill = finite_number(fill, "fill")
    _check_out(x, out)
    y = out if out is not None else x.copy()
    if y is not x and out is not None:
        np.copyto(y, x)
    value = np.asarray(fill * 255.0 if x.dtype == np.uint8 else fill).astype(y.dtype)
    rows, cols = np.arange(h), np.arange(w)
    for k in range(boxes.shape[1]):
        b = np.clip(boxes[:, k], 0, [h, w, h, w])
        inside = (((rows >= b[:, 0, None]) & (rows < b[:, 2, None]))[:, :, None]
                  & ((cols >= b[:, 1, None]) & (cols < b[:, 3, None]))[:, None, :])
        np.copyto(y, value, where=inside[..., None] if layout == "NHWC" else inside[:, None])
    return y
