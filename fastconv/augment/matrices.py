"""Batched 3x3 affine matrices in pixel coordinates (x right, y down, pixel centres at
integers). All are forward maps (input -> output); fastconv.augment.functional.warp_affine
inverts them. Angles are in degrees, positive = counter-clockwise as displayed (so 90 degrees
equals np.rot90 on a square image)."""
from __future__ import annotations

import numpy as np


def identity(n):
    return np.broadcast_to(np.eye(3), (n, 3, 3)).copy()


def center(hw):
    return (hw[1] - 1) / 2.0, (hw[0] - 1) / 2.0


def translation(tx, ty):
    tx, ty = np.broadcast_arrays(np.asarray(tx, float), np.asarray(ty, float))
    m = identity(tx.size)
    m[:, 0, 2], m[:, 1, 2] = tx.ravel(), ty.ravel()
    return m


def about(m, cx, cy):
    """m applied about the point (cx, cy): T(c) m T(-c)."""
    n = m.shape[0]
    return translation(np.full(n, cx), np.full(n, cy)) @ m @ translation(np.full(n, -cx), np.full(n, -cy))


def linear(a, b, c, d):
    a, b, c, d = np.broadcast_arrays(*(np.asarray(v, float) for v in (a, b, c, d)))
    m = identity(a.size)
    m[:, 0, 0], m[:, 0, 1], m[:, 1, 0], m[:, 1, 1] = a.ravel(), b.ravel(), c.ravel(), d.ravel()
    return m


def rotation(degrees):
    t = np.deg2rad(np.asarray(degrees, float))
    cos, sin = np.cos(t), np.sin(t)
    # y points down, so a visual counter-clockwise turn is [[cos, sin], [-sin, cos]].
    return linear(cos, sin, -sin, cos)


def scaling(sx, sy=None):
    sy = sx if sy is None else sy
    return linear(sx, 0.0 * np.asarray(sx, float), 0.0 * np.asarray(sy, float), sy)


def shear(shx_deg, shy_deg):
    shx, shy = np.broadcast_arrays(np.asarray(shx_deg, float), np.asarray(shy_deg, float))
    return linear(np.ones_like(shx), np.tan(np.deg2rad(shx)), np.tan(np.deg2rad(shy)), np.ones_like(shy))


def flips(hw, horizontal, vertical):
    """Mirror maps x -> W-1-x and/or y -> H-1-y per sample."""
    h = np.asarray(horizontal, bool)
    v = np.asarray(vertical, bool)
    sx, sy = np.where(h, -1.0, 1.0), np.where(v, -1.0, 1.0)
    m = linear(sx, 0 * sx, 0 * sy, sy)
    m[:, 0, 2] = np.where(h, hw[1] - 1, 0.0)
    m[:, 1, 2] = np.where(v, hw[0] - 1, 0.0)
    return m


def crop_resize(y0, x0, ch, cw, out_hw):
    """Map the box (y0, x0, ch, cw) (in pixels; edges, not centres) onto an out_hw image."""
    ky, kx = out_hw[0] / np.asarray(ch, float), out_hw[1] / np.asarray(cw, float)
    m = linear(kx, 0 * kx, 0 * ky, ky)
    m[:, 0, 2] = (0.5 - np.asarray(x0, float)) * kx - 0.5
    m[:, 1, 2] = (0.5 - np.asarray(y0, float)) * ky - 0.5
    return m
