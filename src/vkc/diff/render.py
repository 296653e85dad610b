"""``vkc diff`` output: a summary for people, JSON for scripts, Markdown and a self-contained HTML page.

All four are functions of the :class:`TreeDiff` alone (sorted, no timestamps, no local paths
beyond the inputs' citations): the same trees give byte-identical files.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from vkc.atomic import replace_file
from vkc.diff.records import CHANGED, CLASSES, MOVED, KernelChange, TreeDiff, TreeSide
from vkc.diff.render_model import STEP_CLASSES, model_json, model_summary
from vkc.errors import WriteError
from vkc.templating import render as render_template

FORMAT = 1
LANGS = ("cuda", "triton")


def counts(d: TreeDiff) -> dict[str, dict[str, int]]:
    out = {k: {**{lang: 0 for lang in LANGS}, "total": 0} for k in CLASSES}
    for c in d.changes:
        out[c.kind][c.lang] = out[c.kind].get(c.lang, 0) + 1
        out[c.kind]["total"] += 1
    return out


def _change_json(c: KernelChange) -> dict[str, Any]:
    return {"kind": c.kind, "lang": c.lang, "name": c.name, "qualified": c.qualified, "moved": c.moved,
            "match": c.match, "similarity": c.similarity, "compared": c.compared,
            "a": c.a.where() if c.a else None, "b": c.b.where() if c.b else None,
            "added_lines": c.added_lines, "removed_lines": c.removed_lines, "diff": c.diff}


def _side_json(s: TreeSide) -> dict[str, Any]:
    return {"version": s.version, "label": s.label, "citation": s.citation, "kernels": s.kernels,
            "fallbacks": s.fallbacks}


def to_json(d: TreeDiff) -> dict[str, Any]:
    out = {"format": FORMAT, "from": _side_json(d.a), "to": _side_json(d.b),
           "thresholds": {"same_name": d.threshold, "same_name_unique": d.unique_threshold,
                          "rename": d.rename_threshold},
           "counts": counts(d), "kernels": [_change_json(c) for c in d.changes]}
    if d.model is not None:     # only with --model (the JSON without it stays as it was)
        out["model"] = model_json(d.model)
    return out


def _where(c: KernelChange) -> str:
    assert c.a is not None and c.b is not None
    return c.b.qualified if not c.moved else f"{c.a.qualified} -> {c.b.qualified}" \
        if c.a.qualified != c.b.qualified else f"{c.b.qualified} ({c.a.file} -> {c.b.file})"


def change_line(c: KernelChange) -> str:
    how = c.match if c.match != "similarity" else f"similarity {c.similarity}"
    size = f"  +{c.added_lines} -{c.removed_lines}" if c.kind == CHANGED else ""
    span = ", compared kernel lines only (extraction fell back)" if c.compared == "span" else ""
    assert c.a is not None and c.b is not None
    tmpl = "" if c.a.template_params == c.b.template_params else \
        f"  template <{', '.join(c.a.template_params)}> -> <{', '.join(c.b.template_params)}>"
    return f"{c.kind:<8}{c.lang:<7}{_where(c)}{size}{tmpl}  ({how}{span})"


def summary(d: TreeDiff) -> str:
    n = counts(d)
    head = (f"vkc diff: {d.a.label} -> {d.b.label}: {d.a.kernels} -> {d.b.kernels} kernels "
            f"(extraction fell back to the kernel's own lines for {d.a.fallbacks} / {d.b.fallbacks})")
    rows = [head, f"{'class':<10}{'cuda':>7}{'triton':>8}{'total':>7}"]
    rows += [f"{k:<10}{n[k]['cuda']:>7}{n[k]['triton']:>8}{n[k]['total']:>7}" for k in CLASSES]
    rows += [change_line(c) for c in d.changes if c.kind in (CHANGED, MOVED)]
    if d.model is not None:
        rows += model_summary(d.model, (d.a.label, d.b.label))
    return "\n".join(rows) + "\n"


def fence(text: str) -> str:
    """A Markdown code fence longer than any backtick run in ``text``."""
    run = longest = 0
    for ch in text:
        run = run + 1 if ch == "`" else 0
        longest = max(longest, run)
    return "`" * max(3, longest + 1)


def diff_lines(text: str) -> list[tuple[str, str]]:
    """(css class, line) for the HTML page."""
    out = []
    for ln in text.splitlines():
        cls = "hunk" if ln.startswith("@@") else "file" if ln.startswith(("+++", "---")) else \
            "add" if ln.startswith("+") else "del" if ln.startswith("-") else "ctx"
        out.append((cls, ln))
    return out


def render(d: TreeDiff) -> dict[str, str]:
    """{"txt": summary, "json": ..., "md": ..., "html": ...}."""
    model = to_json(d)
    items = [{"k": k, "line": change_line(c) if c.kind in (CHANGED, MOVED) else ""}
             for k, c in zip(model["kernels"], d.changes, strict=True)]
    ctx: dict[str, Any] = {"d": model, "items": items, "classes": CLASSES, "langs": LANGS, "fence": fence,
                           "diff_lines": diff_lines, "m": model.get("model"), "step_classes": STEP_CLASSES}
    return {"txt": summary(d), "json": json.dumps(model, indent=2, sort_keys=True, ensure_ascii=False) + "\n",
            "md": render_template("vkc.diff/diff.md.j2", **ctx),
            "html": render_template("vkc.diff/diff.html.j2", **ctx)}


def write_diff(d: TreeDiff, out_dir: str | os.PathLike[str], texts: dict[str, str] | None = None) -> list[Path]:
    """Write ``diff.md``, ``diff.json`` and ``diff.html`` into ``out_dir``; returns the paths."""
    texts = texts or render(d)
    base = Path(out_dir)
    paths = []
    for ext in ("md", "json", "html"):
        p = base / f"diff.{ext}"
        try:
            base.mkdir(parents=True, exist_ok=True)
            replace_file(p, texts[ext])
        except OSError as e:
            raise WriteError(f"cannot write {p}: {e.strerror or e}", hint="check the --out folder") from e
        paths.append(p)
    return paths


__all__ = ["change_line", "counts", "diff_lines", "fence", "render", "summary", "to_json", "write_diff"]
