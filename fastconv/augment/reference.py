"""Slow, obvious numpy float64 versions of the augmentation kernels: the oracle for tests.
Same conventions as fastconv.augment.functional (forward matrices, pixel centres at
integers, border modes constant / reflect (no edge repeat) / replicate)."""
from __future__ import annotations

import numpy as np


def border_index(i, n, border):
    """Map integer indices into [0, n); -1 marks a constant-border tap."""
    i = np.asarray(i, np.int64)
    inside = (i >= 0) & (i < n)
    if border == "constant":
        return np.where(inside, i, -1)
    if border == "replicate":
        return np.clip(i, 0, n - 1)
    if n == 1:
        return np.zeros_like(i)
    period = 2 * (n - 1)
    m = np.abs(i) % period
    return np.where(m < n, m, period - m)


def warp_affine(x, matrix, out_size=None, interpolation="bilinear", border="constant", fill=0.0):
    x = np.asarray(x, np.float64)
    n, c, h, w = x.shape
    oh, ow = (h, w) if out_size is None else out_size
    m = np.asarray(matrix, np.float64)
    if m.ndim == 2:
        m = np.broadcast_to(m, (n,) + m.shape)
    full = np.zeros((n, 3, 3))
    full[:, :2], full[:, 2, 2] = m[:, :2], 1
    inv = np.linalg.inv(full)
    ys, xs = np.mgrid[0:oh, 0:ow].astype(np.float64)
    out = np.empty((n, c, oh, ow))
    for s in range(n):
        a = inv[s]
        sx = a[0, 0] * xs + a[0, 1] * ys + a[0, 2]
        sy = a[1, 0] * xs + a[1, 1] * ys + a[1, 2]
        if interpolation == "nearest":
            taps = [(np.floor(sy + 0.5), np.floor(sx + 0.5), 1.0)]
        else:
            x0, y0 = np.floor(sx), np.floor(sy)
            fx, fy = sx - x0, sy - y0
            taps = [(y0, x0, (1 - fy) * (1 - fx)), (y0, x0 + 1, (1 - fy) * fx),
                    (y0 + 1, x0, fy * (1 - fx)), (y0 + 1, x0 + 1, fy * fx)]
        acc = np.zeros((c, oh, ow))
        for ty, tx, wt in taps:
            iy, ix = border_index(ty, h, border), border_index(tx, w, border)
            ok = (iy >= 0) & (ix >= 0)
            vals = np.where(ok, x[s][:, np.where(ok, iy, 0), np.where(ok, ix, 0)], fill)
            acc += wt * vals
        out[s] = acc
    return out


def gaussian_kernel(sigma, truncate=4.0):
    r = int(truncate * sigma + 0.5)
    if r == 0:  # one tap: 1 (for a tiny sigma the formula below would give 0/0)
        return np.ones(1)
    t = np.arange(-r, r + 1, dtype=np.float64)
    k = np.exp(-0.5 * t * t / sigma ** 2)
    return k / k.sum()


def gaussian_blur(x, sigma, truncate=4.0, border="reflect"):
    x = np.asarray(x, np.float64)
    sigma = np.broadcast_to(np.asarray(sigma, np.float64), (x.shape[0],))
    out = x.copy()
    for s in range(x.shape[0]):
        if sigma[s] <= 0:
            continue
        k = gaussian_kernel(sigma[s], truncate)
        r = len(k) // 2
        for axis in (3, 2):
            idx = border_index(np.arange(-r, out.shape[axis] + r), out.shape[axis], border)
            src = np.take(out[s], np.where(idx >= 0, idx, 0), axis=axis - 1)
            mask_shape = [1, 1, 1]
            mask_shape[axis - 1] = -1
            src = src * (idx >= 0).reshape(mask_shape)
            length = out.shape[axis]
            acc = sum(k[q] * np.take(src, np.arange(q, q + length), axis=axis - 1) for q in range(len(k)))
            out[s] = acc
    return out


GRAY = np.array([0.2989, 0.587, 0.114])


def rgb_to_hsv(rgb):
    """(..., 3) -> (..., 3) with h in [0, 1) (torchvision's _rgb2hsv)."""
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    maxc, minc = rgb.max(-1), rgb.min(-1)
    eq = maxc == minc
    cr = maxc - minc
    s = cr / np.where(eq, 1.0, maxc)
    div = np.where(eq, 1.0, cr)
    rc, gc, bc = (maxc - r) / div, (maxc - g) / div, (maxc - b) / div
    h = np.where(maxc == r, bc - gc, np.where(maxc == g, 2.0 + rc - bc, 4.0 + gc - rc))
    h = np.mod(h / 6.0 + 1.0, 1.0)
    return np.stack([h, s, maxc], -1)


