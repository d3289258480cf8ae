"""patch(model): run a torch model's convolutions, poolings and few-row linear layers on fastconv's kernels."""
from __future__ import annotations

import warnings

from torch import nn

from fastconv._algorithm import check_algorithm, winograd_unsupported
from fastconv.torch import patch_policy
from fastconv.torch.modules import AvgPool2d, Conv2d, Linear, MaxPool2d, unsupported_conv_reason
from fastconv.torch.patch_policy import PatchDecision

# Exactly these classes are converted; a subclass may override forward, so it stays on torch.
_REPLACEMENTS = {nn.Conv2d: Conv2d, nn.MaxPool2d: MaxPool2d, nn.AvgPool2d: AvgPool2d, nn.Linear: Linear}
_OURS = tuple(_REPLACEMENTS.values())


def _left_on_torch_reason(module):
    """Why a torch conv / pooling module cannot be converted (None when it can, or is not one)."""
    if type(module) in _REPLACEMENTS:
        return unsupported_conv_reason(module) if type(module) is nn.Conv2d else None
    for base in _REPLACEMENTS:
        if isinstance(module, base) and not isinstance(module, _OURS):
            return f"{type(module).__name__} subclasses torch.nn.{base.__name__} and may compute something else"
    return None


def _winograd_shape(conv):
    """Whether Winograd can run this conv (the one rule: fastconv._algorithm.winograd_unsupported)."""
    return winograd_unsupported(conv.kernel_size, conv.stride, conv.dilation) is None


def patch(model, algorithm="auto", *, force=False, example_input=None, verbose=False):
    """Make the torch.nn.Conv2d / MaxPool2d / AvgPool2d / Linear modules of model (the model
    itself included) that fastconv runs faster than torch use fastconv's kernels, and return model.
    A patched Linear runs fastconv's kernels on 1-8 rows of a 2-D CPU input and torch otherwise.

    Which modules: see patch_plan (by rule, or measured on example_input); force=True swaps every
    supported module whatever it costs. verbose=True prints what was swapped and left, and why.
    The modules are converted in place, like ``model.to()``: they keep their parameters (the same
    Parameter objects, so an optimizer or DistributedDataParallel built before still sees them),
    buffers, hooks, device, dtype and state_dict keys. Deep-copy the model first to keep an
    unpatched one. Modules fastconv cannot run (e.g. padding_mode="circular", subclasses with their
    own forward) stay on torch, named in one warning. algorithm: the convolution algorithm of every
    patched Conv2d; a Winograd choice applies to the 3x3 stride-1 dilation-1 convolutions and the
    others get "auto" (direct). Patching a patched model again changes the algorithm.
    """
    decisions = patch_plan(model, algorithm, force=force, example_input=example_input)
    modules = dict(model.named_modules())
    left_on_torch = []
    for d in decisions:
        module = modules["" if d.name == "(model)" else d.name]
        if _left_on_torch_reason(module):
            left_on_torch.append(f"{d.name}: {d.reason}")
        elif d.swapped and type(module) in _REPLACEMENTS:
            # the subclass adds a forward and, for Conv2d, one attribute: nothing to rebuild
            module.__class__ = _REPLACEMENTS[type(module)]
        if isinstance(module, Conv2d):
            module.algorithm = algorithm if algorithm in ("auto", "direct") or _winograd_shape(module) else "auto"
    if left_on_torch:
        warnings.warn("fastconv.torch.patch left these modules on PyTorch: " + "; ".join(left_on_torch),
                      UserWarning, stacklevel=2)
    if verbose:
        print("fastconv.torch.patch:\n" + "\n".join(f"  {d}" for d in decisions))
    return model


def patch_plan(model, algorithm="auto", *, force=False, example_input=None):
    """What patch(model, ...) would do, without changing model: a PatchDecision (name, swapped,
    reason) for every torch.nn.Conv2d / MaxPool2d / AvgPool2d / Linear in it (patched ones included).

    force=True: every module fastconv can run. example_input (a tensor, or a tuple of the
    model's arguments): swap what runs faster in a measurement on the inputs each module sees in
    one forward; otherwise by the rule in fastconv.torch.patch_policy."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    check_algorithm(algorithm)
    candidates = [(name, m) for name, m in model.named_modules() if isinstance(m, tuple(_REPLACEMENTS))]
    inputs = {}
    if example_input is not None and not force:
        runnable = [m for _, m in candidates if not _left_on_torch_reason(m) and not isinstance(m, _OURS)]
        inputs = patch_policy.record_inputs(model, example_input, runnable)
    decisions = []
    for name, module in candidates:
        reason = _left_on_torch_reason(module)
        if reason:
            swap = False
        elif isinstance(module, _OURS):
            swap, reason = True, "already patched"
        elif force:
            swap, reason = True, "force=True"
        elif module in inputs:
            swap, reason = patch_policy.by_measurement(module, inputs[module], algorithm)
        else:
            swap, reason = patch_policy.by_rule(module, isinstance(module, nn.Conv2d) and _winograd_shape(module))
            if example_input is not None:
                reason += " (not reached by example_input)"
        decisions.append(PatchDecision(name or "(model)", type(module).__name__, swap, reason))
    return decisions
