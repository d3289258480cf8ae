"""Dynamo's FX graph -> a list of steps (fastconv kernels, fused where possible; torch for the rest)
and a report of what became what (fastconv.torch.explain prints it).

Fusion follows chains of single-use values from a producer:

    conv2d -> [eval batch_norm: folded into the conv's weight and bias] -> epilogue
    batch_norm (standalone: per-channel scale + shift) -> epilogue
    add / activation (out of place) -> epilogue
    linear -> [activation]

where the epilogue is at most one residual add and one activation, in either order. A chain's
step runs where its last node stood, since the residual may be computed after the conv (ResNet's
downsample branch); a chain is cut before any node that would have to move past an op that
writes into a tensor.
"""
from __future__ import annotations

import operator
from dataclasses import dataclass

import torch

from fastconv.torch.compiler import steps as S
from fastconv.torch.compiler.ops import recognise

_ACTIVATIONS = ("relu", "relu6", "hardtanh", "silu")
_FLOAT = (torch.float32, torch.float64)
_INPLACE_OPERATORS = {operator.iadd, operator.isub, operator.imul, operator.itruediv, operator.ifloordiv,
                      operator.ipow, operator.iand, operator.ior, operator.ixor, operator.ilshift, operator.irshift}


@dataclass
class Decision:
    """One graph node's fate, as explain shows it."""
    node: str
    op: str       # what the node computes, e.g. "conv2d" or "torch.sigmoid"
    runs_on: str  # "fastconv", "fused" (into another node's step) or "torch"
    detail: str   # the kernel / what it was fused into / why it stayed on torch


@dataclass
class Lowered:
    steps: list
    n_values: int
    placeholders: list  # value indices of the graph inputs, in order
    output: object      # the output structure with steps._Ref leaves
    decisions: list


def describe(node):
    if node.op == "call_method":
        return f"Tensor.{node.target}"
    if node.op == "call_module":
        return f"module {node.target}"
    target = node.target
    module = getattr(target, "__module__", None) or ""
    name = getattr(target, "__name__", str(target))
    return f"{module.replace('torch.nn.functional', 'F').replace('_operator', 'operator')}.{name}".lstrip(".")


def _meta(node):
    return node.meta.get("example_value") if isinstance(node, torch.fx.Node) else None


def _fastconv_tensor(node, ndim=None):
    """Why fastconv cannot take this argument (None when it can): a CPU float32/float64 tensor."""
    t = _meta(node)
    if not isinstance(t, torch.Tensor):
        return f"{getattr(node, 'name', node)!s} is not a tensor"
    if t.dtype not in _FLOAT:
        return f"dtype {t.dtype} (fastconv runs float32 / float64)"
    if t.device.type != "cpu" or t.layout != torch.strided:
        return f"{t.device.type} {t.layout} tensor (the compiled plan runs CPU tensors)"
    if ndim is not None and t.dim() != ndim:
        return f"{t.dim()}-D input (fastconv's kernel takes {ndim}-D)"
    return None


def _same_shape(a, b):
    # str() compares symbolic sizes by name, without adding guards
    return tuple(map(str, _meta(a).shape)) == tuple(map(str, _meta(b).shape))


def _has_node(*values):
    found = []
    torch.fx.node.map_arg(values, found.append)
    return bool(found)


def mutates(node):
    """Whether node may write into a tensor it did not create (in-place ops, out=)."""
    if node.op not in ("call_function", "call_method"):
        return False
    op = recognise(node)
    if op is not None:
        return op.in_place
    name = node.target if node.op == "call_method" else getattr(node.target, "__name__", "")
    return (node.kwargs.get("inplace") is True or "out" in node.kwargs or node.target in _INPLACE_OPERATORS
            or (name.endswith("_") and not name.endswith("__")))


