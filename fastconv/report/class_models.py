"""Report section: Simonyan et al.'s class-model images for every class, and images that
maximise a few single filters (neurons) of the last conv layer."""
from __future__ import annotations

from fastconv.report import pictures
from fastconv.report.html import Section, figure, paragraph

STEPS, QUICK_STEPS = 200, 40
NEURONS = 8


def build(ctx):
    steps = QUICK_STEPS if ctx.quick else STEPS
    vis = pictures.class_models(ctx.model, range(10), ctx.path("class_models.png"), steps=steps)
    layer = pictures.conv_layers(ctx.model)[-1]
    channels = pictures.most_active_channels(ctx.model, layer, ctx.test[0][:256], NEURONS)
    pictures.neurons(ctx.model, layer, channels, ctx.path("neurons.png"), steps=steps)
    probs = vis.trace.prob[-1]
    body = (paragraph(f"Class models (Simonyan et al. 2013): starting from noise, {steps} steps of gradient ascent "
                      "on the image maximise the class score before the softmax minus an L2 penalty on the "
                      "image: argmax_I S_c(I) - λ‖I‖². The softmax probability each image reaches is written under "
                      f"it (lowest: {probs.min():.3f}). They show what the net looks for in each class, not what "
                      "a digit looks like.")
            + figure("class_models.png", "The image each class's score likes best")
            + paragraph(f"The same ascent on single filters of {layer} (their mean activation; the {len(channels)} "
                        "filters most active on the test images): the pattern each filter responds to.")
            + figure("neurons.png", f"Images maximising filters {', '.join(map(str, channels))} of {layer}"))
    return Section("class-models", "Class models and neurons", body, ["class_models.png", "neurons.png"])
