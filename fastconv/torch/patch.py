"""patch(model): run a torch model's convolutions and poolings on fastconv's kernels."""
from __future__ import annotations

import warnings

from torch import nn

from fastconv.torch.modules import AvgPool2d, Conv2d, MaxPool2d, check_algorithm, unsupported_conv_reason

# Exactly these classes are swapped: a subclass may override forward, so it stays on torch.
_REPLACEMENTS = {nn.Conv2d: Conv2d, nn.MaxPool2d: MaxPool2d, nn.AvgPool2d: AvgPool2d}


def patch(model, algorithm="auto"):
    """Make every supported torch.nn.Conv2d / MaxPool2d / AvgPool2d in model (the model itself
    included) run fastconv's kernels, and return model.

    The modules are converted in place, like ``model.to()``: they keep their parameters (the same
    Parameter objects, so an optimizer or DistributedDataParallel built before still sees them),
    buffers, hooks, device, dtype and state_dict keys. Deep-copy the model first to keep an
    unpatched one. Modules fastconv cannot run (e.g. padding_mode="circular") stay on torch, named
    in one warning. algorithm: the convolution algorithm of every patched Conv2d.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    check_algorithm(algorithm)
    left_on_torch = []
    for name, module in model.named_modules():
        target = _REPLACEMENTS.get(type(module))
        if target is None:
            if isinstance(module, Conv2d):  # patched before: take the new algorithm
                module.algorithm = algorithm
            continue
        reason = unsupported_conv_reason(module) if target is Conv2d else None
        if reason:
            left_on_torch.append(f"{name or '(model)'}: {reason}")
            continue
        module.__class__ = target  # the subclass adds a forward and, for Conv2d, one attribute
        if target is Conv2d:
            module.algorithm = algorithm
    if left_on_torch:
        warnings.warn("fastconv.torch.patch left these modules on PyTorch: " + "; ".join(left_on_torch),
                      UserWarning, stacklevel=2)
    return model