class _Lowering:
    def __init__(self, gm):
        self.gm = gm
        self.nodes = list(gm.graph.nodes)
        self.index = {n: i for i, n in enumerate(self.nodes)}
        self.steps, self.decisions = [], []
        self.deferred = {}  # the last node of a fused chain -> its step, emitted when reached
        self.fused = set()

    # ------------------------------------------------------------ chains

    def _sole_user(self, node):
        users = list(node.users)
        return users[0] if len(users) == 1 else None

    def _follow(self, head, allow_bn):
        """The chain after head: [(node, role, op)] with role "bn", "act" or "add"."""
        chain, cur, have = [], head, set()
        while True:
            nxt = self._sole_user(cur)
            op = recognise(nxt) if nxt is not None and nxt not in self.fused else None
            if op is None or _fastconv_tensor(nxt) is not None:
                break
            if op.kind == "batch_norm" and allow_bn and not chain and op.args["input"] is cur \
                    and self._eval_batch_norm_reason(op) is None:
                role = "bn"
            elif op.kind in _ACTIVATIONS and "act" not in have and op.args["input"] is cur \
                    and not _has_node(*(v for k, v in op.args.items() if k != "input")):
                role = "act"
            elif op.kind == "add" and "add" not in have and self._residual(op, cur) is not None \
                    and (not op.in_place or op.args["input"] is cur):
                role = "add"
            else:
                break
            have.add(role)
            chain.append((nxt, role, op))
            cur = nxt
        return self._cut_at_mutation(head, chain)

    def _residual(self, op, cur):
        """The other operand of an add of cur (same shape and dtype, alpha 1), or None."""
        a, b = op.args["input"], op.args["other"]
        other = b if a is cur else a if b is cur else None
        if other is None or other is cur or op.args["alpha"] != 1 or not isinstance(other, torch.fx.Node):
            return None
        if _fastconv_tensor(other) is not None or _meta(other).dtype != _meta(cur).dtype or not _same_shape(other, cur):
            return None
        return other

    def _cut_at_mutation(self, head, chain):
        """The longest prefix of chain whose nodes the step can compute at its last node's place:
        no node in between (outside the chain) writes into a tensor."""
        members = {head} | {n for n, _, _ in chain}
        for k in range(len(chain), 0, -1):
            span = self.nodes[self.index[head] + 1:self.index[chain[k - 1][0]]]
            if not any(n not in members and mutates(n) for n in span):
                return chain[:k]
        return []

    def _epilogue(self, chain):
        epi = S.Epilogue()
        for node, role, op in chain:
            if role == "act":
                epi.activation = op.kind
                if op.kind == "hardtanh":
                    epi.min_val, epi.max_val = float(op.args["min_val"]), float(op.args["max_val"])
            elif role == "add":  # the residual index is set by the caller
                epi.residual_after_activation = epi.activation is not None
        return epi

    def _emit_chain(self, head, chain, make_step, head_detail):
        """Record the decisions and defer (or emit) the step that computes head + chain."""
        tail = chain[-1][0] if chain else head
        step = make_step(self.index[tail], [head.name] + [n.name for n, _, _ in chain])
        parts = [head_detail] + [_role_text(role, op) for _, role, op in chain]
        self.decisions.append(Decision(head.name, describe(head), "fastconv", " + ".join(parts)))
        for node, role, op in chain:
            self.fused.add(node)
            self.decisions.append(Decision(node.name, describe(node), "fused", f"into {head.name}'s step"))
        if chain:
            self.deferred[tail] = step
        else:
            self.steps.append(step)

    # ------------------------------------------------------------ per kind

    def _eval_batch_norm_reason(self, op):
        a = op.args
        if a["training"] is not False:
            return "batch_norm in training mode (batch statistics; runs on torch)"
        if not isinstance(a["running_mean"], torch.fx.Node) or not isinstance(a["running_var"], torch.fx.Node):
            return "batch_norm without running statistics"
        if _has_node(a["eps"]):
            return "batch_norm with a computed eps"
        for name in ("running_mean", "running_var", "weight", "bias"):
            if a[name] is not None and _fastconv_tensor(a[name]) is not None:
                return f"batch_norm {name}: {_fastconv_tensor(a[name])}"
        return None

    def _bn_sources(self, op):
        i = self.index
        a = op.args
        return (i[a["running_mean"]], i[a["running_var"]], i.get(a["weight"]), i.get(a["bias"]), float(a["eps"]))

    def _residual_index(self, chain, head):
        prev = head
        for node, role, op in chain:
            if role == "add":
                return self.index[self._residual(op, prev)]
            prev = node
        return None

    def lower_conv(self, node, op):
        a = op.args
        reason = (_fastconv_tensor(a["input"], 4) or _fastconv_tensor(a["weight"], 4)
                  or (a["bias"] is not None and _fastconv_tensor(a["bias"])))
        if reason:
            return reason
        if _has_node(a["stride"], a["padding"], a["dilation"], a["groups"]):
            return "conv2d with computed geometry"
        chain = self._follow(node, allow_bn=True)
        bn = None
        if chain and chain[0][1] == "bn":
            bn = self._bn_sources(chain[0][2])
        epi = self._epilogue([c for c in chain if c[1] != "bn"])
        epi.residual = self._residual_index(chain, node)
        i = self.index
        conv = (a["stride"], a["padding"], a["dilation"], a["groups"])
        self._emit_chain(node, chain, lambda out, names: S.Conv(
            out, names, i[a["input"]], i[a["weight"]], i.get(a["bias"]), bn, conv, epi), "conv2d")
        return None

    def lower_scale_shift(self, node, op):
        """A standalone batch_norm, add or activation: one epilogue pass."""
        a = op.args
        reason = _fastconv_tensor(a["input"])
        if reason:
            return reason
        i = self.index
        if op.in_place and a["input"].op == "placeholder":
            return "writes into a graph input (runs on torch, which owns that memory)"
        bn, detail, head_role = None, op.kind, "act"
        if op.kind == "batch_norm":
            reason = self._eval_batch_norm_reason(op)
            if reason:
                return reason
            bn, detail, head_role = self._bn_sources(op), "batch_norm as per-channel scale + shift", None
        elif op.kind == "add":
            if self._residual(op, a["input"]) is not a["other"]:
                return "add with broadcasting, alpha or mixed dtypes"
            head_role = "add"
        elif _has_node(*(v for k, v in a.items() if k != "input")):
            return f"{op.kind} with computed bounds"
        # an in-place head writes into memory others may still read: nothing is fused after it
        chain = [] if op.in_place else _prefix_roles(self._follow(node, allow_bn=False), {head_role})
        epi = self._epilogue(([(node, head_role, op)] if head_role else []) + chain)
        epi.residual = i[a["other"]] if head_role == "add" else self._residual_index(chain, node)
        self._emit_chain(node, chain, lambda out, names: S.ScaleShift(
            out, names, i[a["input"]], bn, epi, op.in_place), detail)
        return None

    def lower_pool(self, node, op):
        a = op.args
        reason = _fastconv_tensor(a["input"], 4)
        if reason:
            return reason
        if _has_node(*(v for k, v in a.items() if k != "input")):
            return f"{op.kind} with computed arguments"
        x, i = self.index[a["input"]], self.index[node]
        if op.kind == "max_pool2d":
            if a["return_indices"]:
                return "max_pool2d with return_indices (runs on torch)"
            step = S.MaxPool(i, [node.name], x, (a["kernel_size"], a["stride"], a["padding"], a["dilation"],
                                                  a["ceil_mode"]))
        elif op.kind == "avg_pool2d":
            step = S.AvgPool(i, [node.name], x, (a["kernel_size"], a["stride"], a["padding"], a["ceil_mode"],
                                                  a["count_include_pad"], a["divisor_override"]))
        else:
            step = S.AdaptiveAvgPool(i, [node.name], x, a["output_size"])
        self._emit_chain(node, [], lambda out, names: step, op.kind)
        return None

    def lower_linear(self, node, op):
        a = op.args
        reason = (_fastconv_tensor(a["input"]) or _fastconv_tensor(a["weight"], 2)
                  or (a["bias"] is not None and _fastconv_tensor(a["bias"])))
        if reason:
            return reason
        chain = [c for c in self._follow(node, allow_bn=False) if c[1] == "act"][:1]
        chain = chain if chain and chain[0][0] is self._sole_user(node) else []
        i = self.index
        epi = self._epilogue(chain)
        self._emit_chain(node, chain, lambda out, names: S.Linear(
            out, names, i[a["input"]], i[a["weight"]], i.get(a["bias"]), epi),
            "linear (fastconv's streaming kernel for a few rows through a big weight, else torch's GEMM)")
        return None

    def lower_view(self, node, op):
        a = op.args
        if op.kind == "dropout":
            if a["training"] is not False:
                return "dropout in training mode (runs on torch)"
            step = S.View(self.index[node], [node.name], self.index[a["input"]])
            detail = "dropout in eval: the input itself"
        else:
            if _has_node(a["start_dim"], a["end_dim"]) or not isinstance(a["input"], torch.fx.Node):
                return "flatten with computed dims"
            step = S.View(self.index[node], [node.name], self.index[a["input"]], a["start_dim"], a["end_dim"])
            detail = "flatten (a view, no copy)"
        self._emit_chain(node, [], lambda out, names: step, detail)
        return None

    def lower_cat(self, node, op):
        tensors, dim = op.args["tensors"], op.args["dim"]
        if not isinstance(tensors, (list, tuple)) or _has_node(dim):
            return "cat of a computed list"
        for t in tensors:
            reason = _fastconv_tensor(t)
            if reason:
                return reason
        if len({_meta(t).dtype for t in tensors}) != 1:
            return "cat of mixed dtypes"
        step = S.Cat(self.index[node], [node.name], [self.index[t] for t in tensors], dim)
        self._emit_chain(node, [], lambda out, names: step, "cat into the plan's buffer")
        return None

    # ------------------------------------------------------------ the walk

    def run(self):
        lowerers = {"conv2d": self.lower_conv, "batch_norm": self.lower_scale_shift, "add": self.lower_scale_shift,
                    "max_pool2d": self.lower_pool, "avg_pool2d": self.lower_pool,
                    "adaptive_avg_pool2d": self.lower_pool, "linear": self.lower_linear,
                    "flatten": self.lower_view, "dropout": self.lower_view, "cat": self.lower_cat}
        lowerers.update({k: self.lower_scale_shift for k in _ACTIVATIONS})
        placeholders, output = [], None
        for node in self.nodes:
            i = self.index[node]
            if node in self.deferred:
                self.steps.append(self.deferred.pop(node))
                continue
            if node in self.fused:
                continue
            if node.op == "placeholder":
                placeholders.append(i)
            elif node.op == "output":
                output = torch.fx.node.map_arg(node.args[0], lambda n: S._Ref(self.index[n]))
            elif node.op == "get_attr":
                self.steps.append(S.Constant(i, [node.name], _get_attr(self.gm, node.target)))
            else:
                op = recognise(node)
                reason = lowerers[op.kind](node, op) if op is not None else f"no fastconv kernel for {describe(node)}"
                if reason:
                    self._fallback(node, reason)
        return Lowered(self.steps, len(self.nodes), placeholders, output, self.decisions)

    def _fallback(self, node, reason):
        module = self.gm.get_submodule(node.target) if node.op == "call_module" else None
        self.steps.append(S.Torch(self.index[node], [node.name], node, self.index, module))
        self.decisions.append(Decision(node.name, describe(node), "torch", reason))


def _prefix_roles(chain, taken):
    """chain without the roles already taken by the head, cut at the first such node."""
    out = []
    for c in chain:
        if c[1] in taken:
            break
        out.append(c)
    return out


def _role_text(role, op):
    if role == "bn":
        return "batch_norm folded into weight and bias"
    if role == "add":
        return "residual add"
    return op.kind


def _get_attr(gm, target):
    obj = gm
    for part in target.split("."):
        obj = getattr(obj, part)
    return obj


def lower(gm):
    """The steps and decisions for graph module gm (every node runs somewhere)."""
    return _Lowering(gm).run()


def all_on_torch(gm, reason):
    """Decisions for a graph that runs entirely on torch (gm itself is called)."""
    return [Decision(n.name, describe(n), "torch", reason) for n in gm.graph.nodes
            if n.op in ("call_function", "call_method", "call_module")]
