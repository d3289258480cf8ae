"""fastconv.torch.explain(model, *example_inputs): which nodes run on fastconv, which were fused
into another node's step, and which stay on torch and why."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import torch

from fastconv.torch.compiler.program import compile_graph


@dataclass
class Explanation:
    graphs: list  # per Dynamo graph (more than one where Dynamo broke the graph): its Decisions

    @property
    def decisions(self):
        return [d for g in self.graphs for d in g]

    @property
    def fallbacks(self):
        """The nodes that run on torch, with the reason for each."""
        return [d for d in self.decisions if d.runs_on == "torch"]

    def counts(self):
        return Counter(d.runs_on for d in self.decisions)

    def __str__(self):
        c = self.counts()
        lines = [f"fastconv.torch.explain: {len(self.graphs)} graph(s); {c['fastconv']} node(s) on fastconv, "
                 f"{c['fused']} fused into them, {c['torch']} on torch"]
        for k, graph in enumerate(self.graphs):
            if len(self.graphs) > 1:
                lines.append(f"graph {k}:")
            width = max((len(d.node) for d in graph), default=4)
            for d in graph:
                lines.append(f"  {d.node:<{width}}  {d.runs_on:<8}  {d.op}: {d.detail}")
        return "\n".join(lines)


def explain(model, *example_inputs, verbose=True):
    """Compile model with the fastconv backend on example_inputs (under torch.no_grad(), as
    inference runs), print the decisions when verbose, and return them as an Explanation."""
    graphs = []

    def recording_backend(gm, inputs):
        compiled = compile_graph(gm, inputs)
        graphs.append(compiled.decisions)
        return compiled

    with torch.no_grad():
        torch.compile(model, backend=recording_backend)(*example_inputs)
    result = Explanation(graphs)
    if verbose:
        print(result)
    return result
