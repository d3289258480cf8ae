"""One picture each, from a trained model and images, written as a PNG: what `fastconv
visualize` draws and what the report's sections are made of (so it sits below both). Thin on purpose: the work is
fastconv.interpret's, the drawing fastconv.interpret.render's; this module chooses the labels."""
from __future__ import annotations

import dataclasses

import numpy as np

from fastconv.interpret.activations import conv_layer_names

PATCH_WHITE = 0.85
DIGITS = [str(d) for d in range(10)]


def out_channels(model, layer):
    return int(dict(model.leaves())[layer].weight.shape[0])


def stack(images, path, gap=8):
    """PIL images one under the other, left-aligned, on white; written to path."""
    from PIL import Image
    canvas = Image.new("RGB", (max(i.width for i in images), sum(i.height for i in images) + gap * (len(images) - 1)),
                       "white")
    y = 0
    for img in images:
        canvas.paste(img, (0, y))
        y += img.height + gap
    canvas.save(path, format="PNG")
    return path


def feature_maps(model, image, layers, path):
    """The maps of one image (1, C, H, W) at each named layer, one grid per layer."""
    from fastconv.interpret import feature_maps as maps_of, render
    maps = maps_of(model, image, layers)
    grids = [render.grid(image, ["input"], cmap="gray", cell=96, title="input image")]
    grids += [render.feature_map_grid(maps[name], name, ncols=min(16, maps[name].shape[1]), cell=64) for name in layers]
    return stack(grids, path)


def filters(model, path):
    from fastconv.interpret import first_layer_filters, render
    w = first_layer_filters(model)
    render.filter_grid(w, conv_layer_names(model)[0], ncols=min(16, len(w)), cell=56, path=path)
    return path


def sobel(photo, path):
    """The photo, its responses to the lecture's Sobel kernel and its transpose, and the edge
    magnitude sqrt(h^2 + v^2)."""
    from fastconv.interpret import render, sobel as sobel_of
    h, v = sobel_of(photo)
    tiles = [photo if photo.shape[0] == 3 else np.repeat(photo, 3, axis=0)]
    tiles += [np.repeat(t[None], 3, axis=0) for t in (np.abs(h), np.abs(v), np.hypot(h, v))]
    labels = ["photo", "|[[1,2,1],[0,0,0],[-1,-2,-1]]|", "|its transpose|", "edge magnitude"]
    render.grid(np.stack(tiles), labels, ncols=4, path=path)
    return path


def top_patches(model, layer, images, path, channels=None, k=9):
    from fastconv.interpret import render, top_patches as top_of
    result = top_of(model, layer, images, k=k)
    # The patches are image pixels in [0, 1], drawn on one scale: per-tile stretching would turn
    # an almost uniform patch (the inside of a thick stroke) into speckle. White is drawn light
    # grey so that such a patch still shows as a tile on the white page.
    shown = dataclasses.replace(result, patches=result.patches * PATCH_WHITE)
    render.patch_grid(shown, channels=channels, normalise=False, path=path)
    return result


def class_models(model, classes, path, steps=200, preset=None, names=DIGITS):
    from fastconv.interpret import class_model, render
    vis = class_model(model, list(classes), steps=steps, preset=preset)
    render.visualization_grid(vis, names=names, ncols=len(vis.targets), cell=72, path=path)
    return vis


def most_active_channels(model, layer, images, count):
    """The `count` channels of `layer` with the highest mean activation over images: a ReLU
    unit that is silent on the data has no gradient to climb from noise either."""
    from fastconv.interpret import feature_maps as maps_of
    mean = maps_of(model, images, layer)[layer].mean(axis=(0, 2, 3))
    return sorted(int(c) for c in np.argsort(-mean, kind="stable")[:count])


def neurons(model, layer, channels, path, steps=200, preset=None):
    from fastconv.interpret import maximize_activation, render
    vis = maximize_activation(model, layer, list(channels), steps=steps, preset=preset)
    render.visualization_grid(vis, names={c: f"ch {c}" for c in channels}, kind="channel", ncols=len(vis.targets),
                              cell=72, path=path)
    return vis


def _attribution_labels(targets, predicted, truth):
    if truth is None:
        return [f"class {t}" for t in targets]
    return [f"{y}->{p} ({t})" for y, p, t in zip(truth, predicted, targets)]


def saliency(model, images, targets, path, predicted=None, truth=None):
    """|dS/dI| of class `targets` over each image (labels: true -> predicted (explained class))."""
    from fastconv.interpret import render, saliency as saliency_of
    maps = saliency_of(model, images, targets)
    render.overlay(images, maps, labels=_attribution_labels(targets, predicted, truth), ncols=len(images), cell=72,
                   path=path)
    return path


def attribution_panel(model, images, predicted, truth, layer, path):
    """The images in a row, then rows of saliency, SmoothGrad and Grad-CAM of the predicted
    class, and Grad-CAM of the true class, each blended over its image."""
    from fastconv.interpret import grad_cam as grad_cam_of, render, saliency as saliency_of, smoothgrad
    maps = {"saliency": saliency_of(model, images, predicted),
            "SmoothGrad": smoothgrad(model, images, predicted, samples=16, seed=0),
            f"Grad-CAM {layer}": grad_cam_of(model, images, predicted, layer),
            "Grad-CAM, true class": grad_cam_of(model, images, truth, layer)}
    render.attribution_grid(images, maps, labels=[f"{y} -> {p}" for y, p in zip(truth, predicted)], cell=72,
                            path=path)
    return path


def grad_cam(model, images, targets, layer, path, predicted=None, truth=None):
    from fastconv.interpret import grad_cam as grad_cam_of, render
    maps = grad_cam_of(model, images, targets, layer)
    render.overlay(images, maps, labels=_attribution_labels(targets, predicted, truth), ncols=len(images), cell=72,
                   path=path)
    return path
