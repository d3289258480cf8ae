"""Pictures of what a network sees, with Pillow only: labelled grids (feature maps, filters,
top-k patches, class models / unit images), heatmaps overlaid on their inputs, and the
receptive-field table as text and HTML.

Every grid function takes arrays shaped (N, C, h, w) with C = 1 (grey or a colour map) or 3
(RGB), normalises each tile on its own (per-map min..max) unless told otherwise, scales small
tiles up with nearest-neighbour so pixels stay visible, returns a PIL.Image and, given
path=..., also writes it as PNG.
"""
from __future__ import annotations

import html
import os

import numpy as np

# colour maps as anchor colours, linearly interpolated (matplotlib's viridis and jet, sampled)
_CMAPS = {
    "viridis": [(68, 1, 84), (59, 82, 139), (33, 145, 140), (94, 201, 98), (253, 231, 37)],
    "jet": [(0, 0, 128), (0, 0, 255), (0, 255, 255), (255, 255, 0), (255, 0, 0), (128, 0, 0)],
    "gray": [(0, 0, 0), (255, 255, 255)],
    "seismic": [(0, 0, 77), (0, 0, 255), (255, 255, 255), (255, 0, 0), (128, 0, 0)],
}
_BG = (255, 255, 255)
_INK = (20, 20, 20)


def _font(size=11):
    from PIL import ImageFont
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError, ImportError):  # Pillow < 10.1 or no FreeType: the bitmap font
        return ImageFont.load_default()


def colorize(values, cmap="viridis"):
    """(h, w) values in [0, 1] -> (h, w, 3) uint8 through a named colour map."""
    if cmap not in _CMAPS:
        raise ValueError(f"cmap must be one of {sorted(_CMAPS)}, got {cmap!r}")
    anchors = np.array(_CMAPS[cmap], np.float64)
    pos = np.clip(np.nan_to_num(values), 0, 1) * (len(anchors) - 1)
    lo = np.minimum(pos.astype(int), len(anchors) - 2)
    frac = (pos - lo)[..., None]
    return np.round(anchors[lo] * (1 - frac) + anchors[lo + 1] * frac).astype(np.uint8)


def normalize(a, symmetric=False):
    """a scaled to [0, 1] by its own min..max (symmetric=True: by max |a|, 0 -> 0.5).
    Constant maps become 0 (0.5 when symmetric)."""
    a = np.asarray(a, np.float64)
    if symmetric:
        m = np.abs(a).max()
        return 0.5 + 0.5 * a / m if m > 0 else np.full(a.shape, 0.5)
    lo, hi = a.min(), a.max()
    return (a - lo) / (hi - lo) if hi > lo else np.zeros(a.shape)


def _tile_rgb(tile, cmap, symmetric, normalise):
    """(C, h, w) -> (h, w, 3) uint8."""
    tile = np.asarray(tile, np.float64)
    if tile.ndim != 3 or tile.shape[0] not in (1, 3):
        raise ValueError(f"each tile must be (1 or 3, h, w), got shape {tile.shape}")
    v = normalize(tile, symmetric) if normalise else np.clip(tile, 0, 1)
    if tile.shape[0] == 3:
        return np.round(v.transpose(1, 2, 0) * 255).astype(np.uint8)
    return colorize(v[0], cmap)


def _check_tiles(images, name):
    a = np.asarray(images)
    if a.ndim == 3:  # (N, h, w): single-channel maps
        a = a[:, None]
    if a.ndim != 4 or a.shape[0] < 1 or a.shape[1] not in (1, 3):
        raise ValueError(f"{name} must be (N, 1 or 3, h, w) or (N, h, w), got shape {a.shape}")
    if a.dtype.kind not in "fiub":
        raise TypeError(f"{name} must be numeric, got {a.dtype}")
    return a


def _finish(img, path):
    if path is not None:
        img.save(os.fspath(path), format="PNG", optimize=True)
    return img


