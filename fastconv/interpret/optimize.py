"""Images that a network responds to most: class models (Simonyan et al. 2013) and unit /
channel visualisation, by gradient ascent from noise on the input.

    I* = argmax_I  S(I) - l2 * ||I||^2

S is a class score before the softmax (class_model) or one unit's activation / a channel's
mean (maximize_activation). Several targets are optimised together as one batch, so ten
class models cost one forward and one backward per step. The step is Adam on the
parameterisation's gradient (scale-free: the same lr works for LeNet and VGG).

preset="robust" adds the regularisers of Yosinski et al. 2015 ("Understanding Neural Networks
Through Deep Visualization": jitter, Gaussian blur every few steps, clipping of small-norm and
small-contribution pixels) and Olah et al. 2017's decorrelated Fourier parameterisation, so
VGG-style nets give recognisable images instead of high-frequency noise.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fastconv import functional as F
from fastconv import nn
from fastconv._validate import finite_number, number_in_range, positive_int
from fastconv.augment.functional import gaussian_blur
from fastconv.interpret._engine import Tape, check_model, check_targets, input_channels, on_model_device
from fastconv.interpret.parameterize import FourierImage, PixelImage
from fastconv.interpret.receptive_field import receptive_field
from fastconv.device import to_host


@dataclass(frozen=True)
class Trace:
    """Per step (rows) and per image (columns): the objective, the softmax probability of the
    target class (class models; None for units) and the image's L2 norm."""
    score: np.ndarray
    prob: np.ndarray | None
    norm: np.ndarray


@dataclass(frozen=True)
class Visualization:
    """image: (B, C, H, W) float32, one image per target (B = 1 for a single target);
    trace: Trace; targets: what each image maximises (class index or channel)."""
    image: np.ndarray
    trace: Trace
    targets: np.ndarray


@dataclass(frozen=True)
class Robust:
    """The regularisers of preset="robust" (Yosinski et al. 2015, Olah et al. 2017)."""
    jitter: int = 2           # random shift of up to this many pixels each step
    blur_every: int = 4       # Gaussian blur every this many steps ...
    blur_sigma: float = 0.5   # ... with this sigma (pixels)
    norm_pct: float = 10.0    # pixels whose norm is in the lowest norm_pct % are reset
    contrib_pct: float = 10.0 # ... and those whose |x . grad| is in the lowest contrib_pct %
    fourier: bool = True      # decorrelated Fourier parameterisation (else raw pixels)


PRESETS = {None: None, "robust": Robust()}


def _check_steps_lr(steps, lr, l2):
    positive_int(steps, "steps")
    if finite_number(lr, "lr") <= 0:
        raise ValueError(f"lr must be a positive number, got {lr!r}")
    number_in_range(l2, "l2", 0.0)


def _resolve_preset(preset):
    if isinstance(preset, Robust):
        return preset
    if preset not in PRESETS:
        raise ValueError(f"preset must be None, 'robust' or a Robust(...), got {preset!r}")
    return PRESETS[preset]


def infer_input_size(model):
    """(h, w) the model takes: 224 for nets with an adaptive pool (torchvision's size), else the
    smallest square size whose flattened features fit the first Linear layer."""
    leaves = model.leaves()
    if any(isinstance(layer, nn.AdaptiveAvgPool2d) for _, layer in leaves):
        return 224, 224
    linear = next((layer for _, layer in leaves if isinstance(layer, nn.Linear)), None)
    if linear is not None:
        for s in range(1, 513):
            if _flat_features(model, s) == linear.in_features:
                return s, s
    raise ValueError("cannot infer the model's input size: pass input_size=(h, w)")


def _flat_features(model, s):
    """Channels x h x w reaching the first Flatten at input size s (None if s is too small)."""
    channels = input_channels(model)
    hw = (s, s)
    try:
        records = receptive_field(model, s)
    except ValueError:  # some layer's output would be empty at this size
        return None
    for rec, (_, layer) in zip(records, model.leaves()):
        if isinstance(layer, nn.Flatten):
            return channels * hw[0] * hw[1]
        if isinstance(layer, nn.Conv2d):
            channels = layer.out_channels
        hw = rec.output_size
    return None


