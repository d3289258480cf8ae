"""The report page: one static index.html with its style inline and no scripts or external
assets, so it opens from disk anywhere; pictures are PNG files beside it, linked by name.

Sections hand over HTML fragments built with the helpers here, which escape every piece of
text they are given."""
from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import List

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0; color: #1d2430;
       background: #f6f7f9; line-height: 1.45; }
header { background: #1d2430; color: #fff; padding: 22px 32px 18px; }
header h1 { margin: 0 0 4px; font-size: 26px; }
header p { margin: 0; color: #c9d1dc; }
main { max-width: 1240px; margin: 0 auto; padding: 8px 24px 40px; }
nav { margin: 16px 0; font-size: 14px; }
nav a { margin-right: 14px; color: #2f6fb0; text-decoration: none; white-space: nowrap; }
.cards { display: flex; flex-wrap: wrap; gap: 12px; margin: 18px 0 6px; }
.card { background: #fff; border-radius: 8px; padding: 10px 16px; box-shadow: 0 1px 3px #0002; min-width: 140px; }
.card b { display: block; font-size: 22px; }
.card span { color: #5b6573; font-size: 13px; }
section { background: #fff; border-radius: 8px; padding: 6px 22px 16px; margin: 18px 0;
          box-shadow: 0 1px 3px #0002; }
section h2 { font-size: 19px; margin: 14px 0 6px; }
section p { margin: 6px 0 10px; max-width: 900px; }
.figures { display: flex; flex-wrap: wrap; gap: 18px; align-items: flex-start; }
figure { margin: 6px 0; display: table; }  /* with the caption as a table caption: as wide as the picture */
figure img { max-width: 100%; border: 1px solid #e3e6ea; image-rendering: pixelated; }
figure.photo img { image-rendering: auto; }
figcaption { font-size: 13px; color: #5b6573; display: table-caption; caption-side: bottom; padding-top: 4px; }
details summary { cursor: pointer; color: #2f6fb0; font-size: 14px; margin: 6px 0; }
table { border-collapse: collapse; font-size: 14px; margin: 8px 0; }
th, td { border-bottom: 1px solid #e3e6ea; padding: 4px 10px; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: #f0f2f5; }
.note { color: #5b6573; font-size: 13px; }
footer { color: #5b6573; font-size: 13px; text-align: center; padding: 12px; }
"""


@dataclass
class Section:
    """One part of the report: an anchor id, a heading, an HTML body, and the files it wrote."""
    id: str
    title: str
    body: str
    files: List[str] = field(default_factory=list)


def text(s):
    return html.escape(str(s))


def paragraph(s, css_class=None):
    return f'<p class="{css_class}">{text(s)}</p>' if css_class else f"<p>{text(s)}</p>"


def figure(src, caption, photo=False, width=None):
    """A picture beside index.html (src is its file name) with a caption."""
    w = f' width="{int(width)}"' if width else ""
    css = ' class="photo"' if photo else ""
    return (f'<figure{css}><img src="{text(src)}" alt="{text(caption)}"{w}>'
            f"<figcaption>{text(caption)}</figcaption></figure>")


def figures(*items):
    return '<div class="figures">' + "".join(items) + "</div>"


def table(headers, rows):
    head = "".join(f"<th>{text(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{text(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def details(summary, body):
    """A part of a section folded away until clicked (plain HTML, no script)."""
    return f"<details><summary>{text(summary)}</summary>{body}</details>"


def cards(items):
    """items: (value, label) pairs shown as the headline numbers."""
    return '<div class="cards">' + "".join(
        f'<div class="card"><b>{text(v)}</b><span>{text(k)}</span></div>' for v, k in items) + "</div>"


def write_page(path, title, subtitle, headline, sections, footer):
    nav = " ".join(f'<a href="#{text(s.id)}">{text(s.title)}</a>' for s in sections)
    body = "".join(f'<section id="{text(s.id)}"><h2>{text(s.title)}</h2>{s.body}</section>' for s in sections)
    page = (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{text(title)}</title><style>{STYLE}</style></head><body>"
            f"<header><h1>{text(title)}</h1><p>{text(subtitle)}</p></header>"
            f"<main>{headline}<nav>{nav}</nav>{body}</main><footer>{text(footer)}</footer></body></html>\n")
    with open(path, "w", encoding="utf-8") as f:
        f.write(page)
    return path
