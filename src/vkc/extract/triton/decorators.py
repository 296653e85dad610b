"""Decorator handling for the closure collector.

Triton decorators (``@triton.jit``, ``@triton.autotune``, ``@triton.heuristics``, gluon's
``@aggregate``) are kept with host-side hooks dropped and autotune configs evaluated to
literals; other decorators are removed. Mixed into :class:`~vkc.extract.triton.closure.Collector`.
"""
from __future__ import annotations

import ast
from collections.abc import Callable

from vkc.errors import ExtractionError
from vkc.extract.triton.items import Edit, Item, Names, _line_end, apply_edits, span
from vkc.extract.triton.modinfo import ModuleInfo, source_segment
from vkc.extract.triton.values import ExtRef, NotLiteral, Unresolved, to_literal

AUTOTUNE = {"triton.autotune", "triton.runtime.autotune", "triton.runtime.autotuner.autotune"}
HEURISTICS = {"triton.heuristics", "triton.runtime.heuristics", "triton.runtime.autotuner.heuristics"}
_DROP_KW = {"launch_metadata", "repr", "prune_configs_by", "do_bench", "pre_hook", "post_hook",
            "early_config_prune", "perf_model"}


class DecoratorScanner:
    """Decorator scanning (needs ``prog``, ``notes``, ``scan_expr``, ``ext_module`` and friends)."""

    def _is_aggregate(self, module: str, node: ast.ClassDef) -> bool:
        for d in node.decorator_list:
            try:
                v = self.prog.eval(d.func if isinstance(d, ast.Call) else d, module)
            except Unresolved:
                continue
            if isinstance(v, ExtRef) and v.path.endswith("_aggregate"):
                return True
        return False

    def scan_decorator(self, it: Item, info: ModuleInfo, d: ast.expr) -> None:
        callee = d.func if isinstance(d, ast.Call) else d
        try:
            v = self.prog.eval(callee, info.name)
        except Unresolved:
            v = None
        path = v.path if isinstance(v, ExtRef) else None
        name = callee.id if isinstance(callee, ast.Name) else None
        s, e = span(info, d)
        s = (s[0], s[1] - 1)  # include '@'
        if name in ("staticmethod", "classmethod") and v is None:
            it.edits.append(Edit(s, _line_end(info, e), lambda n: ""))
            return
        if path is None:
            txt = source_segment(info.text, d)
            self.notes.append(f"dropped decorator @{txt} of {it.name} (not a Triton decorator)")
            it.edits.append(Edit(s, _line_end(info, e), lambda n: ""))
            return
        self.scan_expr(it, info, callee, set(), host=True)
        if not isinstance(d, ast.Call):
            return
        parts: list[Callable[[Names], str]] = []
        changed = False
        for arg in d.args:
            parts.append(self._host_part(it, info, arg, path))
        for kw in d.keywords:
            if kw.arg in _DROP_KW:
                changed = True
                self.notes.append(f"dropped `{kw.arg}=` from @{path.split('.')[-1]} of {it.name} "
                                  f"(host-side hook; not needed to compile or launch)")
                continue
            if path in AUTOTUNE and kw.arg == "configs":
                parts.append(self._configs_part(it, info, kw.value))
                continue
            part = self._host_part(it, info, kw.value, path)
            parts.append(lambda n, k=kw.arg, p=part: f"{k}={p(n)}")
        cs, ce = span(info, callee)

        def render(names, parts=parts, cs=cs, ce=ce, d=d):
            head = apply_edits(info, cs, ce, self._edits_in(it, cs, ce), names)
            return "@" + head + "(" + ", ".join(p(names) for p in parts) + ")"
        del changed
        it.edits.append(Edit(s, e, render))

    def _edits_in(self, it, s, e):
        return [x for x in it.edits if x.start >= s and x.end <= e]

    def _host_part(self, it, info, node, path) -> Callable[[Names], str]:
        before = len(it.edits)
        self.scan_expr(it, info, node, set(), host=True)
        mine = it.edits[before:]
        del it.edits[before:]
        s, e = span(info, node)
        return lambda names: apply_edits(info, s, e, mine, names)

    def _configs_part(self, it, info, node) -> Callable[[Names], str]:
        refs = self._global_names(node, set())
        if all(self._is_ext_module(info.name, n) for n in refs):
            part = self._host_part(it, info, node, "")
            return lambda names: "configs=" + part(names)
        try:
            v = self.prog.eval(node, info.name)
            uses: set[str] = set()
            items = [to_literal(c, uses) for c in v]
        except (Unresolved, NotLiteral, TypeError) as e:
            raise ExtractionError(f"autotune configs of {it.name} ({info.file}:{node.lineno}) cannot be "
                                  f"evaluated: {e}", hint="configs depend on runtime state") from None
        for u in sorted(uses):
            it.dep(self.ext_module(u))
        self.notes.append(f"autotune configs of {it.name} evaluated to {len(items)} literal triton.Config "
                          f"entries for CUDA (H100)")
        body = "".join(f"        {x},\n" for x in items)
        return lambda names: "configs=[\n" + body + "    ]"
