"""MNIST from the standard IDX files (gzipped or not), with magic-number and size checks."""
from __future__ import annotations

import gzip
import math
import os
import urllib.request
import zlib

import numpy as np

_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
MIRRORS = ("https://ossci-datasets.s3.amazonaws.com/mnist/",
           "https://storage.googleapis.com/cvdf-datasets/mnist/")
_MAGIC = {3: 0x00000803, 1: 0x00000801}  # ubyte data, 3-D images / 1-D labels
MAX_IDX_BYTES = 1 << 31  # 2 GiB, 45x MNIST's training images: what a crafted header may ask for


def default_cache():
    return os.path.join(os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "fastconv", "mnist")


def read_idx(path, ndim):
    """The uint8 array stored in an IDX file; ValueError naming the file if it is not a valid
    ubyte IDX file of ndim dimensions or its payload is truncated/oversized. The payload is
    read only after the header is checked, and never more of it than the header declares
    (plus one byte, to detect oversized files): a gzip bomb cannot make it inflate more."""
    opener = gzip.open if str(path).endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            header = f.read(4 + 4 * ndim)
            dims = _check_idx_header(path, header, ndim)
            expected = math.prod(dims)
            payload = f.read(expected + 1)
    except (OSError, EOFError, zlib.error) as e:  # gzip raises these for corrupt/truncated streams
        raise ValueError(f"{path}: cannot read ({type(e).__name__}: {e})") from None
    if len(payload) != expected:
        raise ValueError(f"{path}: header declares {dims} = {expected} bytes of data, file holds "
                         f"{len(payload) if len(payload) <= expected else 'more'} (truncated or corrupt)")
    return np.frombuffer(payload, np.uint8).reshape(dims)


def _check_idx_header(path, header, ndim):
    """The dimensions an IDX header declares, after checking its length, magic and size."""
    if len(header) < 4 + 4 * ndim:
        raise ValueError(f"{path}: file too short for an IDX header ({len(header)} bytes)")
    magic = int.from_bytes(header[:4], "big")
    if magic != _MAGIC[ndim]:
        raise ValueError(f"{path}: bad magic number 0x{magic:08x}, expected 0x{_MAGIC[ndim]:08x} "
                         f"(ubyte, {ndim}-D)")
    dims = tuple(int.from_bytes(header[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    if math.prod(dims) > MAX_IDX_BYTES:
        raise ValueError(f"{path}: header declares {dims} = {math.prod(dims)} bytes, more than the "
                         f"{MAX_IDX_BYTES} an IDX file may hold here")
    return dims


def _find(root, name):
    for candidate in (name + ".gz", name):
        p = os.path.join(root, candidate)
        if os.path.exists(p):
            return p
    return None


def _download(root, name):
    os.makedirs(root, exist_ok=True)
    dest = os.path.join(root, name + ".gz")
    errors = []
    for mirror in MIRRORS:
        try:
            with urllib.request.urlopen(mirror + name + ".gz", timeout=60) as r:
                data = r.read()
            tmp = dest + ".part"
            with open(tmp, "wb") as f:
                f.write(data)
            os.replace(tmp, dest)
            return dest
        except OSError as e:
            errors.append(f"{mirror}: {e}")
    raise OSError(f"could not download {name}: " + "; ".join(errors))


def mnist(root=None, split="test", download=False, dtype="uint8", pad=0):
    """(images (N, 1, 28+2*pad, 28+2*pad), labels (N,) int64) of the split 'train' | 'test'.
    dtype 'uint8' keeps raw pixels, 'float32' scales to [0, 1]. pad zero-pads each side
    (pad=2 gives LeNet-5's 32x32). download=True fetches missing files into root (default
    ~/.cache/fastconv/mnist)."""
    if split not in _FILES:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    if dtype not in ("uint8", "float32"):
        raise ValueError(f"dtype must be 'uint8' or 'float32', got {dtype!r}")
    root = os.fspath(root) if root is not None else default_cache()
    paths = []
    for name in _FILES[split]:
        p = _find(root, name)
        if p is None:
            if not download:
                raise FileNotFoundError(f"{name}[.gz] not found in {root}; pass download=True to fetch it")
            p = _download(root, name)
        paths.append(p)
    images = read_idx(paths[0], 3)
    labels = read_idx(paths[1], 1)
    if images.shape[0] != labels.shape[0]:
        raise ValueError(f"{paths[0]} holds {images.shape[0]} images but {paths[1]} holds {labels.shape[0]} labels")
    if images.shape[1:] != (28, 28):
        raise ValueError(f"{paths[0]}: images are {images.shape[1:]}, expected (28, 28)")
    if labels.size and labels.max() > 9:
        raise ValueError(f"{paths[1]}: label {labels.max()} outside 0..9")
    images = images[:, None]
    if pad:
        images = np.pad(images, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    if dtype == "float32":
        images = images.astype(np.float32) / np.float32(255)
    else:
        images = np.ascontiguousarray(images)
    return images, labels.astype(np.int64)
