"""Parameter and Module: named parameters, train/eval, state dicts with torch-style dotted names."""
from __future__ import annotations

from collections import OrderedDict

import numpy as np

from fastconv.device import device_of, move, to_host
from fastconv.nn import _ops


class Parameter:
    """A trainable array and its accumulated gradient (None until the first backward).

    version counts changes of the values: assigning data (which `p.data -= ...` does too), the
    optimizers' steps, load_state_dict, astype and to() bump it. Layers cache work derived from
    the values against it (nn.Conv2d keeps its Winograd-transformed weights). Whoever writes into
    the array in place by other means (`p.data[...] = v`, a state_dict() view) calls
    mark_changed()."""

    __slots__ = ("_data", "grad", "version")

    def __init__(self, data):
        self._data = data
        self.grad = None
        self.version = 0

    @property
    def data(self):
        return self._data

    @data.setter
    def data(self, value):
        self._data = value
        self.version += 1

    def mark_changed(self):
        """Record an in-place change of data (see the class docstring)."""
        self.version += 1

    @property
    def shape(self):
        return tuple(self.data.shape)

    def __repr__(self):
        return f"Parameter(shape={self.shape}, dtype={self.data.dtype})"


class Module:
    """Base class: subclasses set Parameters and child Modules as attributes (registered in
    order) and implement forward(x) and backward(grad_output, need_input_grad=True)."""

    def __init__(self):
        object.__setattr__(self, "_params", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)

    def __setattr__(self, name, value):
        if isinstance(value, Parameter):
            self._params[name] = value
        elif isinstance(value, Module):
            self._modules[name] = value
        object.__setattr__(self, name, value)

    def __call__(self, x, **kwargs):
        return self.forward(x, **kwargs)

    def forward(self, x):  # (the shape comment lives on each subclass)
        raise NotImplementedError

    def backward(self, grad_output, need_input_grad=True):
        raise NotImplementedError

    def input_grad(self, grad_output):
        """The gradient of the last forward's input, without accumulating any parameter gradient
        (interpretation asks d output / d input many times and must not touch training's
        gradients). A layer with parameters overrides it; for the others it is backward."""
        return self.backward(grad_output)

    # -- traversal
    def named_modules(self, prefix=""):
        yield prefix, self
        for name, m in self._modules.items():
            yield from m.named_modules(f"{prefix}.{name}" if prefix else name)

    def named_parameters(self, prefix=""):
        for mname, m in self.named_modules(prefix):
            for pname, p in m._params.items():
                yield (f"{mname}.{pname}" if mname else pname), p

    def parameters(self):
        return [p for _, p in self.named_parameters()]

    def zero_grad(self):
        for p in self.parameters():
            p.grad = None

    def train(self, mode=True):
        for _, m in self.named_modules():
            object.__setattr__(m, "training", bool(mode))
        return self

    def eval(self):
        return self.train(False)

    def astype(self, dtype):
        """Convert every parameter to dtype (float32 or float64) in place, on its device;
        gradients are reset."""
        dtype = np.dtype(dtype)
        if dtype not in (np.float32, np.float64):
            raise TypeError(f"dtype must be float32 or float64, got {dtype}")
        for p in self.parameters():
            # a new array on the parameter's own device (numpy: always a copy, as before)
            p.data = p.data.astype(dtype) if device_of(p.data) == "cpu" else _ops.cast(p.data, dtype)
            p.grad = None
        return self

    def to(self, device):
        """Move every parameter (and its gradient) to device, 'cuda' or 'cpu', in place; returns
        self. 'cuda' copies each numpy parameter to a Numba device array (cuda.to_device) once;
        'cpu' copies it back (copy_to_host). Layers then run on the device of their input:
        feed device arrays (fit(..., device='cuda') moves each batch). Optimizer state follows
        the parameters on the optimizer's next step."""
        for p in self.parameters():
            p.data = move(p.data, device)
            p.grad = move(p.grad, device)
        return self

    @property
    def device(self):
        """'cuda' when the first parameter lives on the device, else 'cpu' (parameterless: 'cpu')."""
        for p in self.parameters():
            return device_of(p.data)
        return "cpu"

    def num_parameters(self):
        return sum(int(np.prod(p.shape)) for p in self.parameters())

    # -- state
    def state_dict(self):
        """OrderedDict name -> host numpy array (a view for numpy parameters)."""
        return OrderedDict((n, to_host(p.data)) for n, p in self.named_parameters())

    def load_state_dict(self, state_dict, strict=True):
        """Copy arrays (numpy or torch tensors) into the parameters in place. Missing, unexpected
        and mis-shaped keys are all collected and reported in one KeyError/ValueError."""
        params = OrderedDict(self.named_parameters())
        # torchvision state dicts may carry buffers we do not model (none for these nets, but
        # BatchNorm counters would be here); those count as unexpected under strict.
        missing = [k for k in params if k not in state_dict]
        unexpected = [k for k in state_dict if k not in params]
        mismatched = []
        converted = {}
        for k, p in params.items():
            if k in state_dict:
                v = to_host(state_dict[k])
                if tuple(v.shape) != p.shape:
                    mismatched.append(f"{k}: expected {p.shape}, got {tuple(v.shape)}")
                else:
                    converted[k] = v
        problems = []
        if missing and strict:
            problems.append(f"missing keys: {missing}")
        if unexpected and strict:
            problems.append(f"unexpected keys: {unexpected}")
        if mismatched:
            problems.append(f"shape mismatches: {mismatched}")
        if problems:
            raise ValueError(f"load_state_dict into {type(self).__name__} failed; " + "; ".join(problems))
        for k, v in converted.items():
            p = params[k]
            _ops.copy_into(p.data, np.asarray(v, dtype=p.data.dtype))
            p.mark_changed()
        return self

    def extra_repr(self):
        return ""

    def __repr__(self):
        lines = [f"{type(self).__name__}({self.extra_repr()}"]
        for name, m in self._modules.items():
            sub = repr(m).replace("\n", "\n  ")
            lines.append(f"  ({name}): {sub}")
        return "\n".join(lines) + (")" if len(lines) == 1 else "\n)")
