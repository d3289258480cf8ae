"""Convolution algorithm names and the one contract for choosing among them.

fastconv.functional validates the requested name once (check_algorithm). Each backend's
choose_algorithm(requested, in_shape, w_shape, geometry, *, input_grad=False) returns "direct" or
one of its Winograd tile names through choose() below, supplying the tiles it has and its cost
model; what Winograd can run at all (winograd_unsupported) is the same on every backend.
"""
from __future__ import annotations

ALGORITHMS = ("auto", "direct", "winograd", "winograd_f2", "winograd_f4", "winograd_f6")

# Winograd F(m x m, r x r) output tile m per algorithm name, for every kernel size r a backend
# runs (winograd_f4 on a 5x5 kernel is F(4x4, 5x5)).
WINOGRAD_TILES = {"winograd_f2": 2, "winograd_f4": 4, "winograd_f6": 6}


def check_algorithm(requested):
    """requested itself when it names an algorithm; ValueError listing them otherwise."""
    if requested not in ALGORITHMS:
        raise ValueError(f"algorithm must be one of {ALGORITHMS}, got {requested!r}")
    return requested


def winograd_unsupported(kernel_hw, stride, dilation, padding=(0, 0), input_grad=False, kernel_sizes=(3,)):
    """Why Winograd cannot run a convolution (None when it can): the one statement of the rule.
    Each geometry argument is an (h, w) pair; padding matters only to the input gradient.
    kernel_sizes: the square kernels the backend's Winograd runs (the CPU's: 3 and 5)."""
    r, s = kernel_hw
    if r != s or r not in kernel_sizes:
        return f"Winograd needs a {' or '.join(f'{k}x{k}' for k in kernel_sizes)} kernel, got {r}x{s}"
    if tuple(stride) != (1, 1):
        return f"Winograd needs stride 1, got stride={tuple(stride)}"
    if tuple(dilation) != (1, 1):
        return f"Winograd needs dilation 1, got dilation={tuple(dilation)}"
    if input_grad and max(padding) > r - 1:
        return f"the Winograd input gradient needs padding <= {r - 1}, got padding={tuple(padding)}"
    return None


def choose(requested, w_shape, geometry, input_grad, *, tiles, backend, cheapest, kernel_sizes=(3,)):
    """The algorithm a backend runs for a validated request.

    tiles: the Winograd names the backend implements for this kernel size. cheapest(allow_direct):
    the backend's cost model, called only for shapes Winograd can run, returning its cheapest
    algorithm ("direct" only when allow_direct). backend names the backend in errors.
    kernel_sizes: as winograd_unsupported's."""
    if requested == "direct":
        return "direct"
    reason = winograd_unsupported(w_shape[2:], geometry.stride, geometry.dilation, geometry.padding, input_grad,
                                  kernel_sizes)
    if requested == "auto":
        return "direct" if reason else cheapest(True)
    if requested != "winograd" and requested not in tiles:
        raise ValueError(f"algorithm={requested!r} is not implemented on the {backend} backend; "
                         f"it has {('auto', 'direct', 'winograd') + tuple(tiles)}")
    if reason:
        raise ValueError(f"algorithm={requested!r} cannot run this convolution: {reason}")
    return cheapest(False) if requested == "winograd" else requested
