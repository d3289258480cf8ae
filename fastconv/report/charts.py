"""Charts for the report drawn with Pillow alone (matplotlib is not a dependency): line charts
for the training curves and a confusion-matrix heat map."""
from __future__ import annotations

import math

import numpy as np

PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd"]


def font(size=13):
    from PIL import ImageFont
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: one fixed-size bitmap font
        return ImageFont.load_default()


def _nice_ticks(low, high, count=5):
    """About `count` round tick values covering [low, high]."""
    if high <= low:
        high = low + 1.0
    raw = (high - low) / count
    step = 10 ** math.floor(math.log10(raw))
    step *= next(m for m in (1, 2, 2.5, 5, 10) if m * step >= raw)
    first = math.floor(low / step) * step
    return [first + i * step for i in range(int(math.ceil((high - first) / step)) + 1)]


def _label(v):
    return f"{v:.3g}"


def line_chart(path, series, title, xlabel, ylabel, size=(360, 280), y_range=None):
    """series: {label: list of y values at x = 1, 2, ...} (None values are skipped). Saves a PNG."""
    from PIL import Image, ImageDraw
    width, height = size
    left, right, top, bottom = 62, 16, 48, 52
    img = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(img)
    values = [v for ys in series.values() for v in ys if v is not None]
    n = max(len(ys) for ys in series.values())
    low, high = y_range if y_range else (min(values), max(values))
    ticks = _nice_ticks(low, high)
    low, high = (low, high) if y_range else (ticks[0], ticks[-1])
    plot_w, plot_h = width - left - right, height - top - bottom

    def xy(i, v):
        x = left + (plot_w * (i / (n - 1)) if n > 1 else plot_w / 2)
        return x, top + plot_h * (1 - (v - low) / (high - low))

    small = font(12)
    for t in ticks:
        if low - 1e-9 <= t <= high + 1e-9:
            _, y = xy(0, t)
            draw.line([(left, y), (width - right, y)], fill="#e6e6e6")
            draw.text((left - 6, y), _label(t), fill="#444", font=small, anchor="rm")
    for i in range(n):
        if n <= 12 or i % math.ceil(n / 12) == 0 or i == n - 1:
            x, _ = xy(i, low)
            draw.text((x, top + plot_h + 6), str(i + 1), fill="#444", font=small, anchor="mt")
    draw.rectangle([left, top, width - right, top + plot_h], outline="#888")
    for k, (name, ys) in enumerate(series.items()):
        colour = PALETTE[k % len(PALETTE)]
        points = [xy(i, v) for i, v in enumerate(ys) if v is not None]
        if len(points) > 1:
            draw.line(points, fill=colour, width=2)
        for x, y in points:
            draw.ellipse([x - 3, y - 3, x + 3, y + 3], fill=colour)
        lx = left + 10 + k * 150
        draw.line([(lx, top - 13), (lx + 18, top - 13)], fill=colour, width=3)
        draw.text((lx + 24, top - 13), name, fill="#222", font=small, anchor="lm")
    draw.text((width / 2, 4), title, fill="#111", font=font(14), anchor="mt")
    draw.text((left + plot_w / 2, height - 6), xlabel, fill="#222", font=small, anchor="mb")
    vertical = Image.new("RGB", (plot_h, 16), "white")
    ImageDraw.Draw(vertical).text((plot_h / 2, 8), ylabel, fill="#222", font=small, anchor="mm")
    img.paste(vertical.rotate(90, expand=True), (4, top))
    img.save(path, format="PNG")
    return path


def confusion_chart(path, confusion, class_names=None, cell=28):
    """Rows: true class, columns: predicted class; counts written in each cell, shaded by the
    fraction of the row (so classes of different sizes compare). Saves a PNG."""
    from PIL import Image, ImageDraw
    confusion = np.asarray(confusion)
    k = confusion.shape[0]
    names = [str(c) for c in (class_names or range(k))]
    margin_left, margin_top = 70, 58
    size = (margin_left + k * cell + 12, margin_top + k * cell + 12)
    img = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(img)
    fractions = confusion / np.maximum(confusion.sum(axis=1, keepdims=True), 1)
    small = font(12)
    for i in range(k):
        for j in range(k):
            f = float(fractions[i, j])
            # diagonal in blue, mistakes in red, both fading to white at 0
            base = (31, 119, 180) if i == j else (214, 39, 40)
            shade = tuple(int(255 - (255 - c) * min(1.0, f * (1 if i == j else 4))) for c in base)
            x0, y0 = margin_left + j * cell, margin_top + i * cell
            draw.rectangle([x0, y0, x0 + cell - 1, y0 + cell - 1], fill=shade, outline="#ddd")
            if confusion[i, j]:
                dark = sum(shade) < 400
                draw.text((x0 + cell / 2, y0 + cell / 2), str(int(confusion[i, j])),
                          fill="white" if dark else "#222", font=small, anchor="mm")
    for i, name in enumerate(names):
        draw.text((margin_left - 8, margin_top + i * cell + cell / 2), name, fill="#222", font=small, anchor="rm")
        draw.text((margin_left + i * cell + cell / 2, margin_top - 6), name, fill="#222", font=small, anchor="mb")
    draw.text((margin_left + k * cell / 2, 6), "predicted class", fill="#222", font=small, anchor="mt")
    draw.text((6, margin_top - 6), "true", fill="#222", font=small, anchor="lb")
    img.save(path, format="PNG")
    return path