def grid(images, labels=None, *, ncols=None, cell=None, cmap="gray", symmetric=False, normalise=True,
         title=None, row_labels=None, path=None):
    """grid(images, labels=None, *, ncols=None, cell=None, cmap="gray", symmetric=False,
    normalise=True, title=None, row_labels=None, path=None) -> PIL.Image.

    Tiles of images (N, 1|3, h, w) (or (N, h, w)) in rows of ncols (default ~square), each
    normalised to its own range (normalise=False: values taken as [0, 1]), scaled up with
    nearest-neighbour to at least `cell` pixels (default 48), labelled underneath; row_labels
    are written left of each row, title above. Writes a PNG when path is given."""
    from PIL import Image, ImageDraw

    a = _check_tiles(images, "images")
    n, _, h, w = a.shape
    if labels is not None and len(labels) != n:
        raise ValueError(f"labels must have one entry per image ({n}), got {len(labels)}")
    ncols = int(ncols or int(np.ceil(np.sqrt(n))))
    if ncols < 1:
        raise ValueError(f"ncols must be >= 1, got {ncols}")
    nrows = -(-n // ncols)
    zoom = max(1, int(np.ceil((cell or 48) / max(h, w))))
    th, tw = h * zoom, w * zoom
    font = _font(11)
    label_h = 14 if labels is not None else 0
    left = 0 if row_labels is None else 8 + max(int(font.getlength(str(s))) for s in row_labels)
    top = 0 if title is None else 20
    pad = 4
    width = left + ncols * (tw + pad) + pad
    height = top + nrows * (th + label_h + pad) + pad
    canvas = Image.new("RGB", (width, height), _BG)
    draw = ImageDraw.Draw(canvas)
    if title is not None:
        draw.text((pad, 3), str(title), fill=_INK, font=_font(13))
    for i in range(n):
        r, c = divmod(i, ncols)
        x0, y0 = left + pad + c * (tw + pad), top + pad + r * (th + label_h + pad)
        tile = Image.fromarray(_tile_rgb(a[i], cmap, symmetric, normalise)).resize((tw, th), Image.NEAREST)
        canvas.paste(tile, (x0, y0))
        if labels is not None:
            text = str(labels[i])
            while len(text) > 1 and font.getlength(text) > tw + pad:
                text = text[:-1]
            draw.text((x0, y0 + th + 1), text, fill=_INK, font=font)
    if row_labels is not None:
        for r, text in enumerate(row_labels[:nrows]):
            draw.text((pad, top + pad + r * (th + label_h + pad) + th // 2 - 6), str(text), fill=_INK, font=font)
    return _finish(canvas, path)


def feature_map_grid(maps, layer="", *, image_index=0, max_channels=64, cmap="viridis", path=None, **kw):
    """feature_map_grid(maps, layer="", *, image_index=0, max_channels=64, cmap="viridis",
    path=None) -> PIL.Image: one tile per channel of maps[image_index] ((N, C, h, w), e.g. one
    entry of feature_maps()), each normalised on its own, labelled "<layer> ch k"."""
    a = np.asarray(maps)
    if a.ndim != 4:
        raise ValueError(f"maps must be (N, C, h, w), got shape {a.shape}")
    if not 0 <= image_index < a.shape[0]:
        raise ValueError(f"image_index must be in [0, {a.shape[0]}), got {image_index}")
    chans = a[image_index, :max_channels]
    labels = [f"ch {k}" for k in range(len(chans))]
    title = kw.pop("title", f"{layer} feature maps ({a.shape[2]}x{a.shape[3]})")
    return grid(chans[:, None], labels, cmap=cmap, title=title, path=path, **kw)


def filter_grid(weight, layer="", *, path=None, **kw):
    """filter_grid(weight, layer="", *, path=None) -> PIL.Image: the kernels of a conv layer
    (K, C, kh, kw) as tiles: RGB when C == 3, else input channel 0 in a diverging map
    (blue < 0 < red, symmetric scale), labelled "<layer> #k"."""
    w = np.asarray(weight, np.float64)
    if w.ndim != 4:
        raise ValueError(f"weight must be (out_channels, in_channels, kh, kw), got shape {w.shape}")
    tiles = w if w.shape[1] == 3 else w[:, :1]
    labels = [f"#{k}" for k in range(len(w))]
    title = kw.pop("title", f"{layer} filters {w.shape[2]}x{w.shape[3]}".strip())
    return grid(tiles, labels, cmap="seismic", symmetric=tiles.shape[1] == 1, title=title, path=path, **kw)


def patch_grid(result, *, channels=None, path=None, **kw):
    """patch_grid(result, *, channels=None, path=None) -> PIL.Image: a TopPatches result as one
    row per channel ("ch k" on the left) of its k patches, each labelled with its score."""
    chans = range(result.scores.shape[0]) if channels is None else list(channels)
    k = result.scores.shape[1]
    tiles = np.concatenate([result.patches[c] for c in chans])
    labels = [f"{result.scores[c, j]:.2f}" for c in chans for j in range(k)]
    title = kw.pop("title", f"{result.layer}: top-{k} patches ({result.patches.shape[-1]}px receptive field)")
    return grid(tiles, labels, ncols=k, row_labels=[f"ch {c}" for c in chans], title=title, path=path, **kw)


def visualization_grid(vis, *, names=None, kind="class", path=None, **kw):
    """visualization_grid(vis, *, names=None, kind="class", path=None) -> PIL.Image: the images
    of a class_model / maximize_activation result, labelled with the target (names[target]
    when given) and the final softmax probability (class models) or score."""
    labels = []
    for i, t in enumerate(vis.targets):
        name = names[t] if names is not None else f"{kind} {t}"
        value = f"p={vis.trace.prob[-1, i]:.2f}" if vis.trace.prob is not None else f"{vis.trace.score[-1, i]:.1f}"
        labels.append(f"{name}: {value}")
    return grid(vis.image, labels, path=path, **kw)


def to_rgb(tile, cmap="gray", symmetric=False, normalise=True):
    """to_rgb(tile, cmap="gray", symmetric=False, normalise=True) -> (3, h, w) float in [0, 1]:
    one (1|3, h, w) or (h, w) tile as grid() would draw it, for mixing kinds of tiles in one grid."""
    tile = np.asarray(tile)
    return _tile_rgb(tile[None] if tile.ndim == 2 else tile, cmap, symmetric, normalise).transpose(2, 0, 1) / 255.0


def blend(images, heatmaps, *, alpha=0.5, cmap="jet"):
    """blend(images, heatmaps, *, alpha=0.5, cmap="jet") -> (N, 3, H, W) float in [0, 1]: each
    heatmap (N, H, W) normalised and coloured, mixed over its image (N, 1|3, H, W) normalised."""
    imgs = _check_tiles(images, "images")
    heat = np.asarray(heatmaps, np.float64)
    if heat.ndim == 4 and heat.shape[1] == 1:
        heat = heat[:, 0]
    if heat.shape != (imgs.shape[0],) + imgs.shape[2:]:
        raise ValueError(f"heatmaps must be (N, H, W) = {(imgs.shape[0],) + imgs.shape[2:]}, got {heat.shape}")
    if not 0 <= alpha <= 1:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    out = []
    for img, hm in zip(imgs, heat):
        base = to_rgb(img)
        out.append((1 - alpha) * base + alpha * colorize(normalize(hm), cmap).transpose(2, 0, 1) / 255.0)
    return np.stack(out)


def overlay(images, heatmaps, *, alpha=0.5, cmap="jet", labels=None, path=None, **kw):
    """overlay(images, heatmaps, *, alpha=0.5, cmap="jet", labels=None, path=None) -> PIL.Image:
    blend() of each heatmap (saliency, Grad-CAM) over its image, one tile per image."""
    return grid(blend(images, heatmaps, alpha=alpha, cmap=cmap), labels, normalise=False, path=path, **kw)


def attribution_grid(images, maps, *, labels=None, alpha=0.5, path=None, **kw):
    """attribution_grid(images, maps, *, labels=None, alpha=0.5, path=None) -> PIL.Image: the
    images in the first row, then one row per entry of maps {method name: (N, H, W) heatmap,
    or (N, C, H, W) signed attribution (shown as max |.| over channels)} blended over them."""
    imgs = _check_tiles(images, "images")
    rows = [np.stack([to_rgb(img) for img in imgs])]
    for heat in maps.values():
        heat = np.asarray(heat)
        rows.append(blend(imgs, np.abs(heat).max(axis=1) if heat.ndim == 4 else heat, alpha=alpha))
    tiles = np.concatenate(rows)
    tile_labels = None if labels is None else [str(v) for v in labels] + [""] * (len(tiles) - len(labels))
    return grid(tiles, tile_labels, ncols=len(imgs), normalise=False, row_labels=["input"] + list(maps), path=path,
                **kw)


_RF_COLUMNS = ("layer", "kind", "output", "receptive field", "jump", "start", "params")


def _rf_rows(records):
    def hw(t):
        return f"{t[0]}x{t[1]}" if t[0] != t[1] else f"{t[0]}"

    return [(r.name, r.kind, f"{r.output_size[0]}x{r.output_size[1]}", f"{r.size[0]}x{r.size[1]}", hw(r.jump),
             hw(tuple(f"{v:g}" for v in r.start)), f"{r.params:,}") for r in records]


def rf_table_text(records):
    """rf_table_text(records) -> str: receptive_field() records as an aligned plain-text table."""
    rows = [_RF_COLUMNS] + _rf_rows(records)
    widths = [max(len(row[i]) for row in rows) for i in range(len(_RF_COLUMNS))]
    lines = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def rf_table_html(records):
    """rf_table_html(records) -> str: the same table as an HTML <table> (escaped)."""
    head = "".join(f"<th>{html.escape(c)}</th>" for c in _RF_COLUMNS)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in _rf_rows(records))
    return f'<table class="receptive-field"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
