"""What an FX node computes, in the terms the lowering understands.

Dynamo records torch.nn layers as the functional calls they make (``torch.conv2d``,
``F.batch_norm``, ``operator.iadd``, ``Tensor.relu`` as a call_method, ...), with parameters and
buffers as graph inputs. ``recognise(node)`` names the op (one of KINDS) and binds its arguments
by name, filling torch's defaults, so the lowering never reads positional arguments itself.
Anything not listed here is not recognised and runs on torch.
"""
from __future__ import annotations

import operator
from dataclasses import dataclass

import torch
import torch.nn.functional as F

# kind -> (argument names in torch's order, defaults of the trailing ones)
_SIGNATURES = {
    "conv2d": (("input", "weight", "bias", "stride", "padding", "dilation", "groups"), (None, 1, 0, 1, 1)),
    "batch_norm": (("input", "running_mean", "running_var", "weight", "bias", "training", "momentum", "eps"),
                   (None, None, False, 0.1, 1e-5)),
    "relu": (("input", "inplace"), (False,)),
    "hardtanh": (("input", "min_val", "max_val", "inplace"), (-1.0, 1.0, False)),
    "relu6": (("input", "inplace"), (False,)),
    "silu": (("input", "inplace"), (False,)),
    "add": (("input", "other", "alpha"), (1,)),
    "max_pool2d": (("input", "kernel_size", "stride", "padding", "dilation", "ceil_mode", "return_indices"),
                   (None, 0, 1, False, False)),
    "avg_pool2d": (("input", "kernel_size", "stride", "padding", "ceil_mode", "count_include_pad",
                    "divisor_override"), (None, 0, False, True, None)),
    "adaptive_avg_pool2d": (("input", "output_size"), ()),
    "linear": (("input", "weight", "bias"), (None,)),
    "flatten": (("input", "start_dim", "end_dim"), (0, -1)),
    "cat": (("tensors", "dim"), (0,)),
    "dropout": (("input", "p", "training", "inplace"), (0.5, True, False)),
}
KINDS = tuple(_SIGNATURES)

# call_function targets -> (kind, whether it writes into its first argument)
_FUNCTIONS = {
    torch.conv2d: ("conv2d", False), F.conv2d: ("conv2d", False),
    F.batch_norm: ("batch_norm", False),
    F.relu: ("relu", False), torch.relu: ("relu", False), torch.relu_: ("relu", True),
    F.relu6: ("relu6", False), F.hardtanh: ("hardtanh", False), F.silu: ("silu", False),
    operator.add: ("add", False), torch.add: ("add", False), operator.iadd: ("add", True),
    F.max_pool2d: ("max_pool2d", False), torch.max_pool2d: ("max_pool2d", False),
    F.avg_pool2d: ("avg_pool2d", False),
    F.adaptive_avg_pool2d: ("adaptive_avg_pool2d", False),
    F.linear: ("linear", False),
    torch.flatten: ("flatten", False),
    torch.cat: ("cat", False), torch.concat: ("cat", False),
    F.dropout: ("dropout", False),
}
# Tensor methods (call_method targets)
_METHODS = {
    "relu": ("relu", False), "relu_": ("relu", True),
    "add": ("add", False), "__add__": ("add", False), "add_": ("add", True), "__iadd__": ("add", True),
    "flatten": ("flatten", False),
}


@dataclass
class Op:
    kind: str         # one of KINDS
    args: dict        # argument name -> value (fx Nodes for tensors), torch's defaults filled in
    in_place: bool    # the op writes into args["input"] (relu_, +=, inplace=True)


def recognise(node):
    """The Op a call_function / call_method node computes, or None when the lowering has no rule
    for it (or its arguments cannot be bound, e.g. an unexpected keyword)."""
    if node.op == "call_function":
        entry = _FUNCTIONS.get(node.target) if _hashable(node.target) else None
    elif node.op == "call_method":
        entry = _METHODS.get(node.target)
    else:
        entry = None
    if entry is None:
        return None
    kind, in_place = entry
    args = _bind(kind, node.args, node.kwargs)
    if args is None:
        return None
    in_place = in_place or bool(args.get("inplace", False))
    return Op(kind, args, in_place)


def _hashable(target):
    try:
        hash(target)
    except TypeError:
        return False
    return True


def _bind(kind, args, kwargs):
    names, defaults = _SIGNATURES[kind]
    if len(args) > len(names):
        return None
    bound = dict(zip(names, args))
    for k, v in kwargs.items():
        if k not in names or k in bound:
            return None
        bound[k] = v
    for name, default in zip(names[len(names) - len(defaults):], defaults):
        bound.setdefault(name, default)
    return bound if len(bound) == len(names) else None
