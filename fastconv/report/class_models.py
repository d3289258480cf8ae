"""Report section: Simonyan et al.'s class-model images for every class, and images that
maximise a few single filters (neurons) of the last conv layer."""
from __future__ import annotations

from fastconv.interpret import pictures
from fastconv.interpret.activations import conv_layer_names
from fastconv.report.html import Section, figure, paragraph

STEPS, QUICK_STEPS = 200, 40
NEURONS = 8


def build(ctx):
    steps = QUICK_STEPS if ctx.quick else STEPS
    plain = pictures.class_models(ctx.model, range(10), ctx.path("class_models.png"), steps=steps)
    robust = pictures.class_models(ctx.model, range(10), ctx.path("class_models_robust.png"), steps=steps,
                                   preset="robust")
    layer = conv_layer_names(ctx.model)[-1]
    channels = pictures.most_active_channels(ctx.model, layer, ctx.test[0][:256], NEURONS)
    pictures.neurons(ctx.model, layer, channels, ctx.path("neurons.png"), steps=steps, preset="robust")
    body = (paragraph(f"Class models (Simonyan et al. 2013): starting from noise, {steps} steps of gradient ascent "
                      "on the image maximise the class score before the softmax minus an L2 penalty on the "
                      "image, argmax_I S_c(I) - λ‖I‖². The softmax probability each image reaches is written under "
                      f"it (lowest: {plain.trace.prob[-1].min():.2f}). Plain ascent finds high-frequency patterns "
                      "the net responds to rather than digits.")
            + figure("class_models.png", "Plain class models: the image each class's score likes best")
            + paragraph("The same ascent with the regularisers of Yosinski et al. 2015 and Olah et al. 2017 "
                        "(preset=\"robust\": random jitter, blur every few steps, clipping of weak pixels, a "
                        "decorrelated Fourier parameterisation, pixels kept in [0, 1]) gives images a person can "
                        f"read (lowest probability: {robust.trace.prob[-1].min():.2f}).")
            + figure("class_models_robust.png", "Regularised class models")
            + paragraph(f"The regularised ascent on single filters of {layer} (their mean activation), for the "
                        f"{len(channels)} filters most active on the test images: the pattern each filter looks for.")
            + figure("neurons.png", f"Images maximising filters {', '.join(map(str, channels))} of {layer}"))
    return Section("class-models", "Class models and neurons", body,
                   ["class_models.png", "class_models_robust.png", "neurons.png"])
