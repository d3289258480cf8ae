"""Augmentation transforms. Each has a probability `p` and draws its parameters per sample
(sample()); geometric ones turn them into one forward matrix per sample (matrix()), which
Compose multiplies together so that a run of geometric steps is a single warp; the others
apply themselves through fastconv.augment.functional (apply()).

A transform used alone is callable like a pipeline: ``Rotate(30)(batch, seed=0)``.
"""
from __future__ import annotations

import numbers

import numpy as np

from fastconv._validate import finite_number, int_pair, positive_int
from fastconv.augment import functional as F
from fastconv.augment import matrices as M
from fastconv.augment.compose import Transform  # the base class lives beside the Compose that runs it

__all__ = ["Transform", "HorizontalFlip", "VerticalFlip", "Rotate", "Translate", "Scale", "Affine",
           "RandomResizedCrop", "Brightness", "Contrast", "Saturation", "Hue", "ColorJitter",
           "GaussianBlur", "GaussianNoise", "SaltAndPepper", "Cutout"]


# ------------------------------------------------------------------------ argument parsing

def parse_range(r, name, scalar=None, minimum=None, maximum=None):
    """(low, high) from a pair, or from a scalar via scalar(v) -> pair; checks order and bounds."""
    if isinstance(r, (numbers.Real, np.number)) and not isinstance(r, bool):
        v = finite_number(r, name)
        if scalar is None:
            lo = hi = v
        else:
            if v < 0:
                raise ValueError(f"{name} must be >= 0 when given as one number, got {v}")
            lo, hi = scalar(v)
    else:
        try:
            lo, hi = r
        except (TypeError, ValueError):
            raise ValueError(f"{name} must be a number or a pair (low, high), got {r!r}") from None
        lo, hi = finite_number(lo, f"{name}[0]"), finite_number(hi, f"{name}[1]")
    if lo > hi:
        raise ValueError(f"{name} must have low <= high, got ({lo}, {hi})")
    if minimum is not None and lo < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got ({lo}, {hi})")
    if maximum is not None and hi > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got ({lo}, {hi})")
    return lo, hi


def _symmetric(v):
    return -v, v


def _around_one(v):
    return max(0.0, 1.0 - v), 1.0 + v


def _when(apply, value, neutral):
    return np.where(apply, value, neutral)


# ---------------------------------------------------------------------------- base classes

class GeometricTransform(Transform):
    """A transform expressed as one forward matrix per sample, resampled by warp_affine."""
    geometric = True
    flip_only = False

    def __init__(self, p=1.0, interpolation="bilinear", border="constant", fill=0.0):
        super().__init__(p)
        F._choice(interpolation, F.INTERPOLATIONS, "interpolation")
        F._choice(border, F.BORDERS, "border")
        self.interpolation, self.border, self.fill = interpolation, border, finite_number(fill, "fill")

    def warp_settings(self):
        return self.interpolation, self.border, self.fill

    def matrix(self, params, hw):
        """(N, 3, 3) forward matrices for inputs of size hw."""
        raise NotImplementedError


# ------------------------------------------------------------------------------- geometric

class HorizontalFlip(GeometricTransform):
    flip_only = True

    def __init__(self, p=0.5):
        super().__init__(p, interpolation="nearest")

    def sample(self, rng, shape):
        return {"apply": rng.bernoulli(self.p)}

    def flags(self, params):
        return params["apply"], np.zeros_like(params["apply"])

    def matrix(self, params, hw):
        return M.flips(hw, *self.flags(params))


class VerticalFlip(HorizontalFlip):
    def flags(self, params):
        return np.zeros_like(params["apply"]), params["apply"]


class Rotate(GeometricTransform):
    """Rotation about the image centre by an angle drawn from `degrees` (a pair, or d for
    (-d, d)); positive = counter-clockwise."""

    def __init__(self, degrees=30.0, p=1.0, **warp):
        super().__init__(p, **warp)
        self.degrees = parse_range(degrees, "degrees", _symmetric)

    def sample(self, rng, shape):
        apply = rng.bernoulli(self.p)
        return {"apply": apply, "angle": _when(apply, rng.uniform(*self.degrees), 0.0)}

    def matrix(self, params, hw):
        return M.about(M.rotation(params["angle"]), *M.center(hw))


