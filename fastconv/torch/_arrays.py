"""Tensors to fastconv arrays and back, without copying.

CPU tensors become numpy views of their storage (``Tensor.numpy()``); CUDA tensors are handed
over as they are, since fastconv.functional reads ``__cuda_array_interface__`` and runs its Numba
kernels on torch's current stream. Results come back the same way: ``torch.from_numpy`` for
numpy arrays, ``torch.as_tensor`` (which reads the CUDA array interface) for Numba device arrays.
Non-contiguous inputs (channels_last, slices) are passed as strided views; fastconv copies them
once into the NCHW layout its kernels read.
"""
from __future__ import annotations

import numpy as np
import torch

FLOAT_DTYPES = (torch.float32, torch.float64)
DEVICES = ("cpu", "cuda")


def runs_on_fastconv(t):
    """Whether fastconv has kernels for this tensor (float32/float64 on the CPU or a CUDA GPU)."""
    return t.dtype in FLOAT_DTYPES and t.device.type in DEVICES


def to_array(t):
    """fastconv's view of a tensor: a numpy view on the CPU, the (detached) tensor on CUDA."""
    if t.is_cuda:
        return t.detach()
    # force=True: detach and resolve a lazily negated view in one call; on the CPU it copies
    # nothing else
    return t.numpy(force=True)


def needs_graph(*tensors):
    """Whether autograd must record this op (False under no_grad / inference_mode, or when no
    argument requires a gradient): then the op runs without an autograd.Function around it."""
    if not torch.is_grad_enabled():
        return False
    for t in tensors:  # a plain loop: cheaper than any() over a generator on this hot path
        if t is not None and t.requires_grad:
            return True
    return False


def to_tensor(a, device):
    """A tensor sharing the memory of fastconv's result a."""
    if isinstance(a, np.ndarray):
        return torch.from_numpy(a)
    return torch.as_tensor(a, device=device)
