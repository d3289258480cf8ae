"""Receptive fields: how much of the input each unit of each layer sees.

For every layer, per axis: k_eff = d(k - 1) + 1, r_out = r_in + (k_eff - 1) j_in,
j_out = j_in s, start_out = start_in + ((k_eff - 1)/2 - pad) j_in (the centre of the first
unit, in input pixels; negative when padding reaches past the border). Pointwise layers keep
all three; Flatten and Linear units see the whole input.
"""
from __future__ import annotations

import math
from dataclasses import dataclass


from fastconv import nn
from fastconv._geometry import adaptive_output_size, pool_output_size
from fastconv._validate import int_pair
from fastconv.interpret._engine import check_model


@dataclass(frozen=True)
class ReceptiveField:
    """One layer's receptive field. size, jump (effective stride) and output_size are (h, w)
    ints; start is the (y, x) centre of the first unit's field in input pixels; params is the
    layer's parameter count; kernel_weights the weights per (input, output) channel pair."""
    name: str
    kind: str
    size: tuple
    jump: tuple
    start: tuple
    params: int
    kernel_weights: int
    output_size: tuple

    def box(self, y, x, input_size=None):
        """(top, left, bottom, right), bottom/right exclusive, of unit (y, x)'s field; clipped
        to [0, input_size) when input_size (h, w) is given."""
        top = int(round(self.start[0] + y * self.jump[0] - (self.size[0] - 1) / 2))
        left = int(round(self.start[1] + x * self.jump[1] - (self.size[1] - 1) / 2))
        bottom, right = top + self.size[0], left + self.size[1]
        if input_size is not None:
            h, w = input_size
            top, left, bottom, right = max(top, 0), max(left, 0), min(bottom, h), min(right, w)
        return top, left, bottom, right


def _window(layer, in_hw):
    """(kernel, stride, padding, dilation, ceil_mode) per axis of a windowed layer, or None for
    pointwise layers; 'global' for layers whose units see everything."""
    if isinstance(layer, nn.Conv2d):
        k, s, d = layer.kernel_size, layer.stride, layer.dilation
        if layer.padding == "valid":
            p = (0, 0)
        elif layer.padding == "same":
            p = tuple(d[a] * (k[a] - 1) // 2 for a in range(2))
        else:
            p = layer.padding
        return k, s, p, d, False
    if isinstance(layer, nn.MaxPool2d):
        k = int_pair(layer.kernel_size, "kernel_size", 1)
        s = k if layer.stride is None else int_pair(layer.stride, "stride", 1)
        p, d = int_pair(layer.padding, "padding", 0), int_pair(layer.dilation, "dilation", 1)
        return k, s, p, d, bool(layer.ceil_mode)
    if isinstance(layer, nn.AvgPool2d):
        kernel, stride, padding, ceil_mode = layer.args[:4]
        k = int_pair(kernel, "kernel_size", 1)
        s = k if stride is None else int_pair(stride, "stride", 1)
        return k, s, int_pair(padding, "padding", 0), (1, 1), bool(ceil_mode)
    if isinstance(layer, nn.AdaptiveAvgPool2d):
        out_hw = adaptive_output_size(layer.output_size, in_hw)
        if tuple(in_hw) == out_hw:
            return None
        # torch's bins [floor(i n / o), ceil((i + 1) n / o)): the widest bin and the mean step
        # (exact when o divides n)
        k = tuple(-(-n // o) + (1 if n % o else 0) for n, o in zip(in_hw, out_hw))
        s = tuple(max(1, n // o) for n, o in zip(in_hw, out_hw))
        return k, s, (0, 0), (1, 1), False
    if isinstance(layer, (nn.Flatten, nn.Linear)):
        return "global"
    return None


def receptive_field(model, input_size):
    """receptive_field(model, input_size) -> [ReceptiveField], one per leaf layer in execution
    order. input_size: an int (square) or (h, w). ValueError when a layer's output would be
    empty at that size."""
    model = check_model(model)
    hw = int_pair(input_size, "input_size", 1)
    size, jump, start, out_hw = (1, 1), (1, 1), (0.0, 0.0), hw
    spatial = True
    records = []
    for name, layer in model.leaves():
        window = _window(layer, out_hw) if spatial else None
        if window == "global":
            spatial = False
            size = tuple(max(r, n) for r, n in zip(size, hw))
            jump, start, out_hw = hw, tuple((n - 1) / 2 for n in hw), (1, 1)
        elif window is not None:
            k, s, p, d, ceil_mode = window
            k_eff = tuple(d[a] * (k[a] - 1) + 1 for a in range(2))
            out_hw = tuple(pool_output_size(out_hw[a], k[a], s[a], p[a], d[a], ceil_mode) for a in range(2))
            if min(out_hw) < 1:
                raise ValueError(f"input_size {hw} is too small: layer {name!r} would have an empty output")
            start = tuple(start[a] + ((k_eff[a] - 1) / 2 - p[a]) * jump[a] for a in range(2))
            size = tuple(size[a] + (k_eff[a] - 1) * jump[a] for a in range(2))
            jump = tuple(jump[a] * s[a] for a in range(2))
        kw = math.prod(layer.kernel_size) if isinstance(layer, nn.Conv2d) else 0
        records.append(ReceptiveField(name, type(layer).__name__, size, jump, start,
                                      layer.num_parameters(), kw, out_hw))
    return records
