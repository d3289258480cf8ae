"""Layers with forward and backward passes, losses, optimisers and LR schedules."""
from fastconv.nn.container import Sequential
from fastconv.nn.grad_mode import is_grad_enabled, no_grad
from fastconv.nn.init import manual_seed
from fastconv.nn.layers import (AdaptiveAvgPool2d, AvgPool2d, Conv2d, Dropout, Flatten, Identity, Linear,
                                MaxPool2d, ReLU, Sigmoid, Softmax, Tanh)
from fastconv.nn.losses import CrossEntropyLoss, MSELoss
from fastconv.nn.module import Module, Parameter
from fastconv.nn.optim import SGD, Adam
from fastconv.nn.schedule import CosineAnnealingLR, StepLR

__all__ = ["AdaptiveAvgPool2d", "Adam", "AvgPool2d", "Conv2d", "CosineAnnealingLR", "CrossEntropyLoss",
           "Dropout", "Flatten", "Identity", "Linear", "MSELoss", "MaxPool2d", "Module", "Parameter",
           "ReLU", "SGD", "Sequential", "Sigmoid", "Softmax", "StepLR", "Tanh", "is_grad_enabled", "manual_seed",
           "no_grad"]
