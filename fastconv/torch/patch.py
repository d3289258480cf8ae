"""patch(model): run a torch model's convolutions and poolings on fastconv's kernels."""
from __future__ import annotations

import warnings

from torch import nn

from fastconv._algorithm import check_algorithm, winograd_unsupported
from fastconv.torch.modules import AvgPool2d, Conv2d, MaxPool2d, unsupported_conv_reason

# Exactly these classes are converted; a subclass may override forward, so it stays on torch.
_REPLACEMENTS = {nn.Conv2d: Conv2d, nn.MaxPool2d: MaxPool2d, nn.AvgPool2d: AvgPool2d}
_OURS = tuple(_REPLACEMENTS.values())


def _left_on_torch_reason(module):
    """Why a torch conv / pooling module cannot be converted (None when it can, or is not one)."""
    if type(module) in _REPLACEMENTS:
        return unsupported_conv_reason(module) if type(module) is nn.Conv2d else None
    for base in _REPLACEMENTS:
        if isinstance(module, base) and not isinstance(module, _OURS):
            return f"{type(module).__name__} subclasses torch.nn.{base.__name__} and may compute something else"
    return None


def patch(model, algorithm="auto"):
    """Make every supported torch.nn.Conv2d / MaxPool2d / AvgPool2d in model (the model itself
    included) run fastconv's kernels, and return model.

    The modules are converted in place, like ``model.to()``: they keep their parameters (the same
    Parameter objects, so an optimizer or DistributedDataParallel built before still sees them),
    buffers, hooks, device, dtype and state_dict keys. Deep-copy the model first to keep an
    unpatched one. Modules fastconv cannot run (e.g. padding_mode="circular", subclasses with their
    own forward) stay on torch, named in one warning. algorithm: the convolution algorithm of every
    patched Conv2d; a Winograd choice applies to the 3x3 stride-1 dilation-1 convolutions and the
    others get "auto" (direct). Patching a patched model again changes the algorithm.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    check_algorithm(algorithm)
    left_on_torch = []
    for name, module in model.named_modules():
        reason = _left_on_torch_reason(module)
        if reason:
            left_on_torch.append(f"{name or '(model)'}: {reason}")
            continue
        if type(module) in _REPLACEMENTS:
            # the subclass adds a forward and, for Conv2d, one attribute: nothing to rebuild
            module.__class__ = _REPLACEMENTS[type(module)]
        if isinstance(module, Conv2d):
            winograd_runs = winograd_unsupported(module.kernel_size, module.stride, module.dilation) is None
            module.algorithm = algorithm if algorithm in ("auto", "direct") or winograd_runs else "auto"
    if left_on_torch:
        warnings.warn("fastconv.torch.patch left these modules on PyTorch: " + "; ".join(left_on_torch),
                      UserWarning, stacklevel=2)
    return model
