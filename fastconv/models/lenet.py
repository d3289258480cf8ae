"""LeNet-5 (LeCun et al. 1998) as the lecture draws it: 1x32x32 input, C1 conv 5x5 -> 6,
S2 subsampling, C3 conv 5x5 -> 16, S4 subsampling, then 400 -> 120 -> 84 -> classes.
forward() returns logits (train with CrossEntropyLoss); predict_proba() is the softmax output."""
from __future__ import annotations

from collections import OrderedDict

from fastconv import nn

_ACTIVATIONS = {"sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "relu": nn.ReLU}
_POOLS = {"avg": nn.AvgPool2d, "max": nn.MaxPool2d}


def lenet5(activation="sigmoid", pool="avg", num_classes=10, in_channels=1, *, seed=None):
    """Layer names follow torch convention: features.0 (C1), features.3 (C3), classifier.0/2/4.
    activation: 'sigmoid' (1998 squashing) | 'tanh' | 'relu'; pool: 'avg' (subsampling) | 'max'."""
    if activation not in _ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(_ACTIVATIONS)}, got {activation!r}")
    if pool not in _POOLS:
        raise ValueError(f"pool must be one of {sorted(_POOLS)}, got {pool!r}")
    if seed is not None:
        nn.manual_seed(seed)
    act, pl = _ACTIVATIONS[activation], _POOLS[pool]
    features = nn.Sequential(
        nn.Conv2d(in_channels, 6, 5), act(), pl(2, 2),   # 32x32 -> 28x28 -> 14x14
        nn.Conv2d(6, 16, 5), act(), pl(2, 2),            # 14x14 -> 10x10 -> 5x5
    )
    classifier = nn.Sequential(
        nn.Linear(16 * 5 * 5, 120), act(),
        nn.Linear(120, 84), act(),
        nn.Linear(84, num_classes),
    )
    return nn.Sequential(OrderedDict(features=features, flatten=nn.Flatten(), classifier=classifier))
