"""Compose: a seeded augmentation pipeline over (N, C, H, W) batches.

Randomness. Sample i of a call gets the *global sample index* start_index + i, and every
random parameter is a hash of (seed, transform position, draw, global index) (see _random).
Hence

    pipeline(batch8, start_index=0)  ==  concat(pipeline(batch8[:4], start_index=0),
                                                pipeline(batch8[4:], start_index=4))

for any batch size, chunking or thread count. Called without start_index, the pipeline
uses its own counter (pipeline.counter) and advances it by N, so consecutive batches -
and consecutive epochs over the same data - get fresh parameters; that is how
fastconv.train.fit(..., augment=pipeline) uses it. reset(counter=0) rewinds.

Fusion. A run of consecutive geometric transforms with the same warp settings is turned
into one 2x3 matrix per sample (the product of their matrices) and resampled once, so
Rotate + Scale + Translate costs one warp and interpolates once; a run made only of flips
uses the exact flip kernel. Likewise, on uint8 images a run of colour steps (ColorJitter,
Brightness, Contrast, ...) that changes only brightness and contrast becomes one 256-entry
table per image and one pass over the pixels. After the first step, in-place-safe steps write into the
pipeline's own buffer; the input batch is never modified unless inplace=True.

Replay. ``out, params = pipeline(batch, return_params=True)`` returns the parameters drawn
for every transform and sample; ``pipeline.replay(params, other_batch)`` applies exactly
those again (e.g. to a segmentation mask or a second view).
"""
from __future__ import annotations

import dataclasses

import numpy as np

from fastconv._validate import check_int, number_in_range
from fastconv.augment import functional as F
from fastconv.augment import matrices as M
from fastconv.augment._random import SampleRandom

__all__ = ["Compose", "AugmentParams", "Transform"]


class Transform:
    """One augmentation step (fastconv.augment.transforms holds them). Compose runs a list of
    them; one used alone is a one-step pipeline. The class flags tell Compose what it may fuse."""
    geometric = False     # expressed as one matrix per sample (a run of them is one warp)
    colour_step = False   # brightness / contrast / ... (on uint8, a run of them is one table pass)

    def __init__(self, p=1.0):
        self.p = number_in_range(p, "p", 0.0, 1.0)

    def sample(self, rng, shape):
        """Per-sample parameters for a batch of logical shape (N, C, H, W) (a dict of length-N
        arrays, always with 'apply': the samples it applies to)."""
        raise NotImplementedError

    def apply(self, x, params, out=None, layout="NCHW"):
        raise NotImplementedError

    def output_hw(self, hw):
        return hw

    def __call__(self, batch, seed=0, start_index=0, **kwargs):
        return Compose([self], seed=seed)(batch, start_index=start_index, **kwargs)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({args})"


@dataclasses.dataclass
class AugmentParams:
    """Parameters drawn for one call: global sample indices and, per transform, a dict of
    per-sample arrays (always with 'apply', the samples the transform was applied to)."""
    indices: np.ndarray
    transforms: list

    def __len__(self):
        return len(self.indices)