class _ClassScore:
    """S_c: the logit of each image's target class (the output before any softmax)."""

    def __init__(self, model, targets):
        self.stop = len(model.leaves())
        self.targets = targets

    def score(self, out):
        return out[np.arange(len(self.targets)), self.targets].astype(np.float64)

    def prob(self, out):
        p = F.softmax(out.astype(np.float64), 1)
        return p[np.arange(len(self.targets)), self.targets]

    def seed(self, out):
        g = np.zeros_like(out)
        g[np.arange(len(self.targets)), self.targets] = 1
        return g


class _UnitScore:
    """a_i: one unit (channel, y, x) of a layer's activation, or a channel's spatial mean."""

    def __init__(self, stop, channels, position):
        self.stop = stop
        self.targets = channels
        self.position = position

    def score(self, out):
        rows = np.arange(len(self.targets))
        if out.ndim == 2:
            value = out[rows, self.targets]
        elif self.position is None:
            value = out[rows, self.targets].mean(axis=(1, 2))
        else:
            value = out[rows, self.targets, self.position[0], self.position[1]]
        return value.astype(np.float64)

    def prob(self, out):
        return None

    def seed(self, out):
        g = np.zeros_like(out)
        rows = np.arange(len(self.targets))
        if out.ndim == 2:
            g[rows, self.targets] = 1
        elif self.position is None:
            g[rows, self.targets] = 1.0 / (out.shape[2] * out.shape[3])
        else:
            g[rows, self.targets, self.position[0], self.position[1]] = 1
        return g


def _clip_weak_pixels(image, grad, robust):
    """Reset pixels with a small norm or a small contribution |sum_c x*grad| to the image's
    per-channel mean (Yosinski et al.'s clipping; the mean plays the role of their zero)."""
    mean = image.mean(axis=(2, 3), keepdims=True)
    centred = image - mean
    weak = np.zeros(image.shape[:1] + image.shape[2:], bool)
    if robust.norm_pct > 0:
        norm = np.sqrt((centred * centred).sum(axis=1))
        weak |= norm < np.percentile(norm, robust.norm_pct, axis=(1, 2), keepdims=True)
    if robust.contrib_pct > 0 and grad is not None:
        contrib = np.abs((centred * grad).sum(axis=1))
        weak |= contrib < np.percentile(contrib, robust.contrib_pct, axis=(1, 2), keepdims=True)
    return np.where(weak[:, None], mean, image)


def _ascend(model, objective, shape, steps, lr, l2, seed, robust):
    """Gradient ascent on objective from noise; returns a Visualization."""
    rng = np.random.default_rng(seed)
    if robust is not None and robust.fourier:
        param = FourierImage(shape, rng)
    else:
        param = PixelImage(0.5 + 0.1 * rng.standard_normal(shape) if robust else 0.1 * rng.standard_normal(shape))
    tape = Tape(model)
    # nn.Adam descends: it is given minus the gradient. param.set may replace the params array,
    # so the Parameter is pointed at the current one before every step (Adam's state is per Parameter).
    weights = nn.Parameter(param.params)
    adam = nn.Adam([weights], lr=lr)
    trace = {"score": [], "prob": [], "norm": []}
    grad_image = None
    for step in range(steps):
        image = param.image()
        shift = (0, 0)
        if robust is not None and robust.jitter:
            shift = tuple(int(v) for v in rng.integers(-robust.jitter, robust.jitter + 1, 2))
        x = np.roll(image, shift, axis=(2, 3)) if shift != (0, 0) else image
        out = tape.forward(on_model_device(model, x), stop=objective.stop)
        out_host = to_host(out)
        trace["score"].append(objective.score(out_host))
        trace["prob"].append(objective.prob(out_host))
        trace["norm"].append(np.sqrt((image * image).sum(axis=(1, 2, 3))))
        seed_grad = objective.seed(out_host)
        g = to_host(tape.backward(on_model_device(model, seed_grad), top=objective.stop)).astype(np.float64)
        grad_image = np.roll(g, (-shift[0], -shift[1]), axis=(2, 3)) - 2.0 * l2 * image
        weights.data, weights.grad = param.params, -param.backward(grad_image)
        adam.step()
        if robust is not None and robust.blur_every and (step + 1) % robust.blur_every == 0 and step + 1 < steps:
            # truncate=3: a kernel radius of round(3 sigma), reflected (not repeated) edges
            blurred = gaussian_blur(param.image(), robust.blur_sigma, truncate=3.0, border="reflect")
            param.set(_clip_weak_pixels(blurred, grad_image, robust))
    prob = None if trace["prob"][0] is None else np.array(trace["prob"])
    return Visualization(np.asarray(param.image(), np.float32),
                         Trace(np.array(trace["score"]), prob, np.array(trace["norm"])),
                         np.asarray(objective.targets))


