"""fastconv's kernels inside PyTorch models.

- ``conv2d``, ``max_pool2d``, ``avg_pool2d``: torch.nn.functional signatures (plus
  ``algorithm=`` for conv2d), backed by ``torch.autograd.Function``s that run fastconv's kernels
  on the tensors' own memory.
- ``Conv2d``, ``MaxPool2d``, ``AvgPool2d``, ``Linear``: drop-in subclasses of the torch.nn modules
  (same constructor arguments, state_dict keys and initialisation; Conv2d adds ``algorithm=``;
  Linear runs fastconv's kernels on 1-8 rows of a 2-D CPU input, torch's forward otherwise).
- ``patch(model)``: swaps the torch.nn conv / pooling / linear modules of a model that fastconv
  runs faster.
- ``compile_backend``: the ``torch.compile`` backend (also registered as ``backend="fastconv"``):
  the whole graph lowered to one fastconv plan for inference; ``explain(model, x)`` shows it.

Needs PyTorch (``pip install "fastconv[torch]"``); the rest of fastconv does not.
"""
try:
    import torch as _torch  # noqa: F401  (only to fail early with a clear message)
except ImportError as e:
    raise ImportError('fastconv.torch needs PyTorch, which is not installed: pip install "fastconv[torch]" '
                      '(or pip install torch)') from e

from fastconv.torch.compiler import backend as compile_backend
from fastconv.torch.compiler import explain
from fastconv.torch.functions import avg_pool2d, conv2d, max_pool2d
from fastconv.torch.modules import AvgPool2d, Conv2d, Linear, MaxPool2d
from fastconv.torch.patch import patch, patch_plan

__all__ = ["AvgPool2d", "Conv2d", "Linear", "MaxPool2d", "avg_pool2d", "compile_backend", "conv2d", "explain", "max_pool2d",
           "patch", "patch_plan"]
