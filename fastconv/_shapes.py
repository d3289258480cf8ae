"""The layer shapes fastconv is measured and tested on, in one place: bench/ times them against
PyTorch and tests/ checks the kernels on (scaled-down versions of) them, so a shape the
benchmarks report on is never missing from the tests.

ConvShape.name is how every table names the layer, e.g. "conv4_2 512->512 @28 N=1".
"""
from __future__ import annotations

from typing import NamedTuple


class ConvShape(NamedTuple):
    name: str
    batch: int
    in_channels: int
    out_channels: int
    size: int        # square input height = width
    kernel: int = 3
    padding: int = 1

    @property
    def input_shape(self):
        return (self.batch, self.in_channels, self.size, self.size)

    @property
    def weight_shape(self):
        return (self.out_channels, self.in_channels, self.kernel, self.kernel)

    @property
    def out_size(self):
        return self.size + 2 * self.padding - self.kernel + 1

    @property
    def flops(self):
        """Direct-convolution FLOPs of the forward pass (2 per multiply-add)."""
        return 2.0 * self.batch * self.out_channels * self.in_channels * self.kernel ** 2 * self.out_size ** 2

    @property
    def label(self):
        return f"{self.name} {self.in_channels}->{self.out_channels} @{self.size} N={self.batch}"


# VGG-16's nine distinct 3x3 layers (name, C, K, input size at a 224x224 image); conv5_x is
# the three identical 512->512 layers at 14x14.
VGG16_3X3 = (("conv1_1", 3, 64, 224), ("conv1_2", 64, 64, 224), ("conv2_1", 64, 128, 112),
             ("conv2_2", 128, 128, 112), ("conv3_1", 128, 256, 56), ("conv3_2", 256, 256, 56),
             ("conv4_1", 256, 512, 28), ("conv4_2", 512, 512, 28), ("conv5_x", 512, 512, 14))


# VGG-16's thirteen 3x3 convolutions in execution order (names from VGG16_3X3).
VGG16_ORDER = ("conv1_1", "conv1_2", "conv2_1", "conv2_2", "conv3_1", "conv3_2", "conv3_2", "conv4_1", "conv4_2",
               "conv4_2", "conv5_x", "conv5_x", "conv5_x")


def vgg16_convs(batch: int, image: int = 224):
    """VGG-16's nine 3x3 layers for a batch of image x image inputs (map sizes scale with the
    image and round down: at 56 the deepest maps are 7x7 and 3x3)."""
    return [ConvShape(name, batch, c, k, size * image // 224) for name, c, k, size in VGG16_3X3]


# The 18 shapes issue 9 measures: batch 1 at 224x224, and batch 8 at 56x56 (7x7 and 3x3 maps).
ISSUE_SHAPES = vgg16_convs(1, 224) + vgg16_convs(8, 56)

# LeNet-5's two 5x5 convolutions (valid padding) at the training batch of 64.
LENET_CONVS = [ConvShape("lenet_c1", 64, 1, 6, 32, kernel=5, padding=0),
               ConvShape("lenet_c3", 64, 6, 16, 14, kernel=5, padding=0)]

# VGG-16's five 2x2 max-pool inputs (name, channels, size at a 224x224 image).
VGG16_POOLS = (("pool1", 64, 224), ("pool2", 128, 112), ("pool3", 256, 56), ("pool4", 512, 28),
               ("pool5", 512, 14))
