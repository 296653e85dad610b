"""vkc — the vLLM Kernel Collector.

The public Python API (:mod:`vkc.api`), imported on first use so that ``import vkc`` stays
light: :func:`collect`, :func:`list_kernels`, :func:`load_model`, :func:`verify`.

``vkc.verify`` is the API function even though ``vkc/verify/`` is also the verify stage's
package: importing the package (``from vkc.verify import ...``, ``import vkc.verify``) keeps
it in ``sys.modules`` as usual but does not rebind the ``vkc.verify`` attribute.
"""
from __future__ import annotations

import sys
import types
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = ["__version__", "collect", "list_kernels", "load_model", "verify"]

_API = frozenset({"collect", "list_kernels", "load_model", "verify"})

if TYPE_CHECKING:
    from vkc.api import collect, list_kernels, load_model, verify


def __getattr__(name: str) -> Any:
    if name in _API:
        from vkc import api
        return getattr(api, name)
    raise AttributeError(f"module 'vkc' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_API})


class _Package(types.ModuleType):
    """``vkc``'s module type: the import system's binding of a subpackage named like an API
    function (``vkc.verify``) onto ``vkc`` is skipped, so the attribute stays the function."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _API and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
