"""The fixtures a kernel test may take, as the test worker provides them (runs only inside :mod:`.worker`).

:func:`fixture_contexts`: ``default_vllm_config``, ``monkeypatch``, ``workspace_init``, and the
``@pytest.fixture`` functions of the test module and the ``conftest.py`` files above it (their own
fixtures resolved the same way; ``request.param`` from the test's ``indirect`` parametrize value or
the fixture's first ``params``); any other is :class:`~.harness.Unsatisfied`.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

from vkc.testtrace.harness import Unsatisfied

__all__ = ["fixture_contexts"]


@contextlib.contextmanager
def _default_vllm_config() -> Iterator[Any]:
    from vllm.config import VllmConfig, set_current_vllm_config

    config = VllmConfig()
    with set_current_vllm_config(config):
        yield config


@contextlib.contextmanager
def _monkeypatch() -> Iterator[Any]:
    import pytest

    with pytest.MonkeyPatch.context() as mp:
        yield mp


@contextlib.contextmanager
def _workspace_init() -> Iterator[None]:
    import torch
    from vllm.v1.worker.workspace import init_workspace_manager, reset_workspace_manager

    init_workspace_manager(torch.device("cpu"))
    try:
        yield None
    finally:
        reset_workspace_manager()


_FIXTURES = {"default_vllm_config": _default_vllm_config, "monkeypatch": _monkeypatch,
             "workspace_init": _workspace_init}


@contextlib.contextmanager
def fixture_contexts(names: list[str], stack: contextlib.ExitStack, module: Any = None,
                     indirect: Mapping[str, Any] | None = None) -> Iterator[dict[str, Any]]:
    """Enter each fixture of ``names`` (all or :class:`Unsatisfied`); yields name -> value.

    With ``module`` (the test's module) a fixture the harness does not provide is looked up as a
    ``@pytest.fixture`` of the module or of a ``conftest.py`` above it and called, its own fixtures
    resolved the same way; one that takes pytest's ``request`` gets a stand-in whose ``param`` is
    the test's parametrize value for an ``indirect`` parameter, else the fixture's first ``params``."""
    missing = [n for n in names if n not in _FIXTURES and (module is None or _find_fixture(n, module) is None)]
    if missing:
        raise Unsatisfied(f"fixture{'s' if len(missing) > 1 else ''} {', '.join(missing)} not provided by the harness")
    yield {n: _enter(n, module, stack, 0, indirect or {}) for n in names}


class _Request:
    """The part of pytest's ``request`` a parametrized fixture reads."""

    def __init__(self, name: str, param: Any, module: Any) -> None:
        self.fixturename, self.param, self.module = name, param, module
        self.node = self
        self.name = name

    def getfixturevalue(self, name: str) -> Any:
        raise Unsatisfied(f"fixture {self.fixturename} asks request.getfixturevalue({name!r})")

    def addfinalizer(self, _fn: Any) -> None:
        return None


def _conftests(module: Any) -> list[Any]:
    import importlib

    parts = module.__name__.split(".")[:-1]
    out = []
    for i in range(len(parts), 0, -1):
        try:
            out.append(importlib.import_module(".".join(parts[:i] + ["conftest"])))
        except Exception:  # noqa: BLE001, S112 -- a folder without (an importable) conftest.py
            continue
    return out


def _fixture_def(name: str, module: Any) -> Any | None:
    for mod in [module, *_conftests(module)]:
        fx = getattr(mod, name, None)
        if callable(getattr(fx, "_get_wrapped_function", None)):
            return fx
    return None


def _find_fixture(name: str, module: Any) -> Any | None:
    """The function under the ``@pytest.fixture`` ``name`` of ``module`` or a conftest above it."""
    fx = _fixture_def(name, module)
    return fx._get_wrapped_function() if fx is not None else None


def _enter(name: str, module: Any, stack: contextlib.ExitStack, depth: int, indirect: Mapping[str, Any]) -> Any:
    import inspect

    if name in _FIXTURES:
        return stack.enter_context(_FIXTURES[name]())
    fx = _fixture_def(name, module) if module is not None and depth < 4 else None
    if fx is None:
        raise Unsatisfied(f"fixture {name} not provided by the harness")
    fn = fx._get_wrapped_function()
    args = [p for p, v in inspect.signature(fn).parameters.items() if v.default is inspect.Parameter.empty]
    kwargs = {}
    if "request" in args:
        params = getattr(getattr(fx, "_fixture_function_marker", None), "params", None)
        if name in indirect:
            param = indirect[name]
        elif params:
            param = params[0]
            param = param.values[0] if hasattr(param, "values") and hasattr(param, "marks") else param
        else:
            raise Unsatisfied(f"fixture {name} takes pytest's request and has no params (not provided by the harness)")
        kwargs["request"] = _Request(name, param, module)
    kwargs.update({a: _enter(a, module, stack, depth + 1, indirect) for a in args if a != "request"})
    if inspect.isgeneratorfunction(fn):
        return stack.enter_context(contextlib.contextmanager(fn)(**kwargs))
    return fn(**kwargs)
