"""torch.nn.Conv2d / MaxPool2d / AvgPool2d / Linear running fastconv's kernels.

Subclasses of the torch.nn modules: constructor arguments, attributes, parameter
initialisation, state_dict keys and repr are torch's own, so weights move freely between
patched and unpatched models. Only forward changes. Inputs fastconv has no kernels for
(float16 / bfloat16, devices other than CPU and CUDA) run through torch's forward unchanged.
"""
from __future__ import annotations

from torch import nn

from fastconv._algorithm import check_algorithm
from fastconv.torch import functions
from fastconv.torch._arrays import runs_on_fastconv


def unsupported_conv_reason(module):
    """Why fastconv cannot run this torch.nn.Conv2d (None when it can)."""
    if module.padding_mode != "zeros":
        return f"padding_mode={module.padding_mode!r} (fastconv pads with zeros only)"
    return None


class Conv2d(nn.Conv2d):
    """torch.nn.Conv2d on fastconv's kernels, plus ``algorithm=`` ("auto", "direct", "winograd",
    "winograd_f2" / "_f4" / "_f6"; see fastconv.functional.conv2d). padding_mode must be "zeros"."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
                 bias=True, padding_mode="zeros", device=None, dtype=None, *, algorithm="auto"):
        if padding_mode != "zeros":
            raise ValueError(f"padding_mode must be 'zeros' for fastconv.torch.Conv2d, got {padding_mode!r}; "
                             f"use torch.nn.Conv2d for other padding modes")
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                         padding_mode, device, dtype)
        self.algorithm = check_algorithm(algorithm)

    def forward(self, input):
        if not runs_on_fastconv(input):
            return super().forward(input)
        return functions.conv2d(input, self.weight, self.bias, self.stride, self.padding, self.dilation,
                                self.groups, algorithm=self.algorithm)

    def extra_repr(self):
        return super().extra_repr() + f", algorithm={self.algorithm!r}"


class MaxPool2d(nn.MaxPool2d):
    """torch.nn.MaxPool2d on fastconv's kernels (return_indices, ceil_mode, dilation included)."""

    def forward(self, input):
        if not runs_on_fastconv(input):
            return super().forward(input)
        return functions.max_pool2d(input, self.kernel_size, self.stride, self.padding, self.dilation,
                                    self.ceil_mode, self.return_indices)


class AvgPool2d(nn.AvgPool2d):
    """torch.nn.AvgPool2d on fastconv's kernels (count_include_pad, divisor_override included)."""

    def forward(self, input):
        if not runs_on_fastconv(input):
            return super().forward(input)
        return functions.avg_pool2d(input, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                                    self.count_include_pad, self.divisor_override)


class Linear(nn.Linear):
    """torch.nn.Linear on fastconv's few-rows kernels (1-8 rows of a 2-D CPU float input: the
    weights streamed once per pass, forward and both gradients); other inputs run torch's forward."""

    def forward(self, input):
        return functions.linear(input, self.weight, self.bias)
