"""The invocation core both language halves share.

* :mod:`.recipe` -- the one recipe protocol (:class:`Recipe`), :mod:`.registry` -- its registry;
* :mod:`.dims` -- :class:`ModelDims`, the one normalisation of a model's sizes, and :class:`Need`;
* :mod:`.policy` -- the one workload rule; :mod:`.header` -- the one provenance header;
* :mod:`.family` -- the one family vocabulary; templates and escaping: :mod:`vkc.templating`.
"""
from __future__ import annotations

from vkc.invoke.core.dims import ModelDims, Need
from vkc.invoke.core.family import Family
from vkc.invoke.core.header import header_lines, header_text
from vkc.invoke.core.policy import WORKLOADS, choose_workload
from vkc.invoke.core.recipe import Recipe
from vkc.invoke.core.registry import RecipeRegistryError, Registry, registry

__all__ = ["WORKLOADS", "Family", "ModelDims", "Need", "Recipe", "RecipeRegistryError", "Registry",
           "choose_workload", "header_lines", "header_text", "registry"]
