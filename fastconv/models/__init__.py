"""Classic CNNs built from fastconv.nn layers, with torch/torchvision parameter names."""
from fastconv.models.alexnet import alexnet
from fastconv.models.lenet import lenet5
from fastconv.models.vgg import CONFIGS as VGG_CONFIGS
from fastconv.models.vgg import vgg, vgg11, vgg13, vgg16, vgg19

__all__ = ["VGG_CONFIGS", "alexnet", "lenet5", "vgg", "vgg11", "vgg13", "vgg16", "vgg19"]
