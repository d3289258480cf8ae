"""Saving and loading weights: safetensors (default) or .npz with allow_pickle=False. Never pickle.

Weight files are untrusted input. Loading never executes code (no pickle anywhere), checks every
tensor's dtype and declared size before reading its data, and turns whatever the file format's
library raises about a corrupt file into a ValueError that names the file and the problem.
"""
from __future__ import annotations

import math
import os

import numpy as np

from fastconv.nn.module import Module

# the dtypes fastconv computes in; anything else in a weight file is refused, not converted
WEIGHT_DTYPES = {"F32": np.dtype(np.float32), "F64": np.dtype(np.float64)}
_NPY_HEADER_READERS = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}


class WeightFileError(ValueError):
    """A weight file that is corrupt, truncated or holds something other than float tensors;
    the message starts with the file's path."""


def _state(obj):
    if isinstance(obj, Module):
        return obj.state_dict()
    return {k: np.asarray(v) for k, v in dict(obj).items()}


def save(model_or_state, path, metadata=None):
    """Write a model's parameters (or a {name: array} dict) to path: .npz -> numpy archive,
    anything else -> safetensors, whose header also keeps `metadata` ({str: str}, e.g. the
    model's name, so the command line can rebuild the right net; .npz has no place for it)."""
    state = {k: np.ascontiguousarray(v) for k, v in _state(model_or_state).items()}
    path = os.fspath(path)
    if path.endswith(".npz"):
        np.savez(path, **state)
    else:
        from safetensors.numpy import save_file
        save_file(state, path, metadata={**(metadata or {}), "format": "fastconv"})
    return path


def load(path, model=None):
    """The {name: numpy array} stored at path; with model, load it into the model (strict key
    and shape checks) and return the model. A corrupt, truncated or non-float file raises
    ValueError naming the file; a missing one FileNotFoundError."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such weight file")
    state = _read_npz(path) if path.endswith(".npz") else _read_safetensors(path)
    if model is None:
        return state
    try:
        return model.load_state_dict(state)
    except (KeyError, ValueError) as e:
        raise WeightFileError(f"{path}: {e}") from None


def load_into(model, path):
    return load(path, model)


def _bad_dtype(path, name, dtype):
    return WeightFileError(f"{path}: tensor {name!r} has dtype {dtype}; weights must be float32 or float64")


def _read_safetensors(path):
    from safetensors import SafetensorError, safe_open

    try:
        # safe_open validates the header against the file size (offsets, shape overflow)
        # before any tensor is read
        with safe_open(path, framework="np") as f:
            names = list(f.keys())
            for name in names:
                dtype = f.get_slice(name).get_dtype()
                if dtype not in WEIGHT_DTYPES:
                    raise _bad_dtype(path, name, dtype)
            return {name: f.get_tensor(name) for name in names}
    except (SafetensorError, OSError) as e:
        raise WeightFileError(f"{path}: not a valid safetensors file ({e})") from None


def _read_npz(path):
    try:
        with np.load(path, allow_pickle=False) as archive:
            for name in archive.files:
                _check_npy_member(path, archive.zip, name)
            return {name: archive[name] for name in archive.files}
    except (WeightFileError, MemoryError):
        raise
    except Exception as e:  # noqa: BLE001 - whatever zipfile / zlib / numpy raise on a malformed
        # archive (BadZipFile, zlib.error, EOFError, ValueError, but also NotImplementedError for
        # unknown zip flags, RuntimeError for encrypted members: found by fuzz/fuzz_weights.py)
        raise WeightFileError(f"{path}: not a valid .npz weight file ({type(e).__name__}: {e})") from None


def _check_npy_member(path, zf, name):
    """Dtype and declared size of one archive member, from its .npy header, before numpy
    allocates the array (a header can claim terabytes the file does not hold)."""
    member = name + ".npy"
    if member not in zf.namelist():
        raise WeightFileError(f"{path}: archive member {name!r} is not a .npy array")
    with zf.open(member) as f:
        version = np.lib.format.read_magic(f)
        if version not in _NPY_HEADER_READERS:
            raise WeightFileError(f"{path}: tensor {name!r} has unsupported .npy format version {version}")
        shape, _, dtype = _NPY_HEADER_READERS[version](f, max_header_size=10_000)
        header_len = f.tell()
    if dtype not in WEIGHT_DTYPES.values():
        raise _bad_dtype(path, name, dtype)
    declared = math.prod(shape) * dtype.itemsize
    held = zf.getinfo(member).file_size - header_len
    if declared != held:
        raise WeightFileError(f"{path}: tensor {name!r} declares shape {shape} ({declared} bytes) but the "
                         f"archive holds {held} bytes for it (truncated or corrupt)")
