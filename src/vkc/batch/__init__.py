"""Batch runs: ``vkc collect --all`` and ``vkc verify`` over many artifacts.

* :func:`collect_all`: every entry kernel (x model x workload) in isolated worker processes;
* :func:`verify_many`: static checks, parallel compiles, one-at-a-time runs with timeouts;
* :mod:`vkc.batch.cli_hooks`: the flags and CLI entry points.

Exports load lazily (PEP 562) so that building the CLI parser stays cheap.
"""
from __future__ import annotations

import importlib

_EXPORTS = {
    "BatchReport": "collect_all", "collect_all": "collect_all", "format_summary": "collect_all",
    "Job": "plan", "collect_name": "plan", "model_slug": "plan", "plan_jobs": "plan",
    "expand_artifacts": "verify_many", "verify_many": "verify_many",
}
__all__ = ["BatchReport", "Job", "collect_all", "collect_name", "expand_artifacts", "format_summary", "model_slug",
           "plan_jobs", "verify_many"]
assert __all__ == sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f"vkc.batch.{_EXPORTS[name]}"), name)
        globals()[name] = value  # after the import, which binds the submodule of the same name
        return value
    raise AttributeError(f"module 'vkc.batch' has no attribute {name!r}")
