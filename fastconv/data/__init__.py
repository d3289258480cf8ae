"""Datasets (MNIST from IDX files, scikit-learn's embedded digits) and a batch iterator."""
from fastconv.data.digits import digits, resize_bilinear
from fastconv.data.images import load_image
from fastconv.data.loader import DataLoader
from fastconv.data.mnist import mnist, read_idx

__all__ = ["DataLoader", "digits", "load_image", "mnist", "read_idx", "resize_bilinear"]
