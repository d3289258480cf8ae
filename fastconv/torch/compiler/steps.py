"""The steps of an execution plan: each computes one graph value from earlier ones.

A step reads ``values[i]`` for i in ``reads`` and returns the tensor for ``values[out]``.
``allocates``: the step writes into a fresh buffer, which the plan hands it as ``out`` (from its
per-shape buffer set, or None on the first call for a shape, when the step allocates its own).
``aliases``: the values whose storage the result may share (in-place ops, views, torch ops that
may return a view); the memory plan keeps such storage alive as long as any alias of it.

fastconv steps call fastconv.functional on numpy views of the tensors (no copies: a CPU tensor
and its ``numpy()`` share memory), torch steps call the node's own torch function.
"""
from __future__ import annotations

import numpy as np
import torch
from torch.fx.node import map_aggregate

from fastconv import _cpu
from fastconv import functional as F
from fastconv._geometry import conv_geometry
from fastconv.torch.compiler import weights


def _np(t):
    # force=True: parameters require grad even under no_grad; on the CPU this copies nothing
    return t.numpy(force=True)


def _meta(a):
    """What fastconv.functional validates about an argument: its type, shape, dtype and strides.
    A step's kernels see the same signature on every call for one input shape (the plan's
    buffers, the prepared weights), so functional's checks (~10-40 us a call, more than a small
    layer's kernel: functional keeps no plan for calls with out=) run on the first call of each
    signature only, and later calls go to the CPU backend directly."""
    if a is None:
        return None
    if type(a) is np.ndarray:
        return (a.shape, a.dtype, a.strides)
    return (type(a), getattr(a, "weight_shape", None), getattr(a, "dtype", None), getattr(a, "tile", None),
            getattr(a, "groups", None))


class Epilogue:
    """What runs in one pass after a producer: bias / BN scale and shift, a residual add and an
    activation (functional.epilogue's arguments, with value indices for the residual)."""

    def __init__(self, activation=None, min_val=-1.0, max_val=1.0, residual=None, residual_after_activation=False):
        self.activation = activation
        self.min_val, self.max_val = min_val, max_val
        self.residual = residual  # a value index or None
        self.residual_after_activation = residual_after_activation
        self._checked = set()  # argument signatures functional.epilogue accepted (see _meta)
        self._kernel_args = None

    def empty(self):
        return self.activation is None and self.residual is None

    def reads(self):
        return () if self.residual is None else (self.residual,)

    def fused_kwargs(self, values, y):
        """The output-epilogue arguments of a native conv call writing y (which then adds the
        bias itself), or None where this epilogue cannot run inside it (a residual that is not a
        C-contiguous array of y's shape and dtype, or before apply has validated it once)."""
        if self._kernel_args is None:
            return None
        residual = None
        if self.residual is not None:
            residual = _np(values[self.residual])
            if residual.shape != y.shape or residual.dtype != y.dtype or not residual.flags.c_contiguous:
                return None
        act, bounds = self._kernel_args
        return _cpu.conv_epilogue_kwargs(act, bounds, residual, self.residual_after_activation)

    def apply(self, values, y, scale, bias, out):
        """The pass over the array y into out (y itself for in place; None: a new array)."""
        residual = None if self.residual is None else _np(values[self.residual])
        key = (_meta(y), _meta(scale), _meta(bias), _meta(residual), _meta(out), out is y)
        if key in self._checked:
            act, bounds = self._kernel_args
            return _cpu.epilogue(y, scale, bias, residual, act, self.residual_after_activation, bounds, out)
        result = F.epilogue(y, scale, bias, residual, activation=self.activation,
                            residual_after_activation=self.residual_after_activation,
                            min_val=self.min_val, max_val=self.max_val, out=out)
        if type(y) is np.ndarray and y.size:
            act, bounds = F._EPILOGUE_ACTIVATIONS[self.activation]
            if self.activation == "hardtanh":
                bounds = (float(self.min_val), float(self.max_val))
            self._kernel_args = (act, bounds)
            self._checked.add(key)
        return result


class Step:
    reads = ()
    aliases = ()
    allocates = False

    def __init__(self, out, nodes):
        self.out = out
        self.nodes = nodes  # the fx node names this step computes (more than one when fused)

    def run(self, values, out):
        raise NotImplementedError


