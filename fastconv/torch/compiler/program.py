"""The compiled function Dynamo calls: the lowered steps, run with a memory plan per input shape.

Inference only: a call that needs gradients (grad mode on and an input requiring grad) runs
the original graph on torch, as does a graph lowered while gradients were needed (Dynamo
recompiles when grad mode changes). Safe to call from several threads at once: each call has
its own value list and buffer set, and the shared caches (plans, prepared weights) are filled
under locks.
"""
from __future__ import annotations

import threading

import torch
from torch.fx.node import map_aggregate

from fastconv.torch.compiler import lowering
from fastconv.torch.compiler.memory import Liveness, MemoryPlan
from fastconv.torch.compiler.steps import _Ref

_MAX_PLANS = 16  # input shapes remembered per graph; a program that sweeps more starts over


class CompiledGraph:
    def __init__(self, gm, example_inputs):
        self.gm = gm
        lowered = lowering.lower(gm)
        self.steps = lowered.steps
        self.n_values = lowered.n_values
        self.placeholders = lowered.placeholders
        self.output = lowered.output
        self.decisions = lowered.decisions
        outputs = []
        map_aggregate(self.output, lambda r: outputs.append(r.index) if isinstance(r, _Ref) else None)
        self.liveness = Liveness(self.steps, self.n_values, outputs)
        # The plan key: sizes of everything but the parameters (Dynamo guards their shapes), and
        # the symbolic sizes Dynamo passes as ints once it makes a dimension dynamic.
        self.key_positions = [k for k, e in enumerate(example_inputs) if not isinstance(e, torch.nn.Parameter)]
        self._plans = {}
        self._lock = threading.Lock()

    def __call__(self, *args):
        if torch.is_grad_enabled() and any(isinstance(a, torch.Tensor) and a.requires_grad for a in args):
            return self.gm(*args)
        values = [None] * self.n_values
        for i, a in zip(self.placeholders, args):
            values[i] = a
        key = tuple(args[k].shape if isinstance(args[k], torch.Tensor) else args[k] for k in self.key_positions)
        plan = self._plans.get(key)
        if plan is None:
            self._first_call(values, key)
        else:
            views, outs = plan.checkout(len(self.steps))
            try:
                for step, out in zip(self.steps, outs):
                    values[step.out] = step.run(values, out)
            finally:
                plan.checkin(views)
        return map_aggregate(self.output, lambda r: values[r.index] if isinstance(r, _Ref) else r)

    def _first_call(self, values, key):
        """Run with every step allocating its own result, and plan memory from the sizes seen."""
        specs = {}
        for pos, step in enumerate(self.steps):
            v = step.run(values, None)
            values[step.out] = v
            if step.allocates:
                specs[pos] = (tuple(v.shape), v.dtype)
        plan = MemoryPlan(self.liveness, specs)
        with self._lock:
            if len(self._plans) >= _MAX_PLANS:
                self._plans.clear()
            self._plans.setdefault(key, plan)


class TorchGraph:
    """A graph that runs entirely on torch (lowered while gradients were needed, or not CPU),
    with the decisions explain shows for it."""

    def __init__(self, gm, reason):
        self.gm = gm
        self.decisions = lowering.all_on_torch(gm, reason)

    def __call__(self, *args):
        return self.gm(*args)


def compile_graph(gm, example_inputs):
    """The callable Dynamo runs for gm: a CompiledGraph, or a TorchGraph where fastconv has no
    business (gradients needed: training keeps fastconv.torch.patch's autograd path)."""
    tensors = [e for e in example_inputs if isinstance(e, torch.Tensor)]
    if torch.is_grad_enabled() and any(t.requires_grad for t in tensors):
        return TorchGraph(gm, "gradients are needed (the compiled plan is for inference: run under "
                              "torch.no_grad() / torch.inference_mode(); training keeps fastconv.torch.patch)")
    if any(t.device.type != "cpu" for t in tensors):
        return TorchGraph(gm, "inputs are not on the CPU (the compiled plan runs CPU tensors)")
    return CompiledGraph(gm, example_inputs)
