"""Maximally activating patches (Zeiler & Fergus 2014) for every channel of a layer at once.

One pass over the dataset in batches: each batch's activations are merged into a running
top-k per channel. Order: higher activation first, ties to the earlier unit (image, then
row-major position), so the result equals a full sort of all units. After the first batch a
unit can only enter if it beats the channel's current k-th score, so most batches touch only
a handful of candidates per channel.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fastconv._validate import positive_int
from fastconv.interpret._engine import Tape, check_images, check_model
from fastconv.interpret.activations import activation_end
from fastconv.interpret.receptive_field import receptive_field
from fastconv.device import to_host


@dataclass(frozen=True)
class TopPatches:
    """Per channel c and rank j (best first):
    scores (C, k) activations; indices (C, k) int64 image indices; positions (C, k, 2) (y, x)
    in the layer's map; boxes (C, k, 4) (top, left, bottom, right) of the unit's receptive
    field in the image, clipped at the border (bottom/right exclusive); patches
    (C, k, C_in, S, S) float32: each box cut from its image, placed where it lies in the
    unclipped S x S field (S = the receptive-field size), zeros outside the image."""
    layer: str
    scores: np.ndarray
    indices: np.ndarray
    positions: np.ndarray
    boxes: np.ndarray
    patches: np.ndarray


def _merge(run_scores, run_index, new_scores, new_index, k):
    scores = np.concatenate([run_scores, new_scores])
    index = np.concatenate([run_index, new_index])
    order = np.lexsort((index, -scores.astype(np.float64)))[:k]
    return scores[order], index[order]


def _check_k_batch(k, batch_size):
    positive_int(k, "k")
    positive_int(batch_size, "batch_size")


def top_patches(model, layer, images, k=9, batch_size=256):
    """top_patches(model, layer, images, k=9, batch_size=256) -> TopPatches.

    Streams images (N, C, H, W) (a numpy array or memmap, floating point) through the model in
    batches once and keeps the k strongest activations of every channel of `layer` (read
    after its non-linearity) over all images and positions."""
    model = check_model(model)
    _check_k_batch(k, batch_size)
    stop = activation_end(model, layer)
    if not hasattr(images, "shape") or len(images.shape) != 4 or images.shape[0] < 1:
        raise ValueError(f"images must be a non-empty (N, C, H, W) array, got {getattr(images, 'shape', images)!r}")
    n = images.shape[0]
    tape = Tape(model)
    run_scores = run_index = None
    unit_shape = None
    for lo in range(0, n, batch_size):
        acts = to_host(tape.forward(check_images(model, images[lo:lo + batch_size]), stop=stop))
        if acts.ndim != 4:
            raise ValueError(f"top_patches needs a spatial layer; {layer!r} has output shape {acts.shape}")
        b, channels, h, w = acts.shape
        if unit_shape is None:
            unit_shape = (channels, h, w)
            if k > n * h * w:
                raise ValueError(f"k must be <= the number of units per channel ({n * h * w}), got {k}")
            run_scores = [np.empty(0, acts.dtype)] * channels
            run_index = [np.empty(0, np.int64)] * channels
        flat = acts.transpose(1, 0, 2, 3).reshape(channels, -1)
        base = lo * h * w
        for c in range(channels):
            a = flat[c]
            if len(run_scores[c]) == k:
                cand = np.flatnonzero(a > run_scores[c][-1])
                if cand.size == 0:
                    continue
            else:
                cand = np.arange(a.size)
            if cand.size > k:  # the batch's own top-k first: at most k can survive the merge
                cand = cand[np.argsort(-a[cand], kind="stable")[:k]]
            run_scores[c], run_index[c] = _merge(run_scores[c], run_index[c], a[cand], base + cand, k)
    channels, h, w = unit_shape
    scores = np.stack(run_scores)
    flat_index = np.stack(run_index)
    indices, pos = np.divmod(flat_index, h * w)
    positions = np.stack(np.divmod(pos, w), axis=-1)
    return _with_patches(model, layer, stop, images, scores, indices, positions)


def _with_patches(model, layer, stop, images, scores, indices, positions):
    height, width = images.shape[2:]
    rf = receptive_field(model, (height, width))[stop - 1]
    s_h, s_w = rf.size
    channels, k = scores.shape
    boxes = np.zeros((channels, k, 4), np.int64)
    patches = np.zeros((channels, k, images.shape[1], s_h, s_w), np.float32)
    for c in range(channels):
        for j in range(k):
            y, x = positions[c, j]
            top, left, bottom, right = rf.box(y, x)
            ct, cl, cb, cr = rf.box(y, x, (height, width))
            boxes[c, j] = ct, cl, cb, cr
            if cb > ct and cr > cl:
                patches[c, j, :, ct - top:cb - top, cl - left:cr - left] = images[indices[c, j], :, ct:cb, cl:cr]
    return TopPatches(layer, scores, indices, positions, boxes, patches)
