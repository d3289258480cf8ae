"""The demo report: one static index.html with the PNGs, the trained weights and metrics.json
beside it. Each section is a module with build(ctx) -> Section (see context.py and html.py);
SECTIONS lists them in page order."""
from __future__ import annotations

import json
import os

from fastconv.report import (attribution, augmentation, benchmark, class_models, features, filters, patches, receptive,
                             training)
from fastconv.report.context import ReportContext
from fastconv.report.html import cards, write_page

SECTIONS = [training, filters, features, patches, class_models, attribution, augmentation, receptive, benchmark]

__all__ = ["ReportContext", "SECTIONS", "bundled_photo", "write_metrics", "write_report"]


def bundled_photo():
    """Path of the small photo shipped for the Sobel example (CC BY 2.0: assets/pagoda.LICENSE.txt)."""
    return os.path.join(os.path.dirname(__file__), "assets", "pagoda.jpg")


def write_report(ctx, title, subtitle, footer):
    """Build every section into ctx.out_dir and write index.html; returns its path."""
    sections = [ctx.timed(module.__name__.rsplit(".", 1)[1], module.build, ctx) for module in SECTIONS]
    ev = ctx.evaluation
    headline = cards([(f"{100 * ev['accuracy']:.2f}%", f"test accuracy ({ev['n']} images)"),
                      (f"{sum(ctx.history['seconds']):.1f} s", f"training, {len(ctx.history['loss'])} epochs"),
                      (f"{ctx.history['images_per_s'][-1]:.0f}", "training images/s"),
                      (ctx.model_name, f"{ctx.model.num_parameters():,} parameters")])
    return write_page(ctx.path("index.html"), title, subtitle, headline, sections, footer)


def write_metrics(ctx, path, extra):
    """metrics.json: accuracy, per-epoch history, timings, and the benchmark when measured."""
    ev = ctx.evaluation
    metrics = {"model": ctx.model_name, "data": ctx.data_description, "accuracy": ev["accuracy"],
               "test_loss": ev["loss"], "n_test": ev["n"], "confusion": ev["confusion"].tolist(),
               "history": ctx.history, "threads": ctx.threads, "seconds": ctx.seconds,
               "benchmark": ctx.benchmark, **extra}
    with open(path, "w") as f:
        json.dump(metrics, f, indent=2)
    return path
