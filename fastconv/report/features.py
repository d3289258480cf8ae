"""Report section: the feature maps of one test image after every convolution."""
from __future__ import annotations

from fastconv.interpret import pictures
from fastconv.interpret.activations import conv_layer_names
from fastconv.report.html import Section, figure, paragraph


def build(ctx):
    layers = conv_layer_names(ctx.model)
    image, label = ctx.test[0][:1], int(ctx.test[1][0])
    pictures.feature_maps(ctx.model, image, layers, ctx.path("feature_maps.png"))
    body = (paragraph(f"A test digit (a {label}) and what each convolution layer ({', '.join(layers)}) makes of "
                      "it, read after the ReLU. Each map is scaled to its own range: bright is a strong response. "
                      "Early maps are edge and stroke detectors in the image's geometry; deeper maps are smaller "
                      "and respond to parts of digits.")
            + figure("feature_maps.png", "Feature maps at every convolution layer"))
    return Section("feature-maps", "Feature maps", body, ["feature_maps.png"])
