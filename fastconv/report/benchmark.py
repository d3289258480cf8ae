"""Report section: fastconv against PyTorch, measured on the spot (fastconv bench's table)."""
from __future__ import annotations

from fastconv.report.html import Section, paragraph, table


def build(ctx):
    result = ctx.benchmark
    if result is None:
        return Section("benchmark", "Speed against PyTorch", paragraph("Not measured (--no-bench).", "note"))
    if not result["available"]:
        return Section("benchmark", "Speed against PyTorch",
                       paragraph(f"Not measured: {result['reason']}.", "note"))
    rows = [(r["layer"], f"{r['fastconv_ms']:.3f}", f"{r['torch_ms']:.3f}",
             f"{r['ratio']:.2f}", f"{r['ratio_low']:.2f}-{r['ratio_high']:.2f}") for r in result["rows"]]
    body = (paragraph("Measured while this report was made, with fastconv.timing.compare: both libraries warmed "
                      "up until their timings settle, then 3 alternating rounds; the ratio is torch time / "
                      "fastconv time per round (> 1: fastconv is faster), shown as the median with its min-max "
                      f"spread. Both run with {result['threads']} threads, allocating their outputs. Rerun with "
                      "`fastconv bench`; bench/RESULTS.md has the full tables on a quiet machine.")
            + table(["layer", "fastconv ms", "torch ms", "ratio", "spread"], rows)
            + paragraph(f"Measured on: {result['machine']}.", "note"))
    return Section("benchmark", "Speed against PyTorch", body)