class Compose:
    def __init__(self, transforms, seed=0):
        transforms = list(transforms)
        for i, t in enumerate(transforms):
            if not isinstance(t, Transform):
                raise TypeError(f"transforms[{i}] must be a fastconv.augment Transform, got {type(t).__name__}")
        self.transforms, self.seed, self.counter = transforms, check_int(seed, "seed", 0), 0

    def reset(self, counter=0):
        self.counter = int(counter)

    def __repr__(self):
        inner = ",\n  ".join(repr(t) for t in self.transforms)
        return f"Compose([\n  {inner}\n], seed={self.seed})"

    # ------------------------------------------------------------------------------ calls

    def __call__(self, batch, start_index=None, *, return_params=False, inplace=False):
        """Augment a (N, C, H, W) batch (float32/float64 in any range the transforms accept,
        or uint8); see the module docstring for start_index."""
        return self._call(batch, start_index, return_params, inplace, "NCHW")

    def _call(self, batch, start_index, return_params, inplace, layout):
        x = F.check_batch(batch, "batch", layout)
        n = x.shape[0]
        if start_index is None:
            start, self.counter = self.counter, self.counter + n
        else:
            start = check_int(start_index, "start_index", 0)
        params = AugmentParams(np.arange(start, start + n, dtype=np.uint64), [None] * len(self.transforms))
        y = self._run(x, params, True, layout)
        y = _finish(batch, y, inplace)
        return (y, params) if return_params else y

    def replay(self, params, batch, *, inplace=False, layout="NCHW"):
        """Apply the parameters recorded by a previous call to `batch` (same N and H, W)."""
        if not isinstance(params, AugmentParams) or len(params.transforms) != len(self.transforms):
            raise ValueError("params must be the AugmentParams returned by this pipeline (return_params=True)")
        x = F.check_batch(batch, "batch", layout)
        if x.shape[0] != len(params):
            raise ValueError(f"batch has {x.shape[0]} samples but params were drawn for {len(params)}")
        return _finish(batch, self._run(x, params, False, layout), inplace)

    def apply_images(self, images, start_index=None, *, return_params=False):
        """Augment images as they are stored: (H, W, C) or (N, H, W, C), uint8 in [0, 255] or
        float in [0, 1]; returns the same shape and dtype. The kernels run channels-last on
        the uint8 data directly (no conversion); parameters and random draws are the same as
        for the equivalent (N, C, H, W) float batch."""
        if not isinstance(images, np.ndarray):
            raise TypeError(f"images must be a numpy array, got {type(images).__name__}")
        single = images.ndim == 3
        batch = images[None] if single else images
        res = self._call(batch, start_index, return_params, False, "NHWC")
        y, params = res if return_params else (res, None)
        y = y[0] if single else y
        return (y, params) if return_params else y

    # --------------------------------------------------------------------------- engine

    def _params(self, i, params, shape, sample):
        if sample:
            params.transforms[i] = self.transforms[i].sample(SampleRandom(self.seed, i, params.indices), shape)
        return params.transforms[i]

    def _run(self, x, params, sample, layout):
        cur, owned, i = x, False, 0
        shape = F.logical_shape(x, layout)
        ts = self.transforms
        while i < len(ts):
            t = ts[i]
            if x.dtype == np.uint8 and t.colour_step:
                end = i
                while end < len(ts) and ts[end].colour_step:
                    end += 1
                if end - i > 1:
                    steps = _brightness_contrast_steps(
                        ts[i:end], [self._params(j, params, shape, sample) for j in range(i, end)])
                    if steps is not None:
                        if steps:
                            cur = F.brightness_contrast_steps(cur, steps, layout=layout, out=cur if owned else None)
                            owned = True
                        i = end
                        continue
            if not t.geometric:
                p = self._params(i, params, shape, sample)
                if np.any(p["apply"]):
                    cur = t.apply(cur, p, out=cur if owned else None, layout=layout)
                    owned = True
                i += 1
                continue
            # A run of geometric transforms sharing warp settings -> one matrix per sample.
            settings, hw = t.warp_settings(), shape[2:]
            total, flips_only, h_flags, v_flags = M.identity(shape[0]), True, 0, 0
            # Flips are exact under any interpolation, so they join any run; the first other
            # transform sets the run's warp settings.
            while i < len(ts) and ts[i].geometric and (ts[i].warp_settings() == settings or ts[i].flip_only
                                                       or flips_only):
                if not ts[i].flip_only:
                    if flips_only and ts[i].warp_settings() != settings:
                        settings = ts[i].warp_settings()
                    flips_only = False
                p = self._params(i, params, shape[:2] + tuple(hw), sample)
                total = ts[i].matrix(p, hw) @ total
                if ts[i].flip_only:
                    h, v = ts[i].flags(p)
                    h_flags, v_flags = h_flags ^ h, v_flags ^ v
                hw = ts[i].output_hw(hw)
                i += 1
            if flips_only:
                if np.any(h_flags) or np.any(v_flags):
                    cur, owned = F.flip(cur, h_flags, v_flags, layout=layout), True
            elif tuple(hw) != shape[2:] or not np.allclose(total, np.eye(3), rtol=0, atol=1e-12):
                interp, border, fill = settings
                cur = F.warp_affine(cur, total, hw, interp, border, fill, layout=layout)
                owned = True
            shape = shape[:2] + tuple(hw)
        return cur if owned else x.copy()


def _brightness_contrast_steps(transforms, params):
    """A run of colour steps as (brightness, contrast, value_range) triples for one table pass,
    or None when some sample's step changes saturation or hue. Steps applied to no sample are
    left out, as _run skips them."""
    steps = []
    for t, p in zip(transforms, params):
        if np.any(p["saturation"] != 1) or np.any(p["hue"] != 0):
            return None
        if np.any(p["apply"]):
            steps.append((p["brightness"], p["contrast"], t.value_range))
    return steps


def _finish(batch, y, inplace):
    if not inplace:
        return y
    if not isinstance(batch, np.ndarray) or batch.shape != y.shape or not batch.flags.writeable:
        raise ValueError("inplace=True needs a writable numpy batch whose shape the pipeline keeps")
    np.copyto(batch, y)
    return batch
