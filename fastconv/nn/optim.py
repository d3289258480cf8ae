"""SGD and Adam with torch.optim semantics (weight decay as L2 added to the gradient).
Updates run in place on the parameter arrays, reusing state buffers (no per-step allocation
beyond one temporary), by the backend of the parameter's array (fastconv.backend.backend_of:
numpy on the host, one fused kernel per parameter on CUDA, with the state buffers there too), and
mark each updated Parameter changed (its version goes up), so layers drop caches derived from the
old values; state created on the other device (the model moved after some steps) is moved once, on first use."""
from __future__ import annotations

from fastconv.backend import backend_of
from fastconv.device import device_of, move
from fastconv.nn.module import Module, Parameter


def _on_device_of(buf, like):
    """buf on the device `like` lives on (a one-time move after Module.to)."""
    if buf is None or device_of(buf) == device_of(like):
        return buf
    return move(buf, device_of(like))


def _param_list(params):
    if isinstance(params, Module):
        params = params.parameters()
    params = list(params)
    if not params or not all(isinstance(p, Parameter) for p in params):
        raise TypeError("params must be a non-empty iterable of fastconv.nn.Parameter (model.parameters())")
    return params


class Optimizer:
    def __init__(self, params, lr):
        if lr <= 0:
            raise ValueError(f"lr must be > 0, got {lr}")
        self.params = _param_list(params)
        self.lr = float(lr)
        self.base_lr = self.lr
        self.state = {}

    def zero_grad(self):
        for p in self.params:
            p.grad = None


class SGD(Optimizer):
    """torch.optim.SGD: g = grad + wd*p; buf = mu*buf + (1-dampening)*g (buf = g on the first
    step); g = g + mu*buf if nesterov else buf; p -= lr*g."""

    def __init__(self, params, lr=0.01, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False):
        super().__init__(params, lr)
        if momentum < 0 or weight_decay < 0:
            raise ValueError("momentum and weight_decay must be >= 0")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("nesterov momentum requires momentum > 0 and dampening = 0")
        self.momentum, self.dampening = float(momentum), float(dampening)
        self.weight_decay, self.nesterov = float(weight_decay), bool(nesterov)

    def step(self):
        for p in self.params:
            if p.grad is None:
                continue
            backend = backend_of(p.data)
            buf, first = None, False
            if self.momentum:
                buf = _on_device_of(self.state.get(id(p)), p.data)
                if buf is None:  # the first step: sgd_step sets buf to the gradient
                    buf, first = backend.zeros_like(p.data), True
                self.state[id(p)] = buf
            backend.sgd_step(p.data, p.grad, buf, self.lr, self.momentum, self.dampening, self.weight_decay,
                             self.nesterov, first)
            p.mark_changed()


class Adam(Optimizer):
    """torch.optim.Adam (not AdamW): m, v moving averages with bias correction."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(params, lr)
        if not (0 <= betas[0] < 1 and 0 <= betas[1] < 1):
            raise ValueError(f"betas must be in [0, 1), got {betas}")
        self.betas, self.eps, self.weight_decay = tuple(betas), float(eps), float(weight_decay)
        self.t = 0

    def step(self):
        self.t += 1
        b1, b2 = self.betas
        c1, c2 = 1 - b1 ** self.t, 1 - b2 ** self.t
        for p in self.params:
            if p.grad is None:
                continue
            backend = backend_of(p.data)
            st = self.state.get(id(p))
            if st is not None:
                st = self.state[id(p)] = tuple(_on_device_of(a, p.data) for a in st)
            else:
                st = self.state[id(p)] = (backend.zeros_like(p.data), backend.zeros_like(p.data))
            backend.adam_step(p.data, p.grad, st[0], st[1], self.lr, b1, b2, c1, c2, self.eps, self.weight_decay)
            p.mark_changed()
