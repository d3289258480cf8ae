"""Counter-based random numbers for per-sample augmentation parameters.

Every random number is a pure function of (seed, transform position, draw number, global
sample index): a splitmix64-style hash, evaluated vectorised over the samples of a batch.
So sample i gets the same parameters whether it is augmented in a batch of 8 or in the
second of two batches of 4 (given the same global index), on any thread count, and no
generator state has to be carried between calls.
"""
from __future__ import annotations

import numpy as np

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def mix64(z):
    """splitmix64 finaliser on a uint64 array (wrapping arithmetic)."""
    z = np.asarray(z, dtype=np.uint64)
    if z.ndim == 0:  # numpy warns on scalar overflow only; arrays wrap silently
        with np.errstate(over="ignore"):
            return _mix64(z)
    return _mix64(z)


def _mix64(z):
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


_S30, _S27, _S31 = np.uint64(30), np.uint64(27), np.uint64(31)
_MASK = 0xFFFFFFFFFFFFFFFF


def _mix64_int(z):
    """mix64 of one word, on Python ints."""
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9 & _MASK
    z = (z ^ (z >> 27)) * 0x94D049BB133111EB & _MASK
    return z ^ (z >> 31)


def _u64(v):
    return np.uint64(int(v) & 0xFFFFFFFFFFFFFFFF)


class SampleRandom:
    """Independent random draws for a set of samples (their global indices), for the
    transform at position `stream` of a pipeline seeded with `seed`. Each method call uses a
    new draw number, so the order of calls inside one transform's sample() fixes the stream."""

    def __init__(self, seed, stream, indices):
        self.indices = np.asarray(indices, dtype=np.uint64)
        with np.errstate(over="ignore"):
            self._base = mix64(mix64(_u64(seed) * _GOLDEN + np.uint64(0x632BE59BD9B4E019)) ^ _u64(stream) * _M1)
        self._base_int = int(self._base)
        self._draw = 0

    @property
    def n(self):
        return self.indices.shape[0]

    def bits(self):
        """uint64 random words, one per sample."""
        self._draw += 1
        # the per-draw word on Python ints (numpy scalar arithmetic is slower and warns on wrap)
        h = _mix64_int(self._base_int ^ (self._draw * 0x9E3779B97F4A7C15 & _MASK))
        return _mix64(np.uint64(h) ^ (self.indices * _M2 + np.uint64(1)))

    def uniform(self, low=0.0, high=1.0):
        u = (self.bits() >> np.uint64(11)).astype(np.float64) * (1.0 / 9007199254740992.0)
        return low + (high - low) * u

    def log_uniform(self, low, high):
        return np.exp(self.uniform(np.log(low), np.log(high)))

    def bernoulli(self, p):
        return self.uniform() < p

    def integers(self, low, high):
        """Integers in [low, high) (per-sample arrays allowed)."""
        low, high = np.asarray(low), np.asarray(high)
        return np.minimum(low + np.floor(self.uniform() * (high - low)).astype(np.int64), high - 1)
