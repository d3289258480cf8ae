"""Feature maps: what each layer's units output for given images (the lecture's VGG-16
activation pictures), all requested layers from one forward pass."""
from __future__ import annotations

from fastconv import nn
from fastconv.interpret._engine import Tape, check_images, check_model
from fastconv.device import to_host

_NONLINEAR = (nn.ReLU, nn.Sigmoid, nn.Tanh)


def activation_end(model, name):
    """One past the leaf whose output is `name`'s activation: a Conv2d or Linear followed
    directly by a ReLU/Sigmoid/Tanh is read after that non-linearity."""
    end = model.end_index(name)
    leaves = model.leaves()
    if isinstance(leaves[end - 1][1], (nn.Conv2d, nn.Linear)) and end < len(leaves) \
            and isinstance(leaves[end][1], _NONLINEAR):
        end += 1
    return end


def conv_layer_names(model):
    """The leaves that are Conv2d layers, in order (the one list of them)."""
    return [name for name, layer in model.leaves() if isinstance(layer, nn.Conv2d)]


def spatial_layer_names(model):
    """The leaves whose outputs are (N, C, h, w) maps: every leaf before the first Flatten."""
    names = []
    for name, layer in model.leaves():
        if isinstance(layer, nn.Flatten):
            break
        names.append(name)
    return names


def feature_maps(model, images, layers=None):
    """feature_maps(model, images, layers=None) -> {layer name: (N, C, h, w) float numpy array}.

    Each map is the layer's output after its non-linearity (a conv followed by a ReLU is read
    after the ReLU), from one forward pass over images (N, C, H, W). layers: a name, a list of
    names, or None for every Conv2d. Arrays come back on the host."""
    model = check_model(model)
    if layers is None:
        layers = conv_layer_names(model)
    elif isinstance(layers, str):
        layers = [layers]
    layers = list(layers)
    if not layers:
        raise ValueError("layers must name at least one layer")
    x = check_images(model, images)
    ends = {name: activation_end(model, name) for name in layers}
    leaves = model.leaves()
    tape = Tape(model)
    _, kept = tape.forward(x, stop=max(ends.values()), keep={leaves[e - 1][0] for e in ends.values()})
    return {name: to_host(kept[leaves[e - 1][0]]) for name, e in ends.items()}
