"""Report section: the receptive-field table of the trained model (layer by layer: field
size, jump, start, parameters) and the lecture's 3x3-versus-7x7 comparison."""
from __future__ import annotations

from fastconv.report.html import Section, paragraph


def build(ctx):
    from fastconv import models
    from fastconv.interpret import receptive_field, render
    size = ctx.test[0].shape[-1]
    records = receptive_field(ctx.model, size)
    stacked = receptive_field(models.vgg(((1, 1, 3),), num_classes=2, input_size=8, hidden=2), 8)
    three = [r for r in stacked if r.kind.lower().startswith("conv")]
    body = (paragraph(f"How much of the {size}x{size} input each layer's units see: r_out = r_in + (k_eff - 1) * "
                      "j_in, j_out = j_in * s. 'jump' is the distance in input pixels between neighbouring units "
                      "and 'start' the centre of the first unit's field.")
            + render.rf_table_html(records)
            + paragraph(f"Why VGG stacks 3x3 convolutions: three of them see {three[-1].size[0]}x{three[-1].size[1]}, "
                        f"as far as one 7x7, with {sum(r.kernel_weights for r in three)} weights per channel pair "
                        "instead of 49, and three non-linearities instead of one."))
    return Section("receptive-field", "Receptive fields", body)
