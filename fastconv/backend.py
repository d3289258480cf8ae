"""The backend interface: which backend runs an op, and the ops every backend has.

A backend is a module implementing every name in BACKEND_OPS with the same signature:
fastconv._cpu for numpy arrays, fastconv.cuda for arrays exposing ``__cuda_array_interface__``
(and the CUDA simulator's device arrays). ``backend_of(*arrays)`` picks it; functional, nn,
optim, losses and train call ops through it and never import a backend themselves.
"""
from __future__ import annotations

from fastconv import _cpu
from fastconv.device import check_device, is_cuda_array

# Weights transformed once for Winograd (functional.winograd_weights makes them through the
# winograd_weights op); only the CPU backend has them, and its conv2d takes them as the weight.
WinogradWeights = _cpu.WinogradWeights

# Tests/test_backend_interface.py checks both backends against this list. Arguments arrive
# validated by fastconv.functional (or by the nn/optim caller); an op a backend cannot run
# raises TypeError naming it.
BACKEND_OPS = (
    "check_out", "choose_algorithm",
    "conv2d", "conv2d_relu", "conv2d_input", "conv2d_weight",
    "max_pool2d", "max_pool2d_backward", "avg_pool2d", "avg_pool2d_backward",
    "adaptive_avg_pool2d", "adaptive_avg_pool2d_backward", "adaptive_max_pool2d",
    "linear", "linear_backward", "bias_grad",
    "relu", "relu_backward", "epilogue", "sigmoid", "sigmoid_backward", "tanh", "tanh_backward",
    "softmax", "softmax_backward", "log_softmax", "log_softmax_backward",
    "cross_entropy", "cross_entropy_backward", "mse_loss", "mse_backward",
    "dropout_mask_mul", "mul", "accumulate", "copy_into", "cast", "zeros_like",
    "sgd_step", "adam_step", "winograd_weights",
)


def backend_of(*arrays):
    """fastconv._cpu when every array (None skipped) is a host array, fastconv.cuda when every
    one is a CUDA array; mixing them is a TypeError."""
    on_cuda = [is_cuda_array(a) for a in arrays if a is not None]
    if any(on_cuda):
        if not all(on_cuda):
            raise TypeError("arguments mix CUDA arrays and host (numpy) arrays; move them to one device")
        return _cuda_backend()
    return _cpu


def _cuda_backend():
    # Imported on first use, not with fastconv: the package adapts numpy for numba-cuda
    # (np.row_stack), which a program that never touches a GPU array must not see.
    from fastconv import cuda
    return cuda


def backend_named(device):
    """The backend of a device name, 'cpu' or 'cuda' (for a question asked without arrays, such as
    functional.conv2d_algorithm's)."""
    return _cuda_backend() if check_device(device) == "cuda" else _cpu