def hsv_to_rgb(hsv):
    h, s, v = hsv[..., 0], hsv[..., 1], hsv[..., 2]
    i = np.floor(h * 6.0)
    f = h * 6.0 - i
    i = i.astype(np.int64) % 6
    # torchvision clamps p, q, t to [0, 1]; for inputs in [0, 1] they already lie in [0, v],
    # and without a value range (values above 1) the kernel keeps them unclamped too.
    p = v * (1 - s)
    q = v * (1 - s * f)
    t = v * (1 - s * (1 - f))
    r = np.choose(i, [v, q, p, p, t, v])
    g = np.choose(i, [t, v, v, q, p, p])
    b = np.choose(i, [p, p, t, v, v, q])
    return np.stack([r, g, b], -1)


def adjust_color(x, brightness=1.0, contrast=1.0, saturation=1.0, hue=0.0, value_range=(0.0, 1.0)):
    x = np.asarray(x, np.float64)
    n, c = x.shape[:2]
    lo, hi = (-np.inf, np.inf) if value_range is None else value_range
    b, ct, sa, hu = (np.broadcast_to(np.asarray(v, np.float64), (n,)) for v in (brightness, contrast, saturation, hue))
    out = np.empty_like(x)
    for s in range(n):
        img = np.clip(x[s] * b[s], lo, hi)
        gray = np.tensordot(GRAY, img, 1) if c == 3 else img[0]
        if ct[s] != 1:
            m = gray.mean() if c == 3 else img.mean()
            img = np.clip(ct[s] * img + (1 - ct[s]) * m, lo, hi)
        if c == 3:
            gray = np.tensordot(GRAY, img, 1)
            img = np.clip(sa[s] * img + (1 - sa[s]) * gray, lo, hi)
            if hu[s] != 0:
                hsv = rgb_to_hsv(np.moveaxis(img, 0, -1))
                hsv[..., 0] = np.mod(hsv[..., 0] + hu[s], 1.0)
                img = np.moveaxis(hsv_to_rgb(hsv), -1, 0)
        out[s] = img
    return out


def _mix32(v):
    v = v.astype(np.uint32)
    with np.errstate(over="ignore"):
        v ^= v >> np.uint32(16)
        v *= np.uint32(0x7FEB352D)
        v ^= v >> np.uint32(15)
        v *= np.uint32(0x846CA68B)
        v ^= v >> np.uint32(16)
    return v


def hash_bits(key, counters):
    """The noise kernels' counter-based random words: mix(mix(i ^ lo(key)) + hi(key))."""
    key = int(key)
    lo, hi = np.uint32(key & 0xFFFFFFFF), np.uint32(key >> 32)
    with np.errstate(over="ignore"):
        return _mix32(_mix32(counters.astype(np.uint32) ^ lo) + hi)


def gaussian_noise(x, std, key, value_range=(0.0, 1.0)):
    """Same random words as the kernel, exact log / sin / cos (Box-Muller)."""
    x = np.asarray(x, np.float64)
    n = x.shape[0]
    lo, hi = (-np.inf, np.inf) if value_range is None else value_range
    std = np.broadcast_to(np.asarray(std, np.float64), (n,))
    key = np.broadcast_to(np.asarray(key, np.uint64), (n,))
    flat = x.reshape(n, -1)
    out = np.empty_like(flat)
    per = flat.shape[1]
    j = np.arange(0, per, 2, dtype=np.uint64)
    for s in range(n):
        u1 = ((hash_bits(key[s], j) >> np.uint32(8)).astype(np.float64) + 1) / 2 ** 24
        u2 = (hash_bits(key[s], j + np.uint64(1)) >> np.uint32(8)).astype(np.float64) / 2 ** 24
        r = np.sqrt(-2 * np.log(u1))
        z = np.empty(len(j) * 2)
        z[0::2], z[1::2] = r * np.cos(2 * np.pi * u2), r * np.sin(2 * np.pi * u2)
        out[s] = np.clip(flat[s] + std[s] * z[:per], lo, hi) if std[s] != 0 else flat[s]
    return out.reshape(x.shape)


def salt_and_pepper(x, amount, key, salt=1.0, pepper=0.0):
    x = np.asarray(x, np.float64)
    n = x.shape[0]
    amount = np.broadcast_to(np.asarray(amount, np.float64), (n,)).astype(np.float32)
    key = np.broadcast_to(np.asarray(key, np.uint64), (n,))
    flat = x.reshape(n, -1)
    out = flat.copy()
    for s in range(n):
        u = (hash_bits(key[s], np.arange(flat.shape[1], dtype=np.uint64)) >> np.uint32(8)).astype(np.float32) / np.float32(2 ** 24)
        out[s] = np.where(u < amount[s] * np.float32(0.5), pepper, np.where(u < amount[s], salt, flat[s]))
    return out.reshape(x.shape)
