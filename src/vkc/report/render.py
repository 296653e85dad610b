"""Render the report model as Markdown, JSON and a self-contained HTML page (inline CSS + SVG)."""
from __future__ import annotations

import html
import json
import os
from pathlib import Path
from typing import Any

from vkc.atomic import replace_file
from vkc.errors import WriteError
from vkc.report.build import build_report
from vkc.templating import render as render_template

LANG_COLOURS = {"cuda": "#1f6feb", "triton": "#bf3989", "unknown": "#6e7781"}


def _num(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.4g}" if abs(v) < 1e5 else f"{v:.0f}"
    return str(v)


def _pct(v: Any) -> str:
    return "n/a" if v is None else f"{100 * v:.1f}%"


def _md(v: Any) -> str:
    return "" if v is None else str(v).replace("|", "\\|").replace("\n", " ")


def bandwidth_svg(gpu: list[dict[str, Any]], peak_gbps: float, peak_gpu: str = "H100") -> str:
    """Horizontal bars of achieved GB/s per kernel, with the HBM peak as a dashed line."""
    rows = [g for g in gpu if g.get("gbps") is not None]
    if not rows:
        return '<svg id="bandwidth-plot" xmlns="http://www.w3.org/2000/svg" width="600" height="40" role="img">' \
               '<text x="8" y="24" font-size="13">no GB/s results</text></svg>'
    left, width, bar, gap, top = 330, 520, 16, 6, 28
    vmax = max(peak_gbps, max(g["gbps"] for g in rows)) * 1.05
    height = top + len(rows) * (bar + gap) + 30
    x = lambda v: left + width * v / vmax
    out = [(f'<svg id="bandwidth-plot" xmlns="http://www.w3.org/2000/svg" width="{left + width + 90}" '
            f'height="{height}" role="img" aria-label="achieved bandwidth per kernel">'),
           (f'<text x="{left}" y="16" font-size="12">achieved GB/s (FULL and SMALL runs; dashed: {html.escape(peak_gpu)} HBM peak '
            f'{peak_gbps:.0f} GB/s)</text>')]
    for i, g in enumerate(rows):
        y = top + i * (bar + gap)
        label = g["name"] if len(g["name"]) <= 48 else "…" + g["name"][-47:]
        colour = LANG_COLOURS.get(g.get("lang") or "unknown", LANG_COLOURS["unknown"])
        opacity = "1" if g.get("config") == "FULL" else "0.45"
        out.append(f'<text x="{left - 6}" y="{y + bar - 4}" font-size="11" text-anchor="end">'
                   f'{html.escape(label)}</text>')
        out.append(f'<rect class="bar" x="{left}" y="{y}" width="{max(1.0, x(g["gbps"]) - left):.1f}" height="{bar}" '
                   f'fill="{colour}" fill-opacity="{opacity}"><title>{html.escape(g["name"])}: {g["gbps"]:.4g} GB/s '
                   f'({html.escape(str(g.get("config")))})</title></rect>')
        out.append(f'<text x="{x(g["gbps"]) + 4:.1f}" y="{y + bar - 4}" font-size="11">{g["gbps"]:.4g}</text>')
    px = x(peak_gbps)
    out.append(f'<line x1="{px:.1f}" y1="{top - 6}" x2="{px:.1f}" y2="{height - 22}" stroke="#cf222e" '
               f'stroke-dasharray="4 3"/>')
    out.append(f'<text x="{px:.1f}" y="{height - 8}" font-size="11" text-anchor="middle" fill="#cf222e">'
               f'{peak_gbps:.0f} GB/s</text>')
    out.append(f'<line x1="{left}" y1="{top - 6}" x2="{left}" y2="{height - 22}" stroke="#57606a"/>')
    out.append("</svg>")
    return "\n".join(out)


def render(report: dict[str, Any]) -> dict[str, str]:
    """{"md": ..., "json": ..., "html": ...} for a report model."""
    helpers: dict[str, Any] = {"num": _num, "pct": _pct, "md": _md}
    md_text = render_template("vkc.report/report.md.j2", r=report, **helpers)
    svg = bandwidth_svg(report["gpu"], report["peak"]["hbm_gbps"], report["peak"]["gpu"])
    html_text = render_template("vkc.report/report.html.j2", r=report, svg=svg, **helpers)
    return {"md": md_text, "json": json.dumps(report, indent=2, sort_keys=True) + "\n", "html": html_text}


def write_report(directory: str | os.PathLike[str], out: str | os.PathLike[str] | None = None) -> list[Path]:
    """Write PREFIX.md, PREFIX.json and PREFIX.html (PREFIX defaults to DIR/report); returns the paths."""
    texts = render(build_report(os.fspath(directory)))
    prefix = Path(out) if out else Path(directory) / "report"
    paths = []
    for ext in ("md", "json", "html"):
        p = prefix.with_name(f"{prefix.name}.{ext}")
        try:
            p.parent.mkdir(parents=True, exist_ok=True)
            replace_file(p, texts[ext])
        except OSError as e:
            raise WriteError(f"cannot write {p}: {e.strerror or e}", hint="check the --out prefix") from e
        paths.append(p)
    return paths
