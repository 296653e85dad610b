"""Recipe registry: kernel qualified name ("module:qualname") -> recipe module.

Every module in this package except ``base`` is a recipe (see :mod:`.base` for the
interface); it is discovered automatically, so adding ``recipes/<family>.py`` with a
``KERNELS`` tuple registers it.  :data:`RECIPE_MODULES` lists the expected modules in
a fixed order (others found on disk are appended, sorted).
"""
from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType

RECIPE_MODULES: tuple[str, ...] = (
    "attention", "moe", "quant", "norms", "activation", "rotary", "sampling", "ssm", "lora",
)
_REQUIRED = ("KERNELS", "FAMILY", "WORKLOADS", "DEFAULT_WORKLOAD", "shapes", "call")
_registry: dict[str, ModuleType] | None = None


def _module_names() -> list[str]:
    found = {m.name for m in pkgutil.iter_modules(__path__) if m.name != "base" and not m.name.startswith("_")}
    return [n for n in RECIPE_MODULES if n in found] + sorted(found - set(RECIPE_MODULES))


def registry() -> dict[str, ModuleType]:
    """All recipes by kernel qualified name (first registration wins)."""
    global _registry
    if _registry is None:
        reg: dict[str, ModuleType] = {}
        for name in _module_names():
            mod = importlib.import_module(f"{__name__}.{name}")
            missing = [a for a in _REQUIRED if not hasattr(mod, a)]
            if missing:
                raise RuntimeError(f"recipe {mod.__name__} lacks {missing}")
            if mod.DEFAULT_WORKLOAD not in mod.WORKLOADS:
                raise RuntimeError(f"recipe {mod.__name__}: DEFAULT_WORKLOAD not in WORKLOADS")
            for k in mod.KERNELS:
                reg.setdefault(k, mod)
        _registry = reg
    return _registry


def get_recipe(qualified: str) -> ModuleType | None:
    """The recipe serving ``module:qualname``, or None."""
    return registry().get(qualified)


def get_recipe_module(module_name: str) -> ModuleType:
    """Import a recipe by its module name (used by the trace worker)."""
    return importlib.import_module(f"{__name__}.{module_name}")


__all__ = ["RECIPE_MODULES", "registry", "get_recipe", "get_recipe_module"]
