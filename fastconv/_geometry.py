"""Convolution and pooling geometry: parsing torch-style arguments into one normalised,
validated description that every backend receives."""
from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np

from fastconv._validate import check_fits_in_memory, int_pair, positive_int


def conv_output_size(size, kernel, stride, padding, dilation):
    """Output length of a convolution along one axis (torch's formula; the one place it lives)."""
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def pool_output_size(size, kernel, stride, padding, dilation, ceil_mode):
    """PyTorch's pooling output size, including the ceil_mode rule that the last window
    must start inside the input or the left padding."""
    eff = dilation * (kernel - 1) + 1
    num = size + 2 * padding - eff
    out = (num + (stride - 1 if ceil_mode else 0)) // stride + 1
    if ceil_mode and (out - 1) * stride >= size + padding:
        out -= 1
    return out


@dataclass(frozen=True)
class ConvGeometry:
    stride: tuple
    padding: tuple      # symmetric part (h, w) the kernels apply
    extra_pad: tuple    # extra (bottom, right) zeros for padding="same" with even kernels
    dilation: tuple
    groups: int
    out_hw: tuple       # (OH, OW)


def conv_geometry(in_shape, w_shape, stride, padding, dilation, groups, input_name="input"):
    """in_shape (N, C, H, W), w_shape (K, C/groups, R, S), both already 4-D and non-empty."""
    groups = positive_int(groups, "groups")
    stride = int_pair(stride, "stride", 1)
    dilation = int_pair(dilation, "dilation", 1)
    n, c, h, w = in_shape
    k, cg, r, s = w_shape
    if c % groups:
        raise ValueError(f"{input_name} has {c} channels, not divisible by groups={groups}")
    if k % groups:
        raise ValueError(f"weight has {k} output channels, not divisible by groups={groups}")
    if cg * groups != c:
        raise ValueError(f"weight must have shape (K, {c // groups}, R, S) for {c} input channels "
                         f"and groups={groups}, got {tuple(w_shape)}")
    extra = (0, 0)
    if isinstance(padding, str):
        if padding == "valid":
            padding = (0, 0)
        elif padding == "same":
            if stride != (1, 1):
                raise ValueError("padding='same' is not supported for strided convolutions (stride must be 1)")
            total = (dilation[0] * (r - 1), dilation[1] * (s - 1))
            padding = (total[0] // 2, total[1] // 2)
            extra = (total[0] - 2 * padding[0], total[1] - 2 * padding[1])
        else:
            raise ValueError(f"padding must be an int, a pair, 'valid' or 'same', got {padding!r}")
    else:
        padding = int_pair(padding, "padding", 0)
    eff_h, eff_w = dilation[0] * (r - 1) + 1, dilation[1] * (s - 1) + 1
    if eff_h > h + 2 * padding[0] + extra[0] or eff_w > w + 2 * padding[1] + extra[1]:
        raise ValueError(
            f"weight's (dilated) kernel {eff_h}x{eff_w} is larger than the padded {input_name} "
            f"{h + 2 * padding[0] + extra[0]}x{w + 2 * padding[1] + extra[1]}")
    oh = conv_output_size(h + extra[0], r, stride[0], padding[0], dilation[0])
    ow = conv_output_size(w + extra[1], s, stride[1], padding[1], dilation[1])
    check_fits_in_memory(f"the padded {input_name}", n * c * (h + 2 * padding[0] + extra[0]) * (w + 2 * padding[1] + extra[1]))
    check_fits_in_memory("the output", n * k * oh * ow)
    return ConvGeometry(stride, padding, extra, dilation, groups, (oh, ow))


@dataclass(frozen=True)
class PoolGeometry:
    kernel: tuple
    stride: tuple
    padding: tuple
    dilation: tuple
    ceil_mode: bool
    out_hw: tuple


def pool_geometry(in_shape, kernel_size, stride, padding, dilation, ceil_mode):
    kernel = int_pair(kernel_size, "kernel_size", 1)
    stride = kernel if stride is None or (not isinstance(stride, int) and len(tuple(stride)) == 0) \
        else int_pair(stride, "stride", 1)
    padding = int_pair(padding, "padding", 0)
    dilation = int_pair(dilation, "dilation", 1)
    if padding[0] * 2 > kernel[0] or padding[1] * 2 > kernel[1]:
        raise ValueError(f"padding must be at most half of kernel_size {kernel}, got {padding}")
    h, w = in_shape[2:]
    oh = pool_output_size(h, kernel[0], stride[0], padding[0], dilation[0], bool(ceil_mode))
    ow = pool_output_size(w, kernel[1], stride[1], padding[1], dilation[1], bool(ceil_mode))
    if oh < 1 or ow < 1:
        raise ValueError(f"kernel_size {kernel} (dilation {dilation}) is larger than the padded "
                         f"input {h + 2 * padding[0]}x{w + 2 * padding[1]}")
    check_fits_in_memory("the output", in_shape[0] * in_shape[1] * oh * ow)
    return PoolGeometry(kernel, stride, padding, dilation, bool(ceil_mode), (oh, ow))


def adaptive_output_size(output_size, in_hw):
    """torch's adaptive-pool output_size: an int, or a pair whose None entries keep the
    input's size along that axis; returns (OH, OW), each >= 1."""
    if output_size is None or isinstance(output_size, (bool, np.bool_, str)):
        raise TypeError(f"output_size must be an int or a pair of ints/None, got {output_size!r}")
    if isinstance(output_size, numbers.Integral):
        output_size = (output_size, output_size)
    try:
        output_size = tuple(output_size)
    except TypeError:
        raise TypeError(f"output_size must be an int or a pair of ints/None, got {output_size!r}") from None
    if len(output_size) != 2:
        raise ValueError(f"output_size must have 2 entries (OH, OW), got {output_size!r}")
    size = tuple(int(in_hw[i]) if v is None else v for i, v in enumerate(output_size))
    return int_pair(size, "output_size", 1)


def adaptive_bins(size, out):
    """torch's adaptive pooling windows along one axis: [floor(i*size/out), ceil((i+1)*size/out))."""
    return [(i * size // out, -((-(i + 1) * size) // out)) for i in range(out)]