class Conv(Step):
    """conv2d (+ a folded eval BatchNorm) + its epilogue, into one buffer."""
    allocates = True

    def __init__(self, out, nodes, x, weight, bias, bn, conv, epilogue):
        """bn: (running_mean, running_var, weight, bias) value indices (None for absent ones)
        and eps, or None; conv: (stride, padding, dilation, groups)."""
        super().__init__(out, nodes)
        self.x, self.weight, self.bias = x, weight, bias
        self.bn_sources, self.eps = (bn[:4], bn[4]) if bn is not None else ((), None)
        self.conv = conv
        self.epilogue = epilogue
        self.reads = tuple(i for i in (x, weight, bias, *self.bn_sources) if i is not None) + epilogue.reads()
        self._tiles = {}     # input shape -> Winograd tile (or None: direct) with kept transformed weights
        self._prepared = {}  # tile -> weights.Derived
        self._checked = {}   # argument signature functional.conv2d accepted (_meta) -> its kernel call
        self._out_shapes = {}  # the same signature -> the output's shape (for calls without out)
        self._packed = {}    # (signature, bias added) -> (w, its prepacked forward weights or None)
        self._fast = None    # the last validated call, replayed while its signature holds (_replay)

    def _tile(self, shape, weight_shape):
        tile = self._tiles.get(shape)
        if tile is None and shape not in self._tiles:
            algorithm = F.conv2d_algorithm(shape, weight_shape, *self.conv, weights_reused=True)
            tile = int(algorithm[-1]) if algorithm.startswith("winograd") else None
            self._tiles[shape] = tile
        return tile

    def _prepare(self, tile):
        eps, groups = self.eps, self.conv[3]

        def derive(weight, bias, *bn):
            w, b = weights.folded_conv(weight, bias, None if not bn else (*bn, eps))
            return weights.winograd_or_plain(w, tile, groups), b
        return weights.Derived(derive)

    def run(self, values, out):
        fast = self._fast
        if fast is not None:
            y = fast(values, out)
            if y is not None:
                return y
        return self._run(values, out)

    def _replay(self, x, prepared, w, bias_arg, runner, y, fused, packed):
        """A call that repeats this validated one with nothing re-derived while it applies (~5 us
        a step instead of _run's ~7.5, measured with the kernel stubbed out, on Zen 4): the
        same input shape and dtype (contiguous), the same prepared weights (the sources
        unchanged), an out of the same signature or none, a residual of the output's signature.
        It answers None where any of that differs, and _run takes the call."""
        ix, x_shape, x_dtype = self.x, x.shape, x.dtype
        y_shape, y_dtype = y.shape, y.dtype
        residual_index = self.epilogue.residual if fused is not None else None
        fused_static = None if fused is None else {k: v for k, v in fused.items() if k != "residual"}
        weight_index, bias_index, bn_sources = self.weight, self.bias, self.bn_sources
        apply_epilogue = not self.epilogue.empty() and fused is None
        if apply_epilogue or not isinstance(w, np.ndarray) and not isinstance(w, _cpu.WinogradWeights):
            return None

        def replay(values, out):
            x = values[ix]
            if x.shape != x_shape or x.dtype != x_dtype or not x.is_contiguous():
                return None
            srcs = [None if i is None else values[i] for i in bn_sources]
            got = prepared.get(values[weight_index], None if bias_index is None else values[bias_index], *srcs)
            if got[0] is not w:
                return None
            if out is None:
                yn = np.empty(y_shape, y_dtype)
            else:
                if out.shape != y_shape or out.dtype is not torch_dtype:
                    return None
                yn = out.numpy()
            epi = None
            if fused_static is not None:
                epi = fused_static
                if residual_index is not None:
                    r = values[residual_index]
                    if r.shape != y_shape or r.dtype is not torch_dtype or not r.is_contiguous():
                        return None
                    epi = dict(fused_static, residual=r.numpy())
            runner(x.numpy(), w, bias_arg, yn, epi, packed)
            return torch.from_numpy(yn) if out is None else out

        torch_dtype = torch.from_numpy(np.empty(0, y_dtype)).dtype
        return replay

    def _run(self, values, out):
        x = values[self.x]
        tile = self._tile(tuple(x.shape), tuple(values[self.weight].shape))
        prepared = self._prepared.get(tile) or self._prepared.setdefault(tile, self._prepare(tile))
        sources = [None if i is None else values[i] for i in self.bn_sources]
        w, b = prepared.get(values[self.weight], None if self.bias is None else values[self.bias], *sources)
        fuse = not self.epilogue.empty()
        xn, bias, outn = _np(x), None if fuse else b, None if out is None else _np(out)
        key = (_meta(xn), _meta(w), _meta(bias), _meta(outn))
        runner = self._checked.get(key)
        if runner is not None:
            y = outn if outn is not None else np.empty(self._out_shapes[key], xn.dtype)
            fused = self.epilogue.fused_kwargs(values, y) if fuse else None
            # fused: bias, activation and residual inside the conv's own call, no pass after it
            bias_arg = bias if fused is None else b
            packed = self._packed_weights(key, runner, xn, w, y, bias_arg is not None)
            runner(xn, w, bias_arg, y, fused, packed)
            if not x.requires_grad:
                self._fast = self._replay(x, prepared, w, bias_arg, runner, y, fused, packed)
            fuse = fuse and fused is None
        else:
            y = F.conv2d(xn, w, bias, *self.conv, out=outn)
            if xn.shape[0] > 0:  # (functional answers an empty batch itself)
                wshape = w.weight_shape if isinstance(w, _cpu.WinogradWeights) else w.shape
                geometry = conv_geometry(xn.shape, wshape, *self.conv)
                self._out_shapes[key] = y.shape  # (first: another thread may find the runner at once)
                self._checked[key] = _cpu.conv2d_runner(xn, w, geometry, "auto", y)
        if fuse:
            self.epilogue.apply(values, y, None, b, y)
        return torch.from_numpy(y) if out is None else out

    def _packed_weights(self, key, runner, x, w, y, bias):
        """The direct kernel's forward weights packed once per weight array, signature and bias
        (the panels every call would otherwise pack: 20-25% of a 512-channel layer at 7x7 or
        14x14 maps; memory: one more copy of the layer's weights). A new w (its parameters
        changed: weights.Derived made it again) is packed again; Winograd keeps its own."""
        if not getattr(runner, "packs_weights", False):
            return None
        kept = self._packed.get((key, bias))
        if kept is None or kept[0] is not w:
            kept = (w, _cpu.pack_forward_weights(x, w, conv_geometry(x.shape, w.shape, *self.conv), y, bias))
            self._packed[(key, bias)] = kept
        return kept[1]


