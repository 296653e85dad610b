"""The CUDA half inside the test worker (runs only there): record a compiled op's call.

:class:`OpCallMode` is a ``TorchDispatchMode`` entered around one test run of an op job.  At the
first call of a target op (``"_C::rms_norm"``; every compiled op is a recording CPU stand-in,
:mod:`.standins`) it records the call -- each argument by the op's schema name, tensors described
against their storages (ids ``s0``, ``s1``, ... in order of appearance), scalars as JSON -- plus the
whole-storage contents of the small integer tensors whose values the test made, and raises
:class:`OpCaptured` before the stand-in runs.  To know which values those are it follows every aten
op of the test: a storage a stand-in or a recorded (not run) Triton launch took or returned is
*touched* (:data:`.standins.TOUCHED`), and so is whatever an aten op computes from a touched one; a
storage from ``torch.empty`` that nothing wrote all of yet is *uninitialised*.  Neither gets contents;
their producer says why (``noop:<op>`` / ``uninit``; ``test`` for the test's own values).
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from .standins import SCHEMAS, TOUCHED

__all__ = ["MAX_VALUES", "OpCallMode", "OpCaptured", "patched_opcheck", "record_call", "scalar_json"]

MAX_VALUES = 65536          # integer storages up to this many elements get their contents recorded
_EMPTY = {"empty", "empty_like", "empty_strided", "new_empty", "new_empty_strided"}


class OpCaptured(BaseException):
    """Raised at the target op's first call (a BaseException: a test's ``except Exception`` must not
    swallow it)."""


def _key(t: Any) -> int:
    return int(t.untyped_storage()._cdata)


def _flat(v: Any) -> list[Any]:
    import torch

    if isinstance(v, torch.Tensor):
        return [v]
    if isinstance(v, (list, tuple)):
        return [x for e in v for x in _flat(e)]
    if isinstance(v, dict):
        return [x for e in v.values() for x in _flat(e)]
    return []


def scalar_json(v: Any) -> Any:
    """A scalar argument as JSON, in the launch tracer's tags (``{"__float__": "inf"}``,
    ``{"__torch_dtype__": "bfloat16"}``, ``{"__repr__": ...}`` for anything else)."""
    import math

    import torch

    if v is None or isinstance(v, (bool, str)):
        return v
    if isinstance(v, int):
        return int(v)
    if isinstance(v, float):
        return v if math.isfinite(v) else {"__float__": repr(v)}
    if isinstance(v, torch.dtype):
        return {"__torch_dtype__": str(v).replace("torch.", "")}
    if isinstance(v, (list, tuple)):
        return [scalar_json(x) for x in v]
    return {"__repr__": repr(v)}


def _covers(t: Any) -> bool:
    """``t`` is all of its storage (a write through it leaves no element unwritten)."""
    return int(t.storage_offset()) == 0 and t.numel() * t.element_size() == int(t.untyped_storage().nbytes()) \
        and t.is_contiguous()


class _Call:
    """One op call's description (worker JSON, read back by ``event_from_worker``)."""

    def __init__(self, uninit: set[int]) -> None:
        self.ids: dict[int, str] = {}
        self.tensors: dict[str, Any] = {}
        self.producer: dict[str, str] = {}
        self.uninit = uninit

    def tensor(self, t: Any) -> dict[str, Any]:
        k = _key(t)
        sid = self.ids.get(k)
        if sid is None:
            sid = self.ids[k] = f"s{len(self.ids)}"
            self.tensors[sid] = t
            touched = TOUCHED.get(k)
            self.producer[sid] = (f"noop:{touched[0]}" if touched else "uninit" if k in self.uninit
                                  else "test" if t.device.type == "cpu" else t.device.type)
        return {"kind": "tensor", "dtype": str(t.dtype).replace("torch.", ""), "shape": list(t.shape),
                "stride": list(t.stride()), "offset": int(t.storage_offset()), "itemsize": t.element_size(),
                "base": sid, "base_nbytes": int(t.untyped_storage().nbytes()), "producer": self.producer[sid]}

    def arg(self, v: Any) -> Any:
        import torch

        if isinstance(v, torch.Tensor):
            return self.tensor(v)
        if isinstance(v, (list, tuple)) and any(isinstance(x, torch.Tensor) for x in v):
            return [self.arg(x) if x is not None else {"kind": "scalar", "value": None} for x in v]
        return {"kind": "scalar", "value": scalar_json(v)}

    def contents(self) -> dict[str, list[list[Any]]]:
        """Storage id -> run-length values (``[[value, count], ...]``) of the test's integer storages."""
        import torch

        out: dict[str, list[list[Any]]] = {}
        for sid, t in sorted(self.tensors.items()):
            dt = t.dtype
            nbytes = int(t.untyped_storage().nbytes())
            if self.producer[sid] != "test" or dt.is_floating_point or dt.is_complex or nbytes % t.element_size():
                continue
            numel = nbytes // t.element_size()
            if numel > MAX_VALUES:
                continue
            flat = torch.empty(0, dtype=dt).set_(t.untyped_storage(), 0, (numel,), (1,))
            runs: list[list[Any]] = []
            for v in flat.tolist():
                if runs and runs[-1][0] == v:
                    runs[-1][1] += 1
                else:
                    runs.append([v, 1])
            out[sid] = runs
        return out


