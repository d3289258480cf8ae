"""Activation buffers: planned once per input shape, reused by liveness.

``Liveness`` (once per graph) groups values that may share storage (a step's result and the
values it aliases) and finds where each group is last read; groups holding a graph output
escape: their steps get a fresh tensor on every call, which the caller then owns.

``MemoryPlan`` (once per input shape, from the sizes the first call produced) gives every other
allocating step a buffer: walking the steps in order, a buffer returns to the free list after
its group's last read, and a step takes the smallest free buffer that fits (best fit) or a new
one. One buffer *set* serves one call at a time; concurrent calls (threads) check out sets of
their own, so a set is never shared.
"""
from __future__ import annotations

import threading

import torch


class Liveness:
    def __init__(self, steps, n_values, outputs):
        parent = list(range(n_values))

        def root(i):
            while parent[i] != i:
                parent[i] = parent[parent[i]]
                i = parent[i]
            return i

        for step in steps:
            for a in step.aliases:
                parent[root(a)] = root(step.out)
        end = {}
        for pos, step in enumerate(steps):
            for i in (step.out, *step.reads):
                end[root(i)] = pos
        escaping = {root(i) for i in outputs}
        # per allocating step: (position, index of the last step reading its storage, escapes)
        self.allocations = [(pos, end[root(s.out)], root(s.out) in escaping)
                            for pos, s in enumerate(steps) if s.allocates]


class MemoryPlan:
    def __init__(self, liveness, specs):
        """specs: step position -> (shape, dtype) of each allocating step's result."""
        self.specs = specs
        self.slots = {}        # step position -> buffer number, for the non-escaping ones
        self.sizes = []        # buffer number -> bytes
        free, busy = [], []    # buffer numbers; (end, buffer number)
        for pos, end, escapes in liveness.allocations:
            for item in [b for b in busy if b[0] < pos]:
                busy.remove(item)
                free.append(item[1])
            if escapes:
                continue
            shape, dtype = specs[pos]
            need = _nbytes(shape, dtype)
            fits = [b for b in free if self.sizes[b] >= need]
            if fits:
                slot = min(fits, key=self.sizes.__getitem__)
                free.remove(slot)
            else:
                slot = len(self.sizes)
                self.sizes.append(need)
            self.slots[pos] = slot
            busy.append((end, slot))
        self._sets = []
        self._lock = threading.Lock()

    @property
    def nbytes(self):
        return sum(self.sizes)

    def checkout(self, n_steps):
        """The out= tensor of each step (None for steps that do not allocate) for one call."""
        with self._lock:
            views = self._sets.pop() if self._sets else None
        if views is None:
            storages = [torch.empty(n, dtype=torch.uint8) for n in self.sizes]
            views = {pos: _view(storages[slot], *self.specs[pos]) for pos, slot in self.slots.items()}
        outs = [None] * n_steps
        for pos, (shape, dtype) in self.specs.items():
            outs[pos] = views[pos] if pos in views else torch.empty(shape, dtype=dtype)
        return views, outs

    def checkin(self, views):
        with self._lock:
            self._sets.append(views)


def _nbytes(shape, dtype):
    n = torch.Size(shape).numel()
    return n * torch.empty((), dtype=dtype).element_size()


def _view(storage, shape, dtype):
    return storage[:_nbytes(shape, dtype)].view(dtype).view(shape)
