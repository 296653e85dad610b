"""``vkc diff``: the kernels of two vLLM trees, matched and compared.  Entry: :func:`diff_trees`.

* :func:`diff_trees` (tree A, tree B) -> :class:`TreeDiff`: every kernel of both indexes as its
  extracted unit (cached per tree and kernel, :mod:`vkc.diff.units`), matched by content hash,
  qualified name, then similarity (:mod:`vkc.diff.match`), classed added / removed / moved /
  changed / unchanged, with a unified diff of each changed kernel;
* with ``--model M``: :func:`vkc.diff.model.model_diff` traces M's step on both trees and adds what
  the step runs in each and how its launches changed (:mod:`vkc.diff.launches`);
* :func:`render` / :func:`write_diff`: the summary, JSON, Markdown and HTML (:mod:`vkc.diff.render`).
"""
from __future__ import annotations

from collections.abc import Callable

from vkc.diff.match import RENAME_THRESHOLD, THRESHOLD, UNIQUE_THRESHOLD, match_units
from vkc.diff.records import FALLBACK, KernelChange, KernelUnit, TreeDiff, TreeSide
from vkc.diff.render import render, summary, write_diff
from vkc.records import SourceTree


def diff_trees(a: SourceTree, b: SourceTree, *, jobs: int = 1, use_cache: bool = True,
               threshold: float = THRESHOLD, rename_threshold: float = RENAME_THRESHOLD,
               unique_threshold: float = UNIQUE_THRESHOLD, log: Callable[[str], None] = lambda s: None) -> TreeDiff:
    """Compare the kernels of tree ``a`` (old) and tree ``b`` (new)."""
    from vkc.diff.units import tree_units
    from vkc.index import build_index

    sides, units = [], []
    for tree in (a, b):
        us = tree_units(build_index(tree), jobs=jobs, use_cache=use_cache, log=log)
        units.append(us)
        label = f"local tree {tree.origin}" if tree.version == "local" else tree.label
        sides.append(TreeSide(tree.version, tree.citation, len(us), sum(u.status == FALLBACK for u in us), label))
    changes = match_units(units[0], units[1], threshold=threshold, rename_threshold=rename_threshold,
                          unique_threshold=unique_threshold, log=log)
    return TreeDiff(sides[0], sides[1], changes, threshold, rename_threshold, unique_threshold)


__all__ = ["KernelChange", "KernelUnit", "TreeDiff", "TreeSide", "diff_trees", "render", "summary", "write_diff"]