def _input_shape(model, batch, input_size):
    c = input_channels(model)
    if c is None:
        raise ValueError("model has no Conv2d layer: nothing to visualise in image space")
    if input_size is None:
        hw = infer_input_size(model)
    elif isinstance(input_size, (int, np.integer)):
        hw = (int(input_size), int(input_size))
    else:
        hw = tuple(int(v) for v in input_size)
    if len(hw) != 2 or min(hw) < 1:
        raise ValueError(f"input_size must be a positive int or (h, w), got {input_size!r}")
    return (batch, c) + hw


def _num_outputs(model, input_shape):
    out = Tape(model).forward(on_model_device(model, np.zeros((1,) + input_shape[1:])))
    if len(out.shape) != 2:
        raise ValueError(f"the model's output must be (N, classes) for class_model, got shape {tuple(out.shape)}")
    return out.shape[1]


def class_model(model, target, *, steps=200, lr=0.05, l2=1e-3, seed=0, preset=None, input_size=None):
    """class_model(model, target, *, steps=200, lr=0.05, l2=1e-3, seed=0, preset=None,
    input_size=None) -> Visualization.

    The image that maximises the score of class `target` (an int, or a sequence of ints that
    are optimised together as one batch) before the softmax, minus l2 * ||I||^2, by Adam
    gradient ascent from seeded noise. .image is (len(targets), C, H, W) float32; .trace has
    score / prob / norm per step. preset: None (Simonyan et al.) or "robust" (jitter, blur,
    clipping and a decorrelated Fourier parameterisation, pixels in [0, 1]). input_size: (h, w)
    or int; by default inferred from the model (224 for torchvision-style heads)."""
    model = check_model(model)
    _check_steps_lr(steps, lr, l2)
    robust = _resolve_preset(preset)
    targets = np.atleast_1d(np.asarray(target))
    shape = _input_shape(model, targets.size, input_size)
    targets = check_targets(targets, targets.size, _num_outputs(model, shape), "target")
    return _ascend(model, _ClassScore(model, targets), shape, steps, lr, l2, seed, robust)


def maximize_activation(model, layer, channel, position=None, *, steps=200, lr=0.05, l2=1e-3, seed=0,
                        preset=None, input_size=None):
    """maximize_activation(model, layer, channel, position=None, *, steps=200, lr=0.05, l2=1e-3,
    seed=0, preset=None, input_size=None) -> Visualization.

    The image that maximises one unit a_i(I) of `layer`: channel `channel` at position (y, x),
    or the channel's spatial mean when position is None. channel may be a sequence: one image
    per channel, optimised as one batch. Same optimiser, presets and result as class_model
    (trace.prob is None; trace.score is the objective). The unit is read at the named layer's
    own output: for a Conv2d or Linear that is before its non-linearity, which has the same
    maximiser (the activation is monotone) but a gradient that does not vanish where a ReLU is
    off (a channel silent on the initial noise would otherwise never move); name the ReLU to
    optimise after it."""
    model = check_model(model)
    _check_steps_lr(steps, lr, l2)
    robust = _resolve_preset(preset)
    stop = model.end_index(layer)
    channels = np.atleast_1d(np.asarray(channel))
    shape = _input_shape(model, channels.size, input_size)
    probe = Tape(model).forward(on_model_device(model, np.zeros((1,) + shape[1:])), stop=stop)
    channels = check_targets(channels, channels.size, probe.shape[1], "channel")
    if position is not None:
        if len(probe.shape) != 4:
            raise ValueError(f"position needs a spatial layer; {layer!r} has output shape {tuple(probe.shape)}")
        pos = tuple(int(v) for v in position)
        h, w = probe.shape[2:]
        if len(pos) != 2 or not (0 <= pos[0] < h and 0 <= pos[1] < w):
            raise ValueError(f"position must be (y, x) inside the {h}x{w} map of {layer!r}, got {position!r}")
        position = pos
    return _ascend(model, _UnitScore(stop, channels, position), shape, steps, lr, l2, seed, robust)
