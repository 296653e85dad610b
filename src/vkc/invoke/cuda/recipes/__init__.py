"""Recipe registry: qualified kernel name ("csrc/file.cu:name") -> Recipe."""
from __future__ import annotations

from vkc.invoke.cuda.recipes.base import Ctx, Recipe

_MODULES = ("norm", "activation", "rotary", "cache", "attention", "moe", "moe_grouped", "quant", "sampler", "mamba",
            "allreduce")


def _build() -> dict[str, Recipe]:
    import importlib
    reg: dict[str, Recipe] = {}
    for mod in _MODULES:
        try:
            m = importlib.import_module(f"vkc.invoke.cuda.recipes.{mod}")
        except ModuleNotFoundError as e:  # a family not written yet
            if e.name == f"vkc.invoke.cuda.recipes.{mod}":
                continue
            raise
        for r in m.RECIPES:
            for k in r.kernels:
                assert k not in reg, k
                reg[k] = r
    return dict(sorted(reg.items()))


REGISTRY: dict[str, Recipe] = _build()


def find(qualified: str) -> Recipe | None:
    """The recipe for a qualified kernel name; ``@LINE`` overload suffixes are ignored."""
    return REGISTRY.get(qualified) or REGISTRY.get(qualified.split("@", 1)[0])


__all__ = ["Ctx", "Recipe", "REGISTRY", "find"]
