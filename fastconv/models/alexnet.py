"""AlexNet in torchvision's layout and parameter names (features.0 ... classifier.6)."""
from __future__ import annotations

from collections import OrderedDict

from fastconv import nn


def alexnet(num_classes=1000, dropout=0.5, *, seed=None):
    """224x224x3 input. The 6x6 adaptive average pool is the identity at 224 (as in torchvision)."""
    if seed is not None:
        nn.manual_seed(seed)
    features = nn.Sequential(
        nn.Conv2d(3, 64, 11, stride=4, padding=2), nn.ReLU(), nn.MaxPool2d(3, 2),
        nn.Conv2d(64, 192, 5, padding=2), nn.ReLU(), nn.MaxPool2d(3, 2),
        nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(),
        nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(),
        nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(), nn.MaxPool2d(3, 2),
    )
    classifier = nn.Sequential(
        nn.Dropout(dropout), nn.Linear(256 * 6 * 6, 4096), nn.ReLU(),
        nn.Dropout(dropout), nn.Linear(4096, 4096), nn.ReLU(),
        nn.Linear(4096, num_classes),
    )
    return nn.Sequential(OrderedDict(features=features, avgpool=nn.AdaptiveAvgPool2d(6),
                                     flatten=nn.Flatten(), classifier=classifier))
