"""VGG from configuration tables of blocks (in_channels, out_channels, num_convs): 3x3 convs
with padding 1 and ReLU, a 2x2/2 max-pool closing each block, torchvision's FC head and names."""
from __future__ import annotations

from collections import OrderedDict

from fastconv import nn

# Simonyan & Zisserman 2014, configurations A, B, D, E
CONFIGS = {
    "vgg11": ((3, 64, 1), (64, 128, 1), (128, 256, 2), (256, 512, 2), (512, 512, 2)),
    "vgg13": ((3, 64, 2), (64, 128, 2), (128, 256, 2), (256, 512, 2), (512, 512, 2)),
    "vgg16": ((3, 64, 2), (64, 128, 2), (128, 256, 3), (256, 512, 3), (512, 512, 3)),
    "vgg19": ((3, 64, 2), (64, 128, 2), (128, 256, 4), (256, 512, 4), (512, 512, 4)),
}


def _check_cfg(cfg):
    cfg = [tuple(int(v) for v in block) for block in cfg]
    if not cfg or any(len(b) != 3 or min(b) < 1 for b in cfg):
        raise ValueError(f"cfg must be a non-empty list of (in_channels, out_channels, num_convs), got {cfg}")
    for prev, cur in zip(cfg, cfg[1:]):
        if prev[1] != cur[0]:
            raise ValueError(f"cfg blocks do not chain: {prev} is followed by {cur}")
    return cfg


def vgg(cfg, in_channels=None, num_classes=1000, input_size=224, width_multiplier=1.0, hidden=None,
        dropout=0.5, *, seed=None):
    """A VGG-style net. in_channels overrides the first block's input channels; width_multiplier
    scales every block's output channels (and the FC hidden width, unless hidden is given).
    At input_size 224 the head is torchvision's (adaptive avg pool to 7x7, 25088 -> 4096 ->
    4096 -> classes); for smaller inputs the head flattens the final map directly."""
    cfg = _check_cfg(cfg)
    if seed is not None:
        nn.manual_seed(seed)
    if width_multiplier <= 0:
        raise ValueError(f"width_multiplier must be > 0, got {width_multiplier}")
    final = input_size // 2 ** len(cfg)
    if final < 1:
        raise ValueError(f"input_size {input_size} is too small for {len(cfg)} pooling blocks")
    layers = []
    c = cfg[0][0] if in_channels is None else int(in_channels)
    for _, out, n in cfg:
        out = max(1, int(round(out * width_multiplier)))
        for _ in range(n):
            layers += [nn.Conv2d(c, out, 3, padding=1), nn.ReLU()]
            c = out
        layers.append(nn.MaxPool2d(2, 2))
    hidden = hidden or max(1, int(round(4096 * width_multiplier)))
    parts = OrderedDict(features=nn.Sequential(*layers))
    if input_size == 224:
        parts["avgpool"] = nn.AdaptiveAvgPool2d(7)
        final = 7
    parts["flatten"] = nn.Flatten()
    parts["classifier"] = nn.Sequential(
        nn.Linear(c * final * final, hidden), nn.ReLU(), nn.Dropout(dropout),
        nn.Linear(hidden, hidden), nn.ReLU(), nn.Dropout(dropout),
        nn.Linear(hidden, num_classes),
    )
    return nn.Sequential(parts)


def vgg11(num_classes=1000, **kw):
    return vgg(CONFIGS["vgg11"], num_classes=num_classes, **kw)


def vgg13(num_classes=1000, **kw):
    return vgg(CONFIGS["vgg13"], num_classes=num_classes, **kw)


def vgg16(num_classes=1000, **kw):
    return vgg(CONFIGS["vgg16"], num_classes=num_classes, **kw)


def vgg19(num_classes=1000, **kw):
    return vgg(CONFIGS["vgg19"], num_classes=num_classes, **kw)
