"""Saving and loading weights: safetensors (default) or .npz with allow_pickle=False. Never pickle."""
from __future__ import annotations

import os

import numpy as np

from fastconv.nn.module import Module


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
    and shape checks) and return the model."""
    path = os.fspath(path)
    if path.endswith(".npz"):
        with np.load(path, allow_pickle=False) as z:
            state = {k: z[k] for k in z.files}
    else:
        from safetensors.numpy import load_file
        state = load_file(path)
    if model is None:
        return state
    return model.load_state_dict(state)


def load_into(model, path):
    return load(path, model)
