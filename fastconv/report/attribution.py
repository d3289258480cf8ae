"""Report section: saliency (|dS/dI|) and Grad-CAM on the test images the net got wrong: where
in the image the evidence for its wrong answer, and for the right one, lies."""
from __future__ import annotations

import numpy as np

from fastconv.interpret import pictures
from fastconv.interpret.activations import conv_layer_names
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
    layer = conv_layer_names(ctx.model)[-1]
    pictures.attribution_panel(ctx.model, images, predicted, truth, layer, ctx.path("attribution.png"))
    mistakes = int((predicted != truth).sum())
    body = (paragraph(f"{mistakes} of these {len(idx)} test images are misclassified (the rest are the correct "
                      "answers the net was least sure of); each is labelled true -> predicted class. Saliency "
                      "(Simonyan et al.) is |∂S_c/∂I| for the predicted class c: how much each pixel moves its "
                      "score; SmoothGrad (Smilkov et al.) averages it over 16 noisy copies of the image. Grad-CAM "
                      f"(Selvaraju et al.) weights the maps of {layer} by their mean gradient and shows where the "
                      "evidence sits: for the predicted class, and for the true class the net passed over.")
            + figure("attribution.png", "Where the evidence for each answer lies"))
    return Section("attribution", "Saliency and Grad-CAM on mistakes", body, ["attribution.png"])
