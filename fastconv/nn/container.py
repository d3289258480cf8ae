"""Sequential: runs its layers in order, and can stop at / backpropagate from any named layer
(feature maps and saliency for fastconv.interpret need exactly that).

A ReLU directly followed by a MaxPool2d runs as max-pool then ReLU: ReLU is monotone, so
relu(max(window)) = max(relu(window)) for every window (NaN included: both propagate it), and
the ReLU then touches a quarter of the values (2x2 pooling). The backward is exact too: where the
window's maximum is positive both orders route the gradient to the same first maximum (ReLU only
changes values <= 0); where it is <= 0 (or NaN) both give zero, since relu_backward passes a
gradient only where its output is > 0. Only forward(x, until=...) and backward(...) of the
chain do this; forward_with_activations, which returns the ReLU's own output, runs layer by layer.

In inference (fastconv.nn.no_grad()) a Conv2d directly followed by a ReLU runs as one native
call, the ReLU in the conv's output pass (Conv2d.forward_relu), unless forward stops at the conv
(until=): AlexNet's and VGG-16's convs then write their outputs once. Training runs them in turn:
the ReLU's backward needs its own output."""
from __future__ import annotations

from collections import OrderedDict

from fastconv import functional as F
from fastconv.device import to_host
from fastconv.nn.grad_mode import is_grad_enabled
from fastconv.nn.layers import Conv2d, MaxPool2d, ReLU
from fastconv.nn.module import Module


