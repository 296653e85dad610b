"""What the reference stage needs of a launch (:class:`LaunchFacts`), and whether a mapping holds for it."""
from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from vkc.reference.records import RefSpec

__all__ = ["LaunchFacts", "check_launch"]

_ARG = re.compile(r"\ba\[['\"](\w+)['\"]\]")
_CONST = re.compile(r"\bc\[['\"](\w+)['\"]\]")


@dataclass(frozen=True)
class LaunchFacts:
    """What the reference stage needs of one configuration of the launch (no plan types)."""

    name: str
    values: Mapping[str, Any]        # constexprs and scalar arguments by name
    tensors: frozenset[str]          # parameters passed a tensor
    params: frozenset[str]           # every runtime parameter
    constexprs: frozenset[str] = frozenset()
    shapes: Mapping[str, Any] = dataclasses.field(default_factory=dict)  # the plan's shapes (``test``, its params)


def _check_launch(spec: RefSpec, cfg: LaunchFacts) -> str | None:
    for key, want in spec.requires:
        if key not in cfg.values:
            return f"{cfg.name}: the launch has no {key} (the mapping needs {key}={want!r})"
        if cfg.values[key] != want or type(cfg.values[key]) is not type(want):
            return f"{cfg.name}: {key}={cfg.values[key]!r}, the mapping holds only for {key}={want!r}"
    for p in spec.requires_tensor:
        if p not in cfg.tensors:
            return f"{cfg.name}: {p} is not a tensor in this launch"
    used_args = {m for _n, e in spec.args for m in _ARG.findall(e)}
    used_consts = {m for _n, e in spec.args for m in _CONST.findall(e)}
    missing = sorted(used_args - cfg.params)
    if missing:
        return f"{cfg.name}: the kernel has no parameter(s) {missing}"
    missing = sorted(m for m in used_consts if m not in cfg.values)
    if missing:
        return f"{cfg.name}: the launch has no constexpr(s) {missing}"
    for out in spec.outputs:
        if out.param not in cfg.tensors:
            return f"{cfg.name}: output {out.param} is not a tensor in this launch"
    return None


def check_launch(spec: RefSpec, configs: Sequence[LaunchFacts]) -> str | None:
    """Why ``spec``'s mapping does not hold for the launch's configurations (None: it holds)."""
    for cfg in configs:
        why = _check_launch(spec, cfg)
        if why:
            return why
    return None
