"""Which modules patch() swaps: only those fastconv runs faster than torch.

Two ways to decide, per module:

- **by rule** (no example input): the configurations bench/ measures fastconv ahead in. 3x3
  stride-1 dilation-1 ungrouped convolutions (Winograd: VGG-16's nine 3x3 layer shapes run
  1.50x torch forward, 1.33x backward, worst 1.09x / 0.98x; README "Results"), depthwise
  convolutions (one filter per channel: MobileNetV2's ten depthwise layers run 1.8-3.8x torch
  forward, 1.7-3.1x backward, bench/RESULTS.md 2026-12-07 late night), max / avg pooling
  (3.0-4.0x) and linear layers (the patched module runs fastconv's few-rows kernels on 1-8 rows
  and torch's own forward otherwise).
  Every other conv (1x1, strided, grouped, 5x5, 7x7, 11x11) stays on torch: it is not ahead on
  every shape of that kind (bench/RESULTS.md's zoo table). When new kernel families land, this
  rule follows their bench numbers.
- **by measurement** (``example_input=``): one eager forward records each module's input; each
  candidate then runs both ways on that input, alternating, 3 rounds, and is swapped only when
  fastconv's median forward time is lower. Modules the example does not reach fall back to
  the rule. (Forward only: a module swapped for inference also runs its backward on fastconv.)
"""
from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

import torch
from torch import nn

from fastconv.torch import functions

_ROUNDS, _CALLS = 3, 3


@dataclass
class PatchDecision:
    name: str      # the module's name in the model ("(model)" for the model itself)
    module: str    # its class, e.g. "Conv2d(64, 64, kernel_size=(3, 3), ...)" shortened to the type
    swapped: bool
    reason: str

    def __str__(self):
        return f"{'swapped' if self.swapped else 'left   '}  {self.name} ({self.module}): {self.reason}"


def by_rule(module, winograd_shape):
    """(swap, reason) from the configurations fastconv is measured faster in. winograd_shape:
    whether Winograd can run this conv (patch.py's rule, the one place that says so)."""
    if isinstance(module, nn.Linear):
        return True, ("linear: fastconv's few-rows kernels on 1-8 rows (AlexNet's training step at batch 8), "
                      "torch's forward for more")
    if isinstance(module, (nn.MaxPool2d, nn.AvgPool2d)):
        return True, "pooling: fastconv 3.0-4.0x torch (forward + backward, VGG-16 shapes)"
    k, s, d, g = module.kernel_size, module.stride, module.dilation, module.groups
    if winograd_shape and g == 1:
        return True, "3x3 stride-1 conv: fastconv's Winograd 1.5x torch on VGG-16's layers"
    if g > 1 and g == module.in_channels == module.out_channels:
        return True, ("depthwise conv: fastconv's depthwise kernels 1.8-3.8x torch forward, 1.7-3.1x backward "
                      "on MobileNetV2's layers")
    if g > 1:
        what = "depthwise" if g == module.in_channels else "grouped"
    elif k == (1, 1):
        what = "1x1 (pointwise)"
    elif s != (1, 1):
        what = f"stride-{s[0]} {k[0]}x{k[1]}"
    elif d != (1, 1):
        what = "dilated"
    else:
        what = f"{k[0]}x{k[1]}"
    return False, f"{what} conv: torch's oneDNN is faster for this configuration today"


def record_inputs(model, example_input, modules):
    """{module: its input tensor} from one eager forward of model on example_input."""
    seen, hooks = {}, []
    for m in modules:
        hooks.append(m.register_forward_pre_hook(lambda mod, args: seen.setdefault(mod, args[0].detach())))
    try:
        with torch.no_grad():
            model(*example_input) if isinstance(example_input, tuple) else model(example_input)
    finally:
        for h in hooks:
            h.remove()
    return seen


def _fastconv_forward(module, algorithm):
    if isinstance(module, nn.Linear):
        return lambda x: functions.linear(x, module.weight, module.bias)
    if isinstance(module, nn.Conv2d):
        return lambda x: functions.conv2d(x, module.weight, module.bias, module.stride, module.padding,
                                          module.dilation, module.groups, algorithm=algorithm)
    if isinstance(module, nn.MaxPool2d):
        return lambda x: functions.max_pool2d(x, module.kernel_size, module.stride, module.padding, module.dilation,
                                              module.ceil_mode)
    return lambda x: functions.avg_pool2d(x, module.kernel_size, module.stride, module.padding, module.ceil_mode,
                                          module.count_include_pad, module.divisor_override)


def by_measurement(module, x, algorithm):
    """(swap, reason): both forwards on x, alternating, median of _ROUNDS rounds."""
    fastconv_forward = _fastconv_forward(module, algorithm)
    candidates = {"torch": lambda: type(module).forward(module, x), "fastconv": lambda: fastconv_forward(x)}
    times = {name: [] for name in candidates}
    with torch.no_grad():
        for fn in candidates.values():
            fn()  # warm-up: first-call costs (plans, packing) are not the steady state
        for r in range(_ROUNDS):
            for name in (list(candidates) if r % 2 == 0 else list(candidates)[::-1]):
                calls = []
                for _ in range(_CALLS):
                    t0 = time.perf_counter()
                    candidates[name]()
                    calls.append(time.perf_counter() - t0)
                times[name].append(min(calls))
    t_torch, t_fast = statistics.median(times["torch"]), statistics.median(times["fastconv"])
    verdict = "faster" if t_fast < t_torch else "not faster"
    return t_fast < t_torch, (f"measured {verdict}: fastconv {t_fast * 1e3:.3g} ms, torch {t_torch * 1e3:.3g} ms "
                              f"at input {tuple(x.shape)}")
