"""Report section: what the first layer learnt, the lecture's Sobel kernel on a real photo, and
the lecture's worked 6x6 example (two stacked 3x3 convolutions see a 5x5 window)."""
from __future__ import annotations

import numpy as np

from fastconv.interpret import pictures
from fastconv.interpret.activations import conv_layer_names
from fastconv.report.html import Section, figure, figures, paragraph, table


def _matrix(a):
    return "[" + "; ".join(" ".join(f"{v:g}" for v in row) for row in np.asarray(a)) + "]"


def build(ctx):
    from fastconv.data import load_image
    from fastconv.interpret import lecture_example
    pictures.filters(ctx.model, ctx.path("filters.png"))
    pictures.sobel(load_image(ctx.photo, mode="RGB", size=(200, 200)), ctx.path("sobel.png"))
    ex = lecture_example()
    rows = [("6x6 image", _matrix(ex.image)), ("3x3 kernel", _matrix(ex.kernel)),
            ("image * kernel (4x4)", _matrix(ex.first)),
            (f"(image * kernel) * kernel (2x2; each unit sees {ex.receptive_field}x{ex.receptive_field})",
             _matrix(ex.second))]
    first = conv_layer_names(ctx.model)[0]
    body = (paragraph(f"The kernels of the first convolution ({first}), learnt from the data: blue is negative, "
                      "red positive. Below, the lecture's hand-made Sobel kernel [[1,2,1],[0,0,0],[-1,-2,-1]] and "
                      "its transpose, applied with fastconv.functional.conv2d, find horizontal and vertical edges "
                      "in a photo.")
            + figures(figure("filters.png", f"{first}: the learnt first-layer filters"))
            + figures(figure("sobel.png", "The Sobel kernel and its transpose on a photo (absolute responses)",
                             photo=True))
            + paragraph("The lecture's worked example: the same 3x3 kernel applied twice to a 6x6 image. Each value "
                        "of the final 2x2 map depends on a 5x5 window of the image: two stacked 3x3 layers see as "
                        "far as one 5x5 layer, with 18 weights instead of 25.")
            + table(["step", "values (rows separated by ;)"], rows))
    return Section("filters", "Filters and edges", body, ["filters.png", "sobel.png"])
