"""Fused optimizer updates on the device (torch.optim semantics): SGD with momentum / Nesterov /
weight decay, Adam with bias correction. They run in place on the parameter and its state
buffers: one kernel per parameter per step, no allocation after the first step and no host
synchronisation.
Conventions as in elementwise.py: grid-stride loops over flattened C-contiguous arrays, lazy
compilation, every kernel of an op on the stream of its inputs (see fastconv.cuda.training).
"""
from __future__ import annotations

import math

from numba import cuda

from fastconv.cuda import _device
from fastconv.cuda.elementwise import _flat, _launch, contiguous


# ---------------------------------------------------------------------------- optimizers

@cuda.jit
def _sgd(p, grad, buf, lr, mu, dampening, wd, nesterov, first):
    for i in range(cuda.grid(1), p.size, cuda.gridsize(1)):
        g = grad[i] + wd * p[i]
        if mu != 0:
            if first:
                b = g
            else:
                b = mu * buf[i] + (1 - dampening) * g
            buf[i] = b
            g = g + mu * b if nesterov else b
        p[i] = p[i] - lr * g


def sgd_step(p, grad, buf, lr, momentum, dampening, weight_decay, nesterov, first, stream):
    """One fused torch.optim.SGD update of p in place (buf: the momentum buffer, updated in
    place; ignored when momentum is 0; first: buf = g as torch does on the first step)."""
    _device.check_pair(p, grad, ("parameter", "gradient"))
    grad = contiguous(grad, stream)
    b = p if buf is None else buf
    _launch(_sgd, p.size, stream, _flat(p), _flat(grad), _flat(b), float(lr), float(momentum),
            float(dampening), float(weight_decay), bool(nesterov), bool(first))


@cuda.jit
def _adam(p, grad, m, v, lr_c1, b1, b2, inv_sqrt_c2, eps, wd):
    for i in range(cuda.grid(1), p.size, cuda.gridsize(1)):
        g = grad[i] + wd * p[i]
        mi = b1 * m[i] + (1 - b1) * g
        vi = b2 * v[i] + (1 - b2) * (g * g)
        m[i] = mi
        v[i] = vi
        p[i] = p[i] - lr_c1 * mi / (math.sqrt(vi) * inv_sqrt_c2 + eps)


def adam_step(p, grad, m, v, lr, b1, b2, c1, c2, eps, weight_decay, stream):
    """One fused torch.optim.Adam update (m, v updated in place; c1, c2 the bias corrections)."""
    _device.check_pair(p, grad, ("parameter", "gradient"))
    grad = contiguous(grad, stream)
    _launch(_adam, p.size, stream, _flat(p), _flat(grad), _flat(m), _flat(v), float(lr / c1), float(b1),
            float(b2), float(1.0 / math.sqrt(c2)), float(eps), float(weight_decay))