def record_call(func: Any, args: tuple[Any, ...], kwargs: dict[str, Any], uninit: set[int]) -> dict[str, Any]:
    """The worker JSON of one op call: ``{"event": {...}, "contents": {sid: runs}}``."""
    schema = func._schema
    call = _Call(uninit)
    qual = f"{func.namespace}::{schema.name.split('::')[-1]}"
    names = [a.name for a in schema.arguments]
    pairs = list(zip(names, args)) + [(k, kwargs[k]) for k in names if k in kwargs]
    written = sorted(a.name for a in schema.arguments if a.alias_info is not None and a.alias_info.is_write)
    ev = {"index": 0, "kind": "op", "name": qual, "layer": None,
          "module": None, "args": [[n, call.arg(v)] for n, v in pairs], "outputs": [],
          "overload": func._overloadname, "written": written,
          "schema": SCHEMAS.get(qual if func._overloadname == "default" else f"{qual}.{func._overloadname}",
                                str(schema))}
    return {"event": ev, "contents": call.contents()}


class OpCallMode:
    """Enter around one test run; ``called``: every compiled op the test called, in order.

    With ``kernel`` a target call that vkc's dispatch rules say launches another of the op's kernels
    (:func:`vkc.invoke.cuda.modeltraced.dispatch.call_launches` False) is passed over (noted in
    ``other``) and the test goes on to its next call."""

    def __init__(self, targets: frozenset[str], kernel: str | None = None) -> None:
        from torch.utils._python_dispatch import TorchDispatchMode

        self.targets = targets
        self.kernel = kernel
        self.call: dict[str, Any] | None = None
        self.called: list[str] = []
        self.other: list[str] = []
        self.uninit: set[int] = set()
        outer = self

        class _Mode(TorchDispatchMode):
            def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
                return outer.dispatch(func, args, kwargs or {})

        self._mode = _Mode()

    def dispatch(self, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if func.namespace != "aten":
            qual = f"{func.namespace}::{func._schema.name.split('::')[-1]}"
            self.called.append(qual)
            if qual in self.targets:
                call = record_call(func, args, kwargs, self.uninit)
                if not self._elsewhere(call):
                    self.call = call
                    raise OpCaptured()
            # a stand-in: it marks what it took and returned (TOUCHED); the arguments its schema does
            # not write keep their values (the mark the stand-in leaves on them is taken back)
            read = {_key(t) for a, v in zip(func._schema.arguments, args)
                    if a.alias_info is None or not a.alias_info.is_write for t in _flat(v)}
            read -= {_key(t) for a, v in zip(func._schema.arguments, args)
                     if a.alias_info is not None and a.alias_info.is_write for t in _flat(v)}
            clean = {k for k in read if k not in TOUCHED}
            try:
                return func(*args, **kwargs)
            finally:
                for k in clean:
                    TOUCHED.pop(k, None)
        out = func(*args, **kwargs)
        if func.is_view:
            return out
        ins = _flat(args) + _flat(kwargs)
        in_keys = {_key(t) for t in ins}
        taint = next((TOUCHED[k][0] for k in in_keys if k in TOUCHED), None)
        base = func._schema.name.split("::")[-1]
        written = [v for a, v in zip(func._schema.arguments, args)
                   if a.alias_info is not None and a.alias_info.is_write]
        for t in _flat(written) + _flat(out):
            k = _key(t)
            fresh = k not in in_keys         # a new result: a storage the test made now
            if taint is not None:
                TOUCHED.setdefault(k, []).append(taint)
            elif fresh:
                TOUCHED.pop(k, None)
            if base in _EMPTY and fresh:
                self.uninit.add(k)
            elif fresh or _covers(t):        # a partial write leaves the rest uninitialised
                self.uninit.discard(k)
        return out

    def _elsewhere(self, call: dict[str, Any]) -> bool:
        """The call launches another kernel of its op (by vkc's dispatch rules)."""
        if self.kernel is None:
            return False
        from vkc.invoke.cuda.modeltraced.dispatch import call_launches, launched_kernels
        from vkc.modeltrace.records import event_from_worker

        ev = event_from_worker(call["event"])
        if call_launches(self.kernel, ev) is not False:
            return False
        self.other.append(f"{ev.name} -> {', '.join(sorted(launched_kernels(ev) or ()))}")
        return True

    def __enter__(self) -> Any:
        self._mode.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._mode.__exit__(*exc)


@contextlib.contextmanager
def patched_opcheck() -> Iterator[None]:
    """For one op job: ``torch.library.opcheck(op, args, kwargs)`` calls the op once on the test's own
    tensors (the real one runs it on copies, which would hide what the test built), and
    ``torch.testing.assert_close`` / ``torch.allclose`` pass (the outputs they compare are those of
    stand-ins that did not run; the test goes on to the call it makes after them)."""
    import torch

    def opcheck(op: Any, args: Any, kwargs: Any = None, **_kw: Any) -> dict[str, str]:
        op(*args, **(kwargs or {}))
        return {}

    saved = [(torch.library, "opcheck", opcheck), (torch.testing, "assert_close", lambda *a, **k: None),
             (torch, "allclose", lambda *a, **k: True)]
    real = [(mod, name, getattr(mod, name)) for mod, name, _new in saved]
    for mod, name, new in saved:
        setattr(mod, name, new)
    try:
        yield None
    finally:
        for mod, name, old in real:
            setattr(mod, name, old)