class Sequential(Module):
    """Sequential(layer, ...) names children "0", "1", ...; Sequential(OrderedDict) keeps the
    given names. Nested Sequentials are flattened into one chain of leaf layers whose dotted
    names ("features.10") address them in forward(until=...) and backward_from(...)."""

    def __init__(self, *layers):
        super().__init__()
        if len(layers) == 1 and isinstance(layers[0], (dict, OrderedDict)):
            items = layers[0].items()
        else:
            items = ((str(i), m) for i, m in enumerate(layers))
        for name, m in items:
            if not isinstance(m, Module):
                raise TypeError(f"Sequential children must be Modules, got {type(m).__name__} for {name!r}")
            setattr(self, name, m)
        self._chain = None
        self._swappable = None  # indices i of chain where (ReLU, MaxPool2d) = chain[i], chain[i + 1]
        self._fusable = None  # indices i of chain where (Conv2d, ReLU) = chain[i], chain[i + 1]
        self._swapped = frozenset()  # the pairs the last forward ran as max-pool then ReLU
        self._ran = 0  # leaves run by the last forward

    def __getitem__(self, key):
        if isinstance(key, int):
            return list(self._modules.values())[key]
        return self._modules[key]

    def __len__(self):
        return len(self._modules)

    def append(self, module, name=None):
        setattr(self, name or str(len(self._modules)), module)
        self._chain = self._swappable = self._fusable = None
        return self

    def leaves(self):
        """[(dotted name, layer)] in execution order; nested Sequentials expanded."""
        if self._chain is None:
            chain = []
            for name, m in self._modules.items():
                if isinstance(m, Sequential):
                    chain.extend((f"{name}.{n}", leaf) for n, leaf in m.leaves())
                else:
                    chain.append((name, m))
            self._chain = chain
        return self._chain

    def _swappable_pairs(self):
        """Indices i where chain[i] is a ReLU and chain[i + 1] a MaxPool2d (exact classes: a
        subclass may compute something else)."""
        if self._swappable is None or self._chain is None:
            chain = self.leaves()
            self._swappable = frozenset(i for i in range(len(chain) - 1)
                                        if type(chain[i][1]) is ReLU and type(chain[i + 1][1]) is MaxPool2d)
        return self._swappable

    def _fusable_pairs(self):
        """Indices i where chain[i] is a Conv2d and chain[i + 1] a ReLU (exact classes)."""
        if self._fusable is None or self._chain is None:
            chain = self.leaves()
            self._fusable = frozenset(i for i in range(len(chain) - 1)
                                      if type(chain[i][1]) is Conv2d and type(chain[i + 1][1]) is ReLU)
        return self._fusable

    def end_index(self, name):
        """Index one past the last leaf that is `name` or lies inside it (the one lookup of a
        layer name: forward(until=...), backward_from and fastconv.interpret use it)."""
        if not isinstance(name, str):
            raise TypeError(f"layer must be a layer name (str), got {type(name).__name__}")
        chain = self.leaves()
        hits = [i for i, (n, _) in enumerate(chain) if n == name or n.startswith(name + ".")]
        if not hits:
            raise ValueError(f"unknown layer {name!r}; layers: {[n for n, _ in chain]}")
        return hits[-1] + 1

    def forward(self, x, until=None):
        """Output of the whole chain, or of layer `until` (its activation) when given."""
        chain = self.leaves()
        end = len(chain) if until is None else self.end_index(until)
        pairs, swapped, i = self._swappable_pairs(), [], 0
        fused = frozenset() if is_grad_enabled() else self._fusable_pairs()
        while i < end:
            if i in fused and i + 1 < end:  # Conv2d, ReLU in one call (inference; see the module doc)
                x = chain[i][1].forward_relu(x)
                chain[i + 1][1]._y = None  # saved nothing, as its own forward under no_grad
                i += 2
            elif i in pairs and i + 1 < end:  # ReLU, MaxPool2d -> MaxPool2d, ReLU (see the module doc)
                x = chain[i][1].forward(chain[i + 1][1].forward(x))
                swapped.append(i)
                i += 2
            else:
                x = chain[i][1].forward(x)
                i += 1
        self._ran, self._swapped = end, frozenset(swapped)
        return x

    def forward_with_activations(self, x, names):
        """(output, {name: activation}) for each layer name in names, in one pass."""
        chain = self.leaves()
        ends = {self.end_index(n): n for n in names}
        acts = {}
        for i, (_, layer) in enumerate(chain):
            x = layer.forward(x)
            if i + 1 in ends:
                for n in names:
                    if self.end_index(n) == i + 1:
                        acts[n] = x
        self._ran, self._swapped = len(chain), frozenset()
        return x, acts

    def backward(self, grad_output, need_input_grad=True):
        """Backpropagate from the output of the last forward to the input; parameter
        gradients accumulate. need_input_grad=False skips the first layer's input gradient
        (training never needs d loss / d image, and that conv is not free)."""
        return self._backward(self._ran, grad_output, need_input_grad)

    def backward_from(self, name, grad_output, need_input_grad=True):
        """Backpropagate grad_output, taken as the gradient of layer `name`'s output, to the
        input (saliency: d activation / d image). The forward must have run through `name`."""
        end = self.end_index(name)
        if end > self._ran:
            raise RuntimeError(f"layer {name!r} was not reached by the last forward; run forward first")
        return self._backward(end, grad_output, need_input_grad)

    def _backward(self, end, g, need_input_grad):
        if end == 0:
            raise RuntimeError("backward called before forward")
        chain, swapped = self.leaves(), self._swapped
        if end - 1 in swapped:
            raise RuntimeError(f"layer {chain[end - 1][0]!r} is a ReLU that the last forward ran after the "
                               f"max-pool {chain[end][0]!r}; run forward(x, until={chain[end - 1][0]!r}) before "
                               "backpropagating from it")
        i = end - 1
        while i >= 0:
            if i - 1 in swapped:  # chain[i] is the max-pool of a swapped pair: ReLU's backward first
                g = chain[i][1].backward(chain[i - 1][1].backward(g), need_input_grad=need_input_grad or i > 1)
                i -= 2
            else:
                g = chain[i][1].backward(g, need_input_grad=need_input_grad or i > 0)
                i -= 1
        return g

    def predict_proba(self, x):
        """Softmax over the logits: the network's inference output."""
        return F.softmax(self.forward(x), 1)

    def predict(self, x):
        return to_host(self.forward(x)).argmax(axis=1)
