"""Report section: training curves (loss and accuracy per epoch) and the confusion matrix."""
from __future__ import annotations

from fastconv.report.charts import confusion_chart, line_chart
from fastconv.report.html import Section, details, figure, figures, paragraph, table


def build(ctx):
    h, ev = ctx.history, ctx.evaluation
    line_chart(ctx.path("loss.png"), {"training loss": h["loss"]}, "Cross-entropy loss per epoch", "epoch", "loss")
    line_chart(ctx.path("accuracy.png"), {"training (augmented)": h["accuracy"]}, "Training accuracy per epoch",
               "epoch", "accuracy", y_range=(min(min(h["accuracy"]), ev["accuracy"], 0.8) - 0.02, 1.0))
    confusion_chart(ctx.path("confusion.png"), ev["confusion"])
    mistakes = int(ev["n"] - round(ev["accuracy"] * ev["n"]))
    rows = [(i + 1, f"{h['loss'][i]:.4f}", f"{h['accuracy'][i]:.4f}", f"{h['lr'][i]:.2e}",
             f"{h['seconds'][i]:.1f}", f"{h['images_per_s'][i]:.0f}") for i in range(len(h["loss"]))]
    body = (paragraph(f"{ctx.model_name} trained on {ctx.data_description}, every batch freshly augmented "
                      f"(Adam, cosine learning rate). On the {ev['n']} held-out test images it reaches "
                      f"{100 * ev['accuracy']:.2f}% accuracy ({mistakes} mistakes). Training accuracy is "
                      f"measured on the augmented batches, so it runs below the test accuracy.")
            + figures(figure("loss.png", "Training loss per epoch"),
                      figure("accuracy.png", "Training accuracy per epoch (on augmented batches)"),
                      figure("confusion.png", f"Confusion matrix on the {ev['n']} test images: rows are the "
                             "true class, columns the prediction; off-diagonal cells are the mistakes"))
            + details("Per-epoch numbers", table(["epoch", "loss", "accuracy", "learning rate", "seconds", "images/s"],
                                                 rows)))
    return Section("training", "Training", body, ["loss.png", "accuracy.png", "confusion.png"])
