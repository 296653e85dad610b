"""Match the kernels of two trees: content hash, then qualified name, then similarity of source.

1. ``hash``: equal (language, unit status, sha256 of the normalised unit) -- the same kernel,
   wherever it lives now (``moved`` when its qualified name or file differs; not across names when either
   name is still there on the other side: that kernel is matched by name);
2. ``span-hash``: where either side's extraction fell back, equal kernel source lines;
3. ``name``: the same qualified name (and language);
4. ``similarity``: the line-based :class:`difflib.SequenceMatcher` ratio of the compared texts,
   first among kernels of the same language and function name (>= ``threshold``; >= ``unique_threshold``
   when that name is left exactly once on each side: a rewrite in a new home), then among
   kernels of the same language (a rename, >= ``rename_threshold``); pairs are taken greedily,
   best ratio first, ties by qualified names.
What is left is ``removed`` (only in A) or ``added`` (only in B).
"""
from __future__ import annotations

import difflib
import hashlib
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import replace

from vkc.diff.records import (
    ADDED,
    CHANGED,
    CLASSES,
    EXTRACTED,
    FALLBACK,
    MOVED,
    REMOVED,
    UNCHANGED,
    KernelChange,
    KernelUnit,
)

THRESHOLD = 0.5          # same language and function name
UNIQUE_THRESHOLD = 0.25  # same language and a function name left once on each side
RENAME_THRESHOLD = 0.8   # same language, another function name
RENAME_MAX_PAIRS = 40_000  # above this many candidate pairs the rename pass is skipped (said in the log)


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _texts(a: KernelUnit, b: KernelUnit) -> tuple[str, str, str]:
    if a.status == EXTRACTED and b.status == EXTRACTED:
        return "unit", a.text, b.text
    return "span", a.span, b.span


def ratio(x: str, y: str) -> float:
    return difflib.SequenceMatcher(None, x.splitlines(), y.splitlines()).ratio()


def pair(a: KernelUnit, b: KernelUnit, match: str) -> KernelChange:
    compared, ta, tb = _texts(a, b)
    if ta == tb:
        same = KernelChange(UNCHANGED, b.lang, b.name, a, b, match, 1.0, compared)
        return replace(same, kind=MOVED) if same.moved else same
    lines = list(difflib.unified_diff(ta.splitlines(), tb.splitlines(), fromfile=f"a/{a.qualified}",
                                      tofile=f"b/{b.qualified}", lineterm="", n=3))
    plus = sum(1 for ln in lines[2:] if ln.startswith("+"))
    minus = sum(1 for ln in lines[2:] if ln.startswith("-"))
    return KernelChange(CHANGED, b.lang, b.name, a, b, match, round(ratio(ta, tb), 4), compared,
                        "\n".join(lines) + "\n", plus, minus)


def _order(u: KernelUnit) -> tuple[str, str]:
    return (u.qualified, u.file)


def _pair_groups(left: dict[str, KernelUnit], right: dict[str, KernelUnit],
                 key: Callable[[KernelUnit], object], match: str,
                 ok: Callable[[KernelUnit, KernelUnit], bool] = lambda a, b: True) -> list[KernelChange]:
    """Pair units of equal ``key``: same qualified name first, then same function name, then in order."""
    ga: dict[object, list[KernelUnit]] = defaultdict(list)
    gb: dict[object, list[KernelUnit]] = defaultdict(list)
    for u in left.values():
        ga[key(u)].append(u)
    for u in right.values():
        gb[key(u)].append(u)
    out = []
    for k in sorted(set(ga) & set(gb), key=repr):
        la, lb = sorted(ga[k], key=_order), sorted(gb[k], key=_order)
        for same in (lambda a, b: a.qualified == b.qualified, lambda a, b: a.name == b.name, lambda a, b: True):
            for a in list(la):
                b = next((b for b in lb if same(a, b) and ok(a, b)), None)
                if b is not None:
                    la.remove(a)
                    lb.remove(b)
                    out.append(pair(a, b, match))
    for c in out:
        assert c.a is not None and c.b is not None
        del left[c.a.qualified], right[c.b.qualified]
    return out


