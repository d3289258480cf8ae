"""Report section: Zeiler & Fergus' top-9 patches: for every filter of each conv layer, the nine
test-set windows (the units' receptive fields) that excite it most, found in one pass."""
from __future__ import annotations

from fastconv.interpret import pictures
from fastconv.interpret.activations import conv_layer_names
from fastconv.report.html import Section, figure, figures, paragraph

MAX_CHANNELS = 16  # rows per picture: enough to see the variety, small enough to read


def build(ctx):
    images = ctx.test[0]
    shown, files = [], []
    for layer in conv_layer_names(ctx.model):
        name = f"patches_{layer.replace('.', '_')}.png"
        result = pictures.top_patches(ctx.model, layer, images, ctx.path(name),
                                      channels=range(min(MAX_CHANNELS, pictures.out_channels(ctx.model, layer))))
        size = result.patches.shape[-1]
        more = pictures.out_channels(ctx.model, layer) - MAX_CHANNELS
        shown.append(figure(name, f"{layer}: the top-9 {size}x{size} patches of "
                            + (f"its first {MAX_CHANNELS} filters ({more} more not shown)" if more > 0
                               else "every filter")))
        files.append(name)
    body = (paragraph(f"All {len(images)} test images go through the net once; for every filter fastconv keeps the "
                      "nine strongest activations and cuts out the window of the image each of those units sees "
                      "(its receptive field, zeros where it runs past the border). Each row is one filter, "
                      "labelled with its activations; deeper layers see larger windows and respond to larger "
                      "parts of digits.")
            + figures(*shown))
    return Section("patches", "Top-9 patches per filter", body, files)
