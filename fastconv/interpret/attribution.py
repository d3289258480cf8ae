"""Which input pixels a class score depends on, batched over images, from the layers' own
backward passes (the walk in _engine.Tape; no hooks, no parameter gradients).

    saliency               |dS_c/dI| maximised over colour channels     (Simonyan et al. 2013)
    smoothgrad             saliency averaged over noisy copies           (Smilkov et al. 2017)
    integrated_gradients   (I - I0) * integral of dS_c/dI along I0 -> I (Sundararajan et al. 2017)
    guided_backprop        dS_c/dI with ReLUs passing positive gradients only (Springenberg et al. 2015)
    grad_cam               ReLU(sum_k mean(dS_c/dA_k) A_k), upsampled   (Selvaraju et al. 2017)

S_c is the class score before any softmax. targets: one int for every image or one per image.
Results are host numpy arrays in the model's dtype.
"""
from __future__ import annotations

import numpy as np

from fastconv._validate import number_in_range, positive_int
from fastconv.data.digits import _bilinear_matrix
from fastconv.interpret._engine import Tape, check_images, check_targets, one_hot_like, on_model_device
from fastconv.interpret.activations import activation_end
from fastconv.device import to_host


def _class_scores(out):
    if len(out.shape) != 2:
        raise ValueError(f"the model's output must be (N, classes) scores, got shape {tuple(out.shape)}")
    return out.shape[1]


def _input_gradient(model, x, targets, guided=False):
    """(targets checked, d S_target / d x as a host array) for a batch x on the model's device."""
    tape = Tape(model, guided=guided)
    out = tape.forward(x)
    targets = check_targets(targets, x.shape[0], _class_scores(out))
    return targets, to_host(tape.backward(one_hot_like(out, targets)))


def saliency(model, images, targets):
    """saliency(model, images, targets) -> (N, H, W): max over channels of |dS_c/dI|."""
    x = check_images(model, images)
    _, g = _input_gradient(model, x, targets)
    return np.abs(g).max(axis=1)


def smoothgrad(model, images, targets, *, samples=16, noise=0.15, seed=0):
    """smoothgrad(model, images, targets, *, samples=16, noise=0.15, seed=0) -> (N, H, W): the
    mean saliency over `samples` copies of each image with Gaussian noise of standard deviation
    noise * (max - min of that image)."""
    samples = positive_int(samples, "samples")
    noise = number_in_range(noise, "noise", 0.0)
    x = to_host(check_images(model, images))
    rng = np.random.default_rng(seed)
    sigma = noise * (x.max(axis=(1, 2, 3), keepdims=True) - x.min(axis=(1, 2, 3), keepdims=True))
    total = 0.0
    for _ in range(samples):
        noisy = x + sigma * rng.standard_normal(x.shape)
        targets, g = _input_gradient(model, on_model_device(model, noisy), targets)
        total = total + np.abs(g).max(axis=1)
    return (total / samples).astype(x.dtype)


def integrated_gradients(model, images, targets, *, baseline=None, steps=50):
    """integrated_gradients(model, images, targets, *, baseline=None, steps=50) -> (N, C, H, W).

    (I - I0) times the trapezoid-rule integral of dS_c/dI along the straight path from the
    baseline I0 (default black: zeros; or an array broadcastable to images) to I, in steps + 1
    gradient evaluations. Completeness: the attributions sum to S_c(I) - S_c(I0) up to the
    quadrature error, which falls as 1/steps^2."""
    steps = positive_int(steps, "steps")
    x = to_host(check_images(model, images))
    b = np.zeros_like(x) if baseline is None else np.broadcast_to(np.asarray(baseline, x.dtype), x.shape)
    weights = np.full(steps + 1, 1.0 / steps)
    weights[[0, -1]] = 0.5 / steps
    total = np.zeros(x.shape, np.float64)
    for alpha, wgt in zip(np.linspace(0.0, 1.0, steps + 1), weights):
        targets, g = _input_gradient(model, on_model_device(model, b + alpha * (x - b)), targets)
        total += wgt * g
    return ((x - b) * total).astype(x.dtype)


def guided_backprop(model, images, targets):
    """guided_backprop(model, images, targets) -> (N, C, H, W): the signed guided gradient."""
    x = check_images(model, images)
    return _input_gradient(model, x, targets, guided=True)[1]


def upsample_bilinear(maps, size):
    """(N, h, w) -> (N, H, W) bilinear, torch's align_corners=False sampling."""
    rh, rw = _bilinear_matrix(maps.shape[1], size[0]), _bilinear_matrix(maps.shape[2], size[1])
    return (rh @ maps.astype(np.float64) @ rw.T).astype(maps.dtype)


def grad_cam(model, images, targets, layer):
    """grad_cam(model, images, targets, layer) -> (N, H, W): Grad-CAM of `layer` (a spatial
    layer, read after its non-linearity) at the input's resolution: channel weights are the
    spatial means of dS_c/dA, the map ReLU(sum_k weight_k A_k) is upsampled bilinearly
    (align_corners=False). Not normalised: render.overlay scales each map."""
    x = check_images(model, images)
    stop = activation_end(model, layer)
    tape = Tape(model)
    name = model.leaves()[stop - 1][0]
    out, kept = tape.forward(x, keep={name})
    targets = check_targets(targets, x.shape[0], _class_scores(out))
    acts = kept[name]
    if len(acts.shape) != 4:
        raise ValueError(f"grad_cam needs a spatial layer; {layer!r} has output shape {tuple(acts.shape)}")
    grads = to_host(tape.backward(one_hot_like(out, targets), bottom=stop))
    acts = to_host(acts)
    weights = grads.mean(axis=(2, 3), keepdims=True)
    cam = np.maximum((weights * acts).sum(axis=1), 0)
    return upsample_bilinear(cam, x.shape[2:])
