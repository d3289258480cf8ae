"""Image parameterisations for feature visualisation: what gradient ascent actually updates.

PixelImage updates pixels directly (Simonyan et al. 2013). FourierImage (Olah et al. 2017,
"Feature Visualization") updates a spectrum scaled by 1/frequency, so every frequency moves
at a comparable rate instead of the high ones dominating, and for 3-channel images mixes
colours through the square root of ImageNet's colour correlation, so the optimiser steps
along decorrelated colour axes; a sigmoid keeps pixels in [0, 1]. Each has image(),
backward(grad_image) -> grad_params (the chain rule by hand) and set(image) (the inverse, used
after blurring or clipping in image space).
"""
from __future__ import annotations

import numpy as np

# sqrt of the colour correlation of ImageNet pixels (Lucid's color_correlation_svd_sqrt),
# scaled so its largest column has norm 1
_COLOR_SQRT = np.array([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]])
_COLOR_SQRT = _COLOR_SQRT / np.linalg.norm(_COLOR_SQRT, axis=0).max()


class PixelImage:
    """The image itself is the parameter."""

    def __init__(self, image):
        self.params = np.array(image, np.float64)

    def image(self):
        return self.params

    def backward(self, grad_image):
        return grad_image

    def set(self, image):
        self.params[...] = image


class FourierImage:
    """sigmoid(colour_mix(irfft2(spectrum * scale))) for an (N, C, H, W) image."""

    def __init__(self, shape, rng, std=0.01, decay=1.0):
        n, c, h, w = shape
        self.shape = tuple(shape)
        fy = np.fft.fftfreq(h)[:, None]
        fx = np.fft.rfftfreq(w)[None, :]
        freq = np.sqrt(fy * fy + fx * fx)
        self.scale = 1.0 / np.maximum(freq, 1.0 / max(h, w)) ** decay
        # irfft2 counts every column except the first (and the last, for even w) twice; its
        # adjoint (backward) carries that weight
        self.weight = np.full(fx.shape, 2.0)
        self.weight[:, 0] = 1.0
        if w % 2 == 0:
            self.weight[:, -1] = 1.0
        self.mix = _COLOR_SQRT if c == 3 else None
        self.params = std * rng.standard_normal((n, c, h, w // 2 + 1, 2))
        self._y = None

    def _spatial(self):
        spectrum = (self.params[..., 0] + 1j * self.params[..., 1]) * self.scale
        return np.fft.irfft2(spectrum, s=self.shape[2:], norm="ortho")

    def image(self):
        t = self._spatial()
        if self.mix is not None:
            t = np.einsum("ij,njhw->nihw", self.mix, t)
        self._y = 1.0 / (1.0 + np.exp(-t))
        return self._y

    def backward(self, grad_image):
        """d objective / d params from d objective / d image (image() must have run)."""
        g = grad_image * self._y * (1.0 - self._y)
        if self.mix is not None:
            g = np.einsum("ij,nihw->njhw", self.mix, g)
        gs = np.fft.rfft2(g, norm="ortho") * self.weight * self.scale
        return np.stack([gs.real, gs.imag], axis=-1)

    def set(self, image):
        """Parameters whose image() is `image` (values clipped into the sigmoid's open range)."""
        y = np.clip(image, 1e-4, 1 - 1e-4)
        t = np.log(y / (1.0 - y))
        if self.mix is not None:
            t = np.einsum("ij,njhw->nihw", np.linalg.inv(self.mix), t)
        spectrum = np.fft.rfft2(t, norm="ortho") / self.scale
        self.params = np.stack([spectrum.real, spectrum.imag], axis=-1)