class ScaleShift(Step):
    """A standalone eval BatchNorm (per-channel scale and shift), a tensor add or an activation:
    one functional.epilogue pass, into a fresh buffer or (in_place) into its input."""

    def __init__(self, out, nodes, x, bn, epilogue, in_place):
        super().__init__(out, nodes)
        self.x = x
        self.bn_sources, eps = (bn[:4], bn[4]) if bn is not None else ((), None)
        self._scale_shift = weights.Derived(lambda *s: weights.batch_norm_scale_shift(*s, eps)) if bn else None
        self.epilogue = epilogue
        self.in_place = in_place
        self.allocates = not in_place
        self.aliases = (x,) if in_place else ()
        self.reads = (x, *(i for i in self.bn_sources if i is not None)) + epilogue.reads()

    def run(self, values, out):
        x = values[self.x]
        scale = shift = None
        if self._scale_shift is not None:
            scale, shift = self._scale_shift.get(*(None if i is None else values[i] for i in self.bn_sources))
        if self.in_place:  # torch's semantics: the input itself is written
            if x.is_contiguous():
                self.epilogue.apply(values, _np(x), scale, shift, _np(x))
                return x
            return x.copy_(torch.from_numpy(self.epilogue.apply(values, _np(x), scale, shift, None)))
        y = self.epilogue.apply(values, _np(x), scale, shift, None if out is None else _np(out))
        return torch.from_numpy(y) if out is None else out


class MaxPool(Step):
    allocates = True

    def __init__(self, out, nodes, x, pool):
        super().__init__(out, nodes)
        self.x, self.pool, self.reads = x, pool, (x,)

    def run(self, values, out):
        y = F.max_pool2d(_np(values[self.x]), *self.pool, out=None if out is None else _np(out))
        return torch.from_numpy(y) if out is None else out


