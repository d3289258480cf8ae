"""``torch.compile(model, backend="fastconv")``: Dynamo's FX graph lowered to one fastconv plan.

- lowering.py: the graph -> steps (conv2d with an eval BatchNorm folded into it and a fused
  epilogue, pooling, linear, standalone BatchNorm / add / activations, flatten, cat, eval
  dropout on fastconv; every other node on torch) and the decisions explain() prints.
- steps.py: what each step runs; weights.py: weights derived once per parameter version.
- memory.py: activation buffers planned per input shape and reused by liveness.
- program.py: the compiled function (inference only; thread-safe).

The backend is registered under the ``torch_dynamo_backends`` entry point named "fastconv"
(pyproject.toml), so ``torch.compile(model, backend="fastconv")`` needs no import of fastconv.
"""
from fastconv.torch.compiler.explain import Explanation, explain
from fastconv.torch.compiler.program import compile_graph


def backend(gm, example_inputs):
    """The Dynamo backend: ``torch.compile(model, backend=fastconv.torch.compile_backend)``."""
    return compile_graph(gm, example_inputs)


__all__ = ["Explanation", "backend", "explain"]
