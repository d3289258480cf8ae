"""Parameter initialisation matching torch.nn defaults, from one seedable generator.

torch initialises Conv2d/Linear weights with kaiming_uniform_(a=sqrt(5)), whose bound
gain * sqrt(3 / fan_in) with gain = sqrt(2 / (1 + a^2)) simplifies to 1 / sqrt(fan_in), and
biases with uniform(-1/sqrt(fan_in), 1/sqrt(fan_in)).
"""
from __future__ import annotations

import math

import numpy as np

_generator = np.random.default_rng(0)


def manual_seed(seed: int) -> None:
    """Reseed the generator every layer draws its initial weights (and dropout masks) from."""
    global _generator
    _generator = np.random.default_rng(seed)


def default_rng() -> np.random.Generator:
    return _generator


def resolve_rng(rng=None, seed=None) -> np.random.Generator:
    if rng is not None and seed is not None:
        raise ValueError("give rng or seed, not both")
    if seed is not None:
        return np.random.default_rng(seed)
    return rng if rng is not None else _generator


def fan_in(shape) -> int:
    return int(np.prod(shape[1:]))


def kaiming_uniform(shape, a=math.sqrt(5), rng=None, dtype=np.float32):
    gain = math.sqrt(2.0 / (1 + a * a))
    bound = gain * math.sqrt(3.0 / fan_in(shape))
    return uniform(shape, bound, rng, dtype)


def uniform(shape, bound, rng=None, dtype=np.float32):
    rng = rng if rng is not None else _generator
    # draw float32 directly: VGG's 100M-element FC weight would need an 800 MB float64 temporary
    w = rng.random(shape, dtype=np.float32)
    w *= np.float32(2 * bound)
    w -= np.float32(bound)
    return w.astype(dtype, copy=False)