class Translate(GeometricTransform):
    """Shift by up to `fraction` of the width / height (a number, or (fx, fy))."""

    def __init__(self, fraction=0.1, p=1.0, **warp):
        super().__init__(p, **warp)
        self.fraction = _fractions(fraction, "fraction")

    def sample(self, rng, shape):
        apply = rng.bernoulli(self.p)
        fx, fy = self.fraction
        return {"apply": apply, "dx": _when(apply, rng.uniform(-fx, fx) * shape[3], 0.0),
                "dy": _when(apply, rng.uniform(-fy, fy) * shape[2], 0.0)}

    def matrix(self, params, hw):
        return M.translation(params["dx"], params["dy"])


def _fractions(v, name):
    """Maximum shifts (fx, fy) as fractions of (width, height): a number or a pair in [0, 1]."""
    if isinstance(v, (numbers.Real, np.number)) and not isinstance(v, bool):
        v = (v, v)
    try:
        fx, fy = v
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number or a pair, got {v!r}") from None
    out = []
    for i, f in enumerate((fx, fy)):
        f = finite_number(f, f"{name}[{i}]")
        if not 0.0 <= f <= 1.0:
            raise ValueError(f"{name} must lie in [0, 1], got {v!r}")
        out.append(f)
    return tuple(out)


class Scale(GeometricTransform):
    """Zoom about the centre by a factor drawn from `range` (> 1 zooms in)."""

    def __init__(self, range=(0.9, 1.1), p=1.0, **warp):  # noqa: A002 - the brief's name
        super().__init__(p, **warp)
        self.range = parse_range(range, "range", None)
        if self.range[0] <= 0:
            raise ValueError(f"range must be > 0, got {self.range}")

    def sample(self, rng, shape):
        apply = rng.bernoulli(self.p)
        return {"apply": apply, "scale": _when(apply, rng.uniform(*self.range), 1.0)}

    def matrix(self, params, hw):
        return M.about(M.scaling(params["scale"]), *M.center(hw))


class Affine(GeometricTransform):
    """Rotation, translation, zoom and shear about the centre in one matrix:
    T(centre + shift) R(angle) Shear(sx, sy) S(scale) T(-centre) (torchvision's order).
    rotate / shear in degrees (d means (-d, d)); translate a fraction of the size;
    scale a factor range (a number s means exactly s)."""

    def __init__(self, rotate=0.0, translate=0.0, scale=1.0, shear=0.0, p=1.0, **warp):
        super().__init__(p, **warp)
        self.rotate = parse_range(rotate, "rotate", _symmetric)
        self.translate = _fractions(translate, "translate")
        self.scale = parse_range(scale, "scale")
        if self.scale[0] <= 0:
            raise ValueError(f"scale must be > 0, got {self.scale}")
        self.shear = parse_range(shear, "shear", _symmetric, -89.0, 89.0)

    def sample(self, rng, shape):
        apply = rng.bernoulli(self.p)
        fx, fy = self.translate
        return {"apply": apply,
                "angle": _when(apply, rng.uniform(*self.rotate), 0.0),
                "dx": _when(apply, rng.uniform(-fx, fx) * shape[3], 0.0),
                "dy": _when(apply, rng.uniform(-fy, fy) * shape[2], 0.0),
                "scale": _when(apply, rng.uniform(*self.scale), 1.0),
                "shear_x": _when(apply, rng.uniform(*self.shear), 0.0),
                "shear_y": _when(apply, rng.uniform(*self.shear), 0.0)}

    def matrix(self, params, hw):
        cx, cy = M.center(hw)
        lin = M.rotation(params["angle"]) @ M.shear(params["shear_x"], params["shear_y"]) @ M.scaling(params["scale"])
        n = lin.shape[0]
        return (M.translation(cx + params["dx"], cy + params["dy"]) @ lin
                @ M.translation(np.full(n, -cx), np.full(n, -cy)))