class AvgPool(MaxPool):
    def run(self, values, out):
        y = F.avg_pool2d(_np(values[self.x]), *self.pool, out=None if out is None else _np(out))
        return torch.from_numpy(y) if out is None else out


class AdaptiveAvgPool(Step):
    def __init__(self, out, nodes, x, output_size):
        super().__init__(out, nodes)
        self.x, self.output_size, self.reads = x, output_size, (x,)

    def run(self, values, out):
        return torch.from_numpy(F.adaptive_avg_pool2d(_np(values[self.x]), self.output_size))


class Linear(Step):
    """linear (+ bias + activation: the bias then joins the activation's pass). fastconv's own
    kernel where it has one (a few rows: fastconv._cpu.few_rows_linear), else torch's GEMM, which
    runs on the same OpenMP team as the fastconv kernels. fastconv's linear would hand those to
    numpy's BLAS, whose worker threads (OpenBLAS, pthreads) busy-wait for milliseconds after each
    call: beside torch's team that is one more spinning thread than there are cores (ResNet-18's
    512 -> 1000 head made every later step wait for a core: 0.53x eager at batch 1, issue 22)."""

    def __init__(self, out, nodes, x, weight, bias, epilogue):
        super().__init__(out, nodes)
        self.x, self.weight, self.bias, self.epilogue = x, weight, bias, epilogue
        self.reads = tuple(i for i in (x, weight, bias) if i is not None) + epilogue.reads()

    def run(self, values, out):
        x, w = values[self.x], values[self.weight]
        bias = None if self.bias is None else values[self.bias]
        fuse = not self.epilogue.empty()
        xn, wn, bn = _np(x), _np(w), None if bias is None else _np(bias)
        if _cpu.few_rows_linear(xn.reshape(-1, xn.shape[-1]), wn, None if fuse else bn):
            y = F.linear(xn, wn, None if fuse else bn)
        else:
            y = torch.nn.functional.linear(x, w, None if fuse else bias).numpy()
        if fuse:
            rows = y.reshape(-1, y.shape[-1])
            self.epilogue.apply(values, rows, None, bn, rows)
        return torch.from_numpy(y)


class Cat(Step):
    """torch.cat into the plan's buffer (the inputs' buffers are freed as soon as it ran)."""
    allocates = True

    def __init__(self, out, nodes, tensors, dim):
        super().__init__(out, nodes)
        self.tensors, self.dim, self.reads = tensors, dim, tuple(tensors)

    def run(self, values, out):
        parts = [values[i] for i in self.tensors]
        return torch.cat(parts, self.dim) if out is None else torch.cat(parts, self.dim, out=out)


class View(Step):
    """flatten (a view where torch can make one) or an eval dropout (the input itself)."""

    def __init__(self, out, nodes, x, start_dim=None, end_dim=None):
        super().__init__(out, nodes)
        self.x, self.dims = x, (start_dim, end_dim)
        self.reads = self.aliases = (x,)

    def run(self, values, out):
        x = values[self.x]
        return x if self.dims[0] is None else torch.flatten(x, *self.dims)


class Torch(Step):
    """Any other node, run by torch exactly as the graph says. Its result may be a view of any
    tensor argument, so it aliases all of them."""

    def __init__(self, out, nodes, node, index, module=None):
        super().__init__(out, nodes)
        self.reads = self.aliases = tuple(index[n] for n in node.all_input_nodes)
        ref = lambda a: _Ref(index[a]) if isinstance(a, torch.fx.Node) else a  # noqa: E731
        self.args = map_aggregate(node.args, ref)
        self.kwargs = map_aggregate(node.kwargs, ref)
        if node.op == "call_method":
            name = node.target
            self.fn = lambda *a, **k: getattr(a[0], name)(*a[1:], **k)
        else:
            self.fn = module if node.op == "call_module" else node.target

    def run(self, values, out):
        resolve = lambda a: values[a.index] if isinstance(a, _Ref) else a  # noqa: E731
        return self.fn(*map_aggregate(self.args, resolve), **map_aggregate(self.kwargs, resolve))


class _Ref:
    __slots__ = ("index",)

    def __init__(self, index):
        self.index = index


class Constant(Step):
    """A get_attr node: a tensor (or other attribute) of the graph module, read once."""

    def __init__(self, out, nodes, value):
        super().__init__(out, nodes)
        self.value = value

    def run(self, values, out):
        return self.value