def _greedy(cands: Iterable[tuple[float, KernelUnit, KernelUnit]], left: dict[str, KernelUnit],
            right: dict[str, KernelUnit]) -> list[KernelChange]:
    out = []
    for _score, a, b in sorted(cands, key=lambda t: (-t[0], t[1].qualified, t[2].qualified)):
        if a.qualified in left and b.qualified in right:
            del left[a.qualified], right[b.qualified]
            out.append(pair(a, b, "similarity"))
    return out


def _similar(left: dict[str, KernelUnit], right: dict[str, KernelUnit], threshold: float,
             same_name: bool, log: Callable[[str], None], unique_threshold: float | None = None) -> list[KernelChange]:
    by_b: dict[object, list[KernelUnit]] = defaultdict(list)
    for b in sorted(right.values(), key=_order):
        by_b[(b.lang, b.name) if same_name else b.lang].append(b)
    todo = [(a, by_b.get((a.lang, a.name) if same_name else a.lang, [])) for a in sorted(left.values(), key=_order)]
    n_a: dict[tuple[str, str], int] = defaultdict(int)
    for a in left.values():
        n_a[(a.lang, a.name)] += 1
    n = sum(len(bs) for _a, bs in todo)
    if not same_name and n > RENAME_MAX_PAIRS:
        log(f"vkc: warning: rename detection skipped ({n} candidate pairs > {RENAME_MAX_PAIRS})")
        return []
    cands = []
    for a, bs in todo:
        t = threshold
        if same_name and unique_threshold is not None and len(bs) == 1 and n_a[(a.lang, a.name)] == 1:
            t = unique_threshold
        for b in bs:
            if not same_name and a.name == b.name:
                continue              # the same-name pass already refused this pair
            _, ta, tb = _texts(a, b)
            sm = difflib.SequenceMatcher(None, ta.splitlines(), tb.splitlines())
            if sm.real_quick_ratio() >= t and sm.quick_ratio() >= t:
                r = sm.ratio()
                if r >= t:
                    cands.append((r, a, b))
    return _greedy(cands, left, right)


def match_units(units_a: Iterable[KernelUnit], units_b: Iterable[KernelUnit], *, threshold: float = THRESHOLD,
                rename_threshold: float = RENAME_THRESHOLD, unique_threshold: float = UNIQUE_THRESHOLD,
                log: Callable[[str], None] = lambda s: None) -> tuple[KernelChange, ...]:
    left = {u.qualified: u for u in units_a}
    right = {u.qualified: u for u in units_b}
    names_a, names_b = set(left), set(right)

    def move_ok(a: KernelUnit, b: KernelUnit) -> bool:
        # a content match across names is a move only when neither name lives on on the other side: a kernel
        # kept under its own name (two copies, e.g. nvidia/ and amd/, one of them edited) is matched by name
        return a.qualified == b.qualified or (a.qualified not in names_b and b.qualified not in names_a)

    out = _pair_groups(left, right, lambda u: (u.lang, u.status, _sha(u.text)), "hash", ok=move_ok)
    out += _pair_groups(left, right, lambda u: (u.lang, _sha(u.span)), "span-hash",
                        ok=lambda a, b: FALLBACK in (a.status, b.status) and move_ok(a, b))
    out += _pair_groups(left, right, lambda u: (u.lang, u.qualified), "name")
    out += _similar(left, right, threshold, True, log, unique_threshold)
    out += _similar(left, right, rename_threshold, False, log)
    out += [KernelChange(REMOVED, u.lang, u.name, u, None) for u in left.values()]
    out += [KernelChange(ADDED, u.lang, u.name, None, u) for u in right.values()]
    return tuple(sorted(out, key=lambda c: (CLASSES.index(c.kind), c.lang, c.qualified,
                                            c.a.qualified if c.a else "")))


__all__ = ["RENAME_THRESHOLD", "THRESHOLD", "UNIQUE_THRESHOLD", "match_units", "pair", "ratio"]
