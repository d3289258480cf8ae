"""Shared by the torch.compile backend tests: compile a model with the fastconv backend (counting
the graphs it really lowered, so a silent fall back to eager cannot pass) and compare with eager."""
import torch

from fastconv.torch.compiler.program import CompiledGraph, compile_graph

TOL = 1e-4  # relative to the largest |output|, as issue 22 asks


def rel_err(got, want):
    return ((got.double() - want.double()).abs().max() / want.double().abs().max().clamp_min(1e-30)).item()


class Compiled:
    """torch.compile(model, backend=...) with a backend that records the graphs it lowered."""

    def __init__(self, model):
        self.graphs = []

        def backend(gm, example_inputs):
            compiled = compile_graph(gm, example_inputs)
            self.graphs.append(compiled)
            return compiled

        self.fn = torch.compile(model, backend=backend)

    def __call__(self, *args):
        return self.fn(*args)

    @property
    def lowered(self):
        return [g for g in self.graphs if isinstance(g, CompiledGraph)]

    def decisions(self):
        return [d for g in self.graphs for d in g.decisions]


def assert_matches_eager(model, *inputs, tol=TOL):
    """Compile model, run it under no_grad on inputs three times, compare each output with eager
    each time; returns the Compiled wrapper for further checks. The first call of a shape runs
    every step through fastconv.functional and plans the memory; the later ones run the plan's
    buffers and each step's cached kernel call, a different path that must give the same result."""
    compiled = Compiled(model)
    with torch.no_grad():
        want = model(*inputs)
        want = want if isinstance(want, (tuple, list)) else (want,)
        for call in range(3):
            got = compiled(*inputs)
            got = got if isinstance(got, (tuple, list)) else (got,)
            assert len(got) == len(want)
            for k, (g, w) in enumerate(zip(got, want)):
                assert g.shape == w.shape and g.dtype == w.dtype, (call, k)
                assert rel_err(g, w) <= tol, f"call {call}, output {k}: relative error {rel_err(g, w):.2e}"
    assert compiled.lowered, "the fastconv backend lowered no graph"
    return compiled