class RandomResizedCrop(GeometricTransform):
    """A random box (area fraction in `scale`, aspect ratio log-uniform in `ratio`) resized to
    `size` (torchvision's algorithm: 10 tries, then a centre crop). Not applied: the whole
    image resized."""

    TRIES = 10

    def __init__(self, size, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3), p=1.0, **warp):
        super().__init__(p, **warp)
        self.size = int_pair(size, "size", 1)
        self.scale = parse_range(scale, "scale", None, 0.0, 1.0)
        self.ratio = parse_range(ratio, "ratio")
        if self.scale[1] <= 0 or self.ratio[0] <= 0:
            raise ValueError("scale and ratio must be > 0")

    def output_hw(self, hw):
        return self.size

    def sample(self, rng, shape):
        n, h, w = shape[0], shape[2], shape[3]
        apply = rng.bernoulli(self.p)
        ch, cw = np.full(n, float(h)), np.full(n, float(w))
        y0, x0 = np.zeros(n), np.zeros(n)
        # Fallback (torchvision): a centre crop with the ratio clamped into range.
        in_ratio = w / h
        if in_ratio < self.ratio[0]:
            fw, fh = w, round(w / self.ratio[0])
        elif in_ratio > self.ratio[1]:
            fw, fh = round(h * self.ratio[1]), h
        else:
            fw, fh = w, h
        found = np.zeros(n, bool)
        for _ in range(self.TRIES):  # a fixed number of draws keeps the streams aligned
            area = rng.uniform(*self.scale) * h * w
            r = rng.log_uniform(*self.ratio)
            tw, th = np.round(np.sqrt(area * r)), np.round(np.sqrt(area / r))
            ok = ~found & (tw > 0) & (th > 0) & (tw <= w) & (th <= h)
            ty = rng.integers(0, np.maximum(h - th, 0) + 1)
            tx = rng.integers(0, np.maximum(w - tw, 0) + 1)
            ch, cw = np.where(ok, th, ch), np.where(ok, tw, cw)
            y0, x0 = np.where(ok, ty, y0), np.where(ok, tx, x0)
            found |= ok
        fb = apply & ~found
        ch, cw = np.where(fb, fh, ch), np.where(fb, fw, cw)
        y0, x0 = np.where(fb, (h - fh) // 2, y0), np.where(fb, (w - fw) // 2, x0)
        return {"apply": apply, "y0": _when(apply, y0, 0.0), "x0": _when(apply, x0, 0.0),
                "height": _when(apply, ch, float(h)), "width": _when(apply, cw, float(w))}

    def matrix(self, params, hw):
        return M.crop_resize(params["y0"], params["x0"], params["height"], params["width"], self.size)


# ---------------------------------------------------------------------------------- colour

class ColorJitter(Transform):
    """Brightness, contrast, saturation (factors; a number v means (1-v, 1+v)) and hue (a
    shift in turns; h means (-h, h), within [-0.5, 0.5]), applied in that order in one pass.
    Values are clamped to value_range (None: no clamp)."""
    colour_step = True

    def __init__(self, brightness=0.0, contrast=0.0, saturation=0.0, hue=0.0, p=1.0,
                 value_range=(0.0, 1.0)):
        super().__init__(p)
        self.brightness = parse_range(brightness, "brightness", _around_one, 0.0)
        self.contrast = parse_range(contrast, "contrast", _around_one, 0.0)
        self.saturation = parse_range(saturation, "saturation", _around_one, 0.0)
        self.hue = parse_range(hue, "hue", _symmetric, -0.5, 0.5)
        F._value_range(value_range)
        self.value_range = value_range

    def _needs_rgb(self):
        return self.saturation != (1.0, 1.0) or self.hue != (0.0, 0.0)

    def sample(self, rng, shape):
        if self._needs_rgb() and shape[1] != 3:
            raise ValueError(f"{type(self).__name__}: saturation and hue need 3-channel (RGB) "
                             f"input, got {shape[1]} channels")
        apply = rng.bernoulli(self.p)
        return {"apply": apply,
                "brightness": _when(apply, rng.uniform(*self.brightness), 1.0),
                "contrast": _when(apply, rng.uniform(*self.contrast), 1.0),
                "saturation": _when(apply, rng.uniform(*self.saturation), 1.0),
                "hue": _when(apply, rng.uniform(*self.hue), 0.0)}

    def apply(self, x, params, out=None, layout="NCHW"):
        return F.adjust_color(x, params["brightness"], params["contrast"], params["saturation"],
                              params["hue"], self.value_range, layout=layout, out=out)


class Brightness(ColorJitter):
    """Multiply by a factor from `factor` (v means (1-v, 1+v))."""

    def __init__(self, factor=0.2, p=1.0, value_range=(0.0, 1.0)):
        super().__init__(brightness=factor, p=p, value_range=value_range)


class Contrast(ColorJitter):
    def __init__(self, factor=0.2, p=1.0, value_range=(0.0, 1.0)):
        super().__init__(contrast=factor, p=p, value_range=value_range)


class Saturation(ColorJitter):
    def __init__(self, factor=0.2, p=1.0, value_range=(0.0, 1.0)):
        super().__init__(saturation=factor, p=p, value_range=value_range)


class Hue(ColorJitter):
    def __init__(self, shift=0.05, p=1.0, value_range=(0.0, 1.0)):
        super().__init__(hue=shift, p=p, value_range=value_range)


# ------------------------------------------------------------------------ filters and noise

class GaussianBlur(Transform):
    def __init__(self, sigma=(0.1, 2.0), p=0.5, border="reflect", truncate=4.0):
        super().__init__(p)
        self.sigma = parse_range(sigma, "sigma", None, 0.0)
        F._choice(border, F.BORDERS, "border")
        self.border, self.truncate = border, finite_number(truncate, "truncate")

    def sample(self, rng, shape):
        apply = rng.bernoulli(self.p)
        return {"apply": apply, "sigma": _when(apply, rng.uniform(*self.sigma), 0.0)}

    def apply(self, x, params, out=None, layout="NCHW"):
        return F.gaussian_blur(x, params["sigma"], self.truncate, self.border, layout=layout, out=out)


class GaussianNoise(Transform):
    """Add N(0, std^2) noise; std drawn per sample from `std` (a number means exactly it)."""

    def __init__(self, std=(0.01, 0.05), p=1.0, value_range=(0.0, 1.0)):
        super().__init__(p)
        self.std = parse_range(std, "std", None, 0.0)
        F._value_range(value_range)
        self.value_range = value_range

    def sample(self, rng, shape):
        apply = rng.bernoulli(self.p)
        return {"apply": apply, "std": _when(apply, rng.uniform(*self.std), 0.0), "key": rng.bits()}

    def apply(self, x, params, out=None, layout="NCHW"):
        return F.gaussian_noise(x, params["std"], params["key"], self.value_range, layout=layout, out=out)


class SaltAndPepper(Transform):
    def __init__(self, amount=(0.01, 0.05), p=1.0, salt=1.0, pepper=0.0):
        super().__init__(p)
        self.amount = parse_range(amount, "amount", None, 0.0, 1.0)
        self.salt, self.pepper = finite_number(salt, "salt"), finite_number(pepper, "pepper")

    def sample(self, rng, shape):
        apply = rng.bernoulli(self.p)
        return {"apply": apply, "amount": _when(apply, rng.uniform(*self.amount), 0.0), "key": rng.bits()}

    def apply(self, x, params, out=None, layout="NCHW"):
        return F.salt_and_pepper(x, params["amount"], params["key"], self.salt, self.pepper, layout=layout, out=out)


class Cutout(Transform):
    """Erase `num_holes` rectangles whose sides are a fraction (drawn from `size`) of the
    image's, centred anywhere in the image (DeVries & Taylor 2017)."""

    def __init__(self, num_holes=1, size=(0.1, 0.3), fill=0.0, p=0.5):
        super().__init__(p)
        self.num_holes = positive_int(num_holes, "num_holes")
        self.size = parse_range(size, "size", None, 0.0, 1.0)
        self.fill = finite_number(fill, "fill")

    def sample(self, rng, shape):
        n, h, w = shape[0], shape[2], shape[3]
        apply = rng.bernoulli(self.p)
        boxes = np.zeros((n, self.num_holes, 4), np.int64)
        for k in range(self.num_holes):
            hh = np.round(rng.uniform(*self.size) * h).astype(np.int64)
            ww = np.round(rng.uniform(*self.size) * w).astype(np.int64)
            cy, cx = rng.integers(0, h), rng.integers(0, w)
            box = np.stack([cy - hh // 2, cx - ww // 2, cy - hh // 2 + hh, cx - ww // 2 + ww], axis=1)
            boxes[:, k] = np.where(apply[:, None], box, 0)
        return {"apply": apply, "boxes": boxes}

    def apply(self, x, params, out=None, layout="NCHW"):
        return F.cutout(x, params["boxes"], self.fill, layout=layout, out=out)
