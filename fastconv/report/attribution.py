"""Report section: saliency (|dS/dI|) and Grad-CAM on the test images the net got wrong: where
in the image the evidence for its wrong answer, and for the right one, lies."""
from __future__ import annotations

import numpy as np

from fastconv.report import pictures
from fastconv.report.html import Section, figure, paragraph

COUNT = 8


def _examples(probabilities, truth):
    """Up to COUNT test images: the misclassified ones first, then the correct ones the net
    was least sure of."""
    predicted = probabilities.argmax(axis=1)
    wrong = np.flatnonzero(predicted != truth)
    right = np.flatnonzero(predicted == truth)
    unsure = right[np.argsort(probabilities[right].max(axis=1), kind="stable")]
    return np.concatenate([wrong, unsure])[:COUNT]


def build(ctx):
    idx = _examples(ctx.probabilities(), ctx.test[1])
    images, truth = ctx.test[0][idx], ctx.test[1][idx]
    predicted = ctx.probabilities()[idx].argmax(axis=1)
    layer = pictures.conv_layers(ctx.model)[-1]
    pictures.saliency(ctx.model, images, predicted, ctx.path("saliency.png"), predicted, truth)
    pictures.grad_cam(ctx.model, images, predicted, layer, ctx.path("grad_cam_predicted.png"), predicted, truth)
    pictures.grad_cam(ctx.model, images, truth, layer, ctx.path("grad_cam_true.png"), predicted, truth)
    mistakes = int((predicted != truth).sum())
    body = (paragraph(f"{mistakes} of these {len(idx)} test images are misclassified (the rest are the correct "
                      "answers the net was least sure of); each is labelled "
                      "true -> predicted (explained class). Saliency (Simonyan et al.) is |∂S_c/∂I|, how much "
                      "each pixel moves the class score; Grad-CAM (Selvaraju et al.) weights the maps of "
                      f"{layer} by their mean gradient and shows where that evidence sits.")
            + figure("saliency.png", "Saliency of the predicted class")
            + figure("grad_cam_predicted.png", f"Grad-CAM ({layer}) of the predicted class")
            + figure("grad_cam_true.png", f"Grad-CAM ({layer}) of the true class: the evidence the net missed"))
    return Section("attribution", "Saliency and Grad-CAM on mistakes", body,
                   ["saliency.png", "grad_cam_predicted.png", "grad_cam_true.png"])
