"""Test worker: ``python -m vkc.testtrace.worker < request.json > response.json``.

Imports a vLLM test module from the tree, places its tensors on the CPU
(:class:`.harness.CpuDevice`), runs one test function at one parametrization under vkc's launch
tracer (:mod:`vkc.invoke.triton.traced.capture`, fake H100 platform) and stops at the first launch
of the target kernel: nothing is launched (the tracer records and returns), and the private
:class:`_Captured` raised from the launch hook ends the test before its assertions read the
(garbage) outputs.  Request::

    {"tree_root": "...", "profile": {...H100_PROFILE...},
     "jobs": [{"id", "file": "tests/kernels/...py", "function": "test_x", "kernel": "module:qualname",
               "kernel_line": 12, "dims": {"h_q": 32, ..., "dtype": "bfloat16"} | null, "timeout_s": 120}]}

Response: ``{"ok", "error", "versions", "jobs": [Capture.to_json()]}``.  With ``dims`` the size
parameters are mapped from the model first; if that run does not capture, the test's own first
parametrization is tried.  vLLM's logs go to stderr; stdout carries only the JSON.

An *op job* (the CUDA half: ``"ops": ["_C::rms_norm", ...]``, ``kernel`` the CUDA kernel they
launch) stops instead at the first call of one of those compiled ops and answers the call
(``op_call``: :func:`.opcall.record_call`); Triton launches on the way are recorded, not run, and
mark the storages they took as touched.
"""
from __future__ import annotations

import contextlib
import importlib
import importlib.util
import json
import os
import re
import signal
import sys
import time
import traceback
from typing import Any

from vkc.testtrace.fixtures import fixture_contexts
from vkc.testtrace.harness import (
    SIZE_NAMES,
    CpuDevice,
    Unsatisfied,
    choose_params,
    install_cpu_patches,
    value_text,
    variants,
)
from vkc.testtrace.interp import Interpreter
from vkc.testtrace.lenient import install_lenient_checks, lenient_import
from vkc.testtrace.opcall import OpCallMode, OpCaptured, patched_opcheck
from vkc.testtrace.standins import (
    STUBS,
    TOUCHED,
    install_accelerator_patches,
    install_vllm_cpu_dispatch,
    register_cpu_ops,
    stub_missing,
)
from vkc.testtrace.writes import written_params_of

MAX_VALUES = 65536          # integer buffers up to this many elements are captured verbatim
MAX_RUNS_NUMEL = 1 << 26    # larger ones (up to this many elements) as runs, when at most MAX_VALUES runs
_NOT_APPLICABLE = re.compile(r"\b(ROCm|rocm|AMD|amd|gfx9\d\d|gfx942|XPU|xpu|HIP|hip|aiter|MI300|MI355|FlyDSL)\b")


class _Captured(BaseException):
    """Raised from the launch hook at the target's first launch (a BaseException: a test's own
    ``except Exception`` must not swallow it)."""


class _Timeout(BaseException):
    pass


class _Factory:
    """``STATE.factory`` of the tracer: CPU tensors described against their storages."""

    def __init__(self) -> None:
        self.bases: dict[str, dict[str, Any]] = {}
        self.by_storage: dict[int, str] = {}
        self.tensors: dict[str, Any] = {}

    def describe(self, t: Any, param: str) -> dict[str, Any]:
        key = int(t.untyped_storage()._cdata)
        name = self.by_storage.get(key)
        if name is None:
            name = base = param.removesuffix("_ptr") or "buf"
            i = 2
            while name in self.bases:
                name, i = f"{base}_{i}", i + 1
            nbytes = int(t.untyped_storage().nbytes())
            item = t.element_size()
            dt = str(t.dtype).replace("torch.", "") if nbytes % item == 0 else "uint8"
            item = item if dt != "uint8" else 1
            self.bases[name] = {"dtype": dt, "itemsize": item, "numel": nbytes // item, "device": t.device.type,
                                "earlier": []}
            self.by_storage[key] = name
            self.tensors[name] = t
        return {"kind": "tensor", "base": name, "shape": list(t.shape), "stride": list(t.stride()),
                "offset": int(t.storage_offset()), "dtype": str(t.dtype).replace("torch.", ""),
                "itemsize": t.element_size(), "device": t.device.type}


def _contents(factory: _Factory, name: str) -> dict[str, Any]:
    """``{"values": [...]}`` for an integer storage of at most :data:`MAX_VALUES` elements; for a
    larger one ``{"values": None, "runs": [[values], [counts]]}`` when it has at most MAX_VALUES
    runs of equal values; else ``{"values": None}``."""
    import torch

    b = factory.bases[name]
    dt = getattr(torch, b["dtype"])
    if b["device"] != "cpu" or dt.is_floating_point or dt.is_complex or b["numel"] > MAX_RUNS_NUMEL:
        return {"values": None}
    t = factory.tensors[name]
    flat = torch.empty(0, dtype=dt).set_(t.untyped_storage(), 0, (int(b["numel"]),), (1,))
    if b["numel"] <= MAX_VALUES:
        return {"values": [int(v) for v in flat.tolist()]}
    vals, counts = torch.unique_consecutive(flat, return_counts=True)
    if vals.numel() > MAX_VALUES:
        return {"values": None}
    return {"values": None, "runs": [[int(v) for v in vals.tolist()], [int(n) for n in counts.tolist()]]}


def _name(fn: dict[str, Any]) -> str:
    """``module:qualname`` as the index names it (a closure's ``f.<locals>.k`` is ``f.k`` there)."""
    return f"{fn['module']}:{fn['qualname'].replace('.<locals>', '')}"


def _install_hook(target: dict[str, Any]) -> None:
    from triton.runtime import jit

    from vkc.invoke.triton.traced.capture import STATE

    record = jit.JITFunction.run     # the tracer's recorder (install_capture ran)

    def run(self: Any, *args: Any, **kwargs: Any) -> Any:
        before = len(STATE.launches)
        record(self, *args, **kwargs)
        if len(STATE.launches) == before:
            return None
        rec = STATE.launches[-1]
        fn = rec["fn"]
        name = _name(fn)
        if name == target["kernel"] or (target.get("kernel_line") and fn["line"] == target["kernel_line"]
                                        and fn["qualname"] == target["kernel"].split(":")[-1]):
            raise _Captured()
        assert isinstance(STATE.factory, _Factory)
        written = written_params_of(self)
        ran = not target.get("ops") and _interpret(self, name, rec, args, kwargs)
        for param, a in rec["args"].items():
            if a.get("kind") != "tensor":
                continue
            base = STATE.factory.bases[a["base"]]
            # only a kernel that may write it, recorded and not run, spoils it
            key = "read_by" if param not in written else ("interpreted" if ran else "earlier")
            if name not in base.setdefault(key, []):
                base[key].append(name)
            if a.get("kind") == "tensor" and target.get("ops"):      # an op job: its values are not the kernel's
                t = STATE.factory.tensors[a["base"]]
                TOUCHED.setdefault(int(t.untyped_storage()._cdata), []).append(f"triton:{name}")
        return None

    jit.JITFunction.run = run


_INTERP: list[Interpreter] = [Interpreter()]     # the current attempt's (reset by :func:`_attempt`)


def _interpret(jit_fn: Any, name: str, rec: dict[str, Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
    """Run a recorded earlier launch under the interpreter when the test's state is still real
    (:class:`.interp.Interpreter`); a config ``pre_hook`` the recorder did not run makes it dirty."""
    import torch

    from vkc.invoke.triton.traced.capture import STATE

    interp = _INTERP[0]
    if (rec.get("autotune") or {}).get("pre_hook"):
        interp.dirty = interp.dirty or f"{name}'s autotune config has a pre_hook the recorder did not run"
        return False
    assert isinstance(STATE.factory, _Factory)
    tensors = [STATE.factory.tensors[a["base"]] for a in rec["args"].values() if a.get("kind") == "tensor"]
    kw = {k: v for k, v in kwargs.items() if k not in ("grid", "warmup")}
    tensors += [v for v in [*args, *kw.values()] if isinstance(v, torch.Tensor)]
    return interp.run(jit_fn, name, args, kw, tuple(rec["grid"]), tensors, TOUCHED)


def _import_test(tree_root: str, rel: str) -> Any:
    """The test module, its ``assert`` statements dropped (:func:`.lenient.lenient_import`)."""
    modname = rel.removesuffix(".py").replace("/", ".")
    path = os.path.join(tree_root, rel)
    for _ in range(8):
        try:
            with lenient_import(modname, path):
                return importlib.import_module(modname)
        except ModuleNotFoundError as e:
            if e.name is not None and modname.startswith(e.name):
                break                    # a test folder without __init__.py: import by path
            if stub_missing(e) is None:
                raise
    from vkc.testtrace.lenient import LenientLoader

    spec = importlib.util.spec_from_file_location(modname, path, loader=LenientLoader(modname, path))
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[modname] = mod
    spec.loader.exec_module(mod)
    return mod


def _where(tb: Any, root: str) -> str:
    last = ""
    for fr in traceback.extract_tb(tb):
        f = os.path.abspath(fr.filename)
        if f.startswith(root + os.sep):
            last = f" at {os.path.relpath(f, root)}:{fr.lineno}"
    return last


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return f"{type(e).__name__}: {text[:240]}" if text else type(e).__name__


def _test_id(job: dict[str, Any], params: dict[str, str]) -> str:
    inner = "-".join(f"{k}={v}" for k, v in params.items())
    return f"{job['file']}::{job['function']}" + (f"[{inner}]" if inner else "")


def _attempt(job: dict[str, Any], fn: Any, dims: dict[str, Any] | None, root: str,
             rows_of: dict[int, int] | None = None) -> dict[str, Any]:
    import inspect

    import pytest
    import torch

    from vkc.invoke.triton.traced.capture import STATE

    STATE.launches, STATE.keep = [], []
    TOUCHED.clear()
    _INTERP[0] = Interpreter()
    factory = _Factory()
    STATE.factory = factory  # type: ignore[assignment]
    out: dict[str, Any] = {"ok": False, "kernel": job["kernel"], "mapped": {}, "params": {}, "launch": None,
                           "buffers": {}, "reason": None, "category": None}
    try:
        kwargs, mapped, indirect = choose_params(fn, dims, rows_of)
    except Unsatisfied as e:
        return dict(out, test_id=_test_id(job, {}), reason=str(e), category="params")
    out["mapped"], out["params"] = mapped, {k: value_text(v) for k, v in kwargs.items()}
    out["test_id"] = _test_id(job, out["params"])
    sig = inspect.signature(fn)
    need = [n for n, p in sig.parameters.items() if (n not in kwargs or n in indirect)
            and p.default is inspect.Parameter.empty]
    signal.signal(signal.SIGALRM, lambda *_a: (_ for _ in ()).throw(_Timeout()))
    signal.alarm(int(job.get("timeout_s") or 120))
    mode = OpCallMode(frozenset(job["ops"]), job["kernel"]) if job.get("ops") else None
    try:
        home = sys.modules.get(fn.__module__)
        ind = {n: kwargs[n] for n in indirect if n in kwargs}
        with contextlib.ExitStack() as stack, fixture_contexts(need, stack, home, ind) as fx, CpuDevice(), \
                (patched_opcheck() if mode is not None else contextlib.nullcontext()), \
                (mode if mode is not None else contextlib.nullcontext()):
            fn(**{k: v for k, v in kwargs.items() if k not in indirect}, **fx)
        seen = sorted({_name(r["fn"]) for r in STATE.launches})
        out.update(reason=f"the test finished without launching the kernel (it launched {seen or 'nothing'})"
                   if mode is None else _no_call(job, mode), category="not-reached")
    except OpCaptured:
        assert mode is not None and mode.call is not None
        out.update(ok=True, op_call=mode.call)
    except _Captured:
        rec = STATE.launches[-1]
        used = sorted({a["base"] for a in rec["args"].values() if a.get("kind") == "tensor"})
        for n in used:
            ops = TOUCHED.get(int(factory.tensors[n].untyped_storage()._cdata), [])
            factory.bases[n]["earlier"] += [o for o in dict.fromkeys(ops) if o not in factory.bases[n]["earlier"]]
        out["buffers"] = {n: dict(factory.bases[n], **_contents(factory, n)) for n in used}
        out.update(ok=True, launch=rec)
    except Unsatisfied as e:
        out.update(reason=str(e), category="fixture")
    except _Timeout:
        out.update(reason=f"timed out after {job.get('timeout_s') or 120}s", category="timeout")
    except pytest.skip.Exception as e:
        why = " ".join(str(e.msg).split())[:200]
        out.update(reason=f"the test skipped itself: {why}", category=_skip_category(why))
    except MemoryError as e:
        out.update(reason=_one_line(e), category="memory")
    except ModuleNotFoundError as e:
        stubbed = stub_missing(e)
        out.update(reason=_one_line(e) + _where(e.__traceback__, root) + _after(),
                   category="stubbed" if stubbed else _error_category(str(e)), stubbed=stubbed)
    except (Exception, _outcome()) as e:  # noqa: BLE001 -- every failure is a reason, never a traceback
        out.update(reason=_one_line(e) + _where(e.__traceback__, root) + _after(), category=_error_category(str(e)))
    finally:
        signal.alarm(0)
        torch.set_default_device(None)
        STATE.keep = []
    return out


def _after() -> str:
    from vkc.invoke.triton.traced.capture import STATE

    seen = sorted({_name(r["fn"]) for r in STATE.launches})
    return f" (after launching {seen}, recorded, not run)" if seen else ""


def _outcome() -> type[BaseException]:
    """pytest's outcome exceptions (``pytest.fail``, a ``pytest.raises`` that did not raise)."""
    from _pytest.outcomes import OutcomeException

    return OutcomeException


def _skip_category(reason: str) -> str:
    """``not-applicable``: a skip (or failure) that says the test is for ROCm / AMD / XPU hardware."""
    return "not-applicable" if _NOT_APPLICABLE.search(reason) else "skipped"


def _error_category(reason: str) -> str:
    return "not-applicable" if _NOT_APPLICABLE.search(reason) and re.search(
        r"requir|only|not compiled|No module named|need", reason) else "error"


def _attempt_stubbing(job: dict[str, Any], fn: Any, dims: dict[str, Any] | None, root: str,
                      rows_of: dict[int, int] | None = None) -> dict[str, Any]:
    """:func:`_attempt`, again after each third-party package the run found missing is stood in for
    (:func:`.standins.stub_missing`; at most 4)."""
    for _ in range(4):
        a = _attempt(job, fn, dims, root, rows_of)
        if a["category"] != "stubbed":
            return a
    return dict(a, category="error")


def run_job(job: dict[str, Any], root: str) -> dict[str, Any]:
    import pytest

    if not os.path.isfile(os.path.join(root, job["file"])):   # a tree being re-extracted: not cached
        return {"ok": False, "test_id": f"{job['file']}::{job['function']}", "kernel": job["kernel"],
                "reason": "the test file is missing from the tree", "category": "worker", "attempts": []}
    try:
        mod = _import_test(root, job["file"])
    except BaseException as e:  # noqa: BLE001 -- an import that fails (even sys.exit / skip) is a reason
        why = f"test module import failed: {_one_line(e)}{_where(e.__traceback__, root)}"
        na = _skip_category(why) == "not-applicable" and (isinstance(e, pytest.skip.Exception)
                                                          or _error_category(why) == "not-applicable")
        return {"ok": False, "test_id": f"{job['file']}::{job['function']}", "kernel": job["kernel"],
                "reason": why, "category": "not-applicable" if na else "import", "attempts": []}
    fn = getattr(mod, job["function"], None)
    if fn is None:
        return {"ok": False, "test_id": f"{job['file']}::{job['function']}", "kernel": job["kernel"],
                "reason": "test function not found after import", "category": "import", "attempts": []}
    _install_hook(job)
    start = time.monotonic()
    attempts: list[dict[str, Any]] = []
    dims = job.get("dims")
    if dims:
        first = _attempt_stubbing(job, fn, dims, root)
        attempts.append(first)
        if first["ok"] or not any(n in SIZE_NAMES for n in first["mapped"]):
            if not first["ok"]:
                return _variants(job, fn, root, attempts, start)
            return dict(first, attempts=[_summary(first)])
    second = _attempt_stubbing(job, fn, None, root)
    attempts.append(second)
    if not second["ok"]:
        return _variants(job, fn, root, attempts, start)
    return dict(second, attempts=[_summary(a) for a in attempts])


_RETRY = ("not-reached", "error", "skipped")


def _variants(job: dict[str, Any], fn: Any, root: str, attempts: list[dict[str, Any]],
              start: float) -> dict[str, Any]:
    """A job whose first parametrization did not reach its kernel or op (another parametrization may
    pick it: the mxfp8 rather than the nvfp4 variant): the others of :func:`variants`, at
    the model's sizes where they map, while the job's time (from ``start``) lasts; the first that
    captures, else the first attempt's answer."""
    budget = int(job.get("timeout_s") or 120)
    if attempts[-1]["category"] in _RETRY:
        for rows_of in variants(fn):
            left = budget - int(time.monotonic() - start)
            if left < 5:
                break
            a = _attempt_stubbing(dict(job, timeout_s=left), fn, job.get("dims"), root, rows_of)
            attempts.append(a)
            if a["ok"]:
                return dict(a, attempts=[_summary(x) for x in attempts])
    return dict(attempts[0], attempts=[_summary(x) for x in attempts])


def _no_call(job: dict[str, Any], mode: OpCallMode) -> str:
    called = sorted(set(mode.called))
    if mode.other:
        return (f"every call of the op launches another of its kernels ({'; '.join(sorted(set(mode.other))[:3])}), "
                "by vkc's dispatch rules")
    return (f"the test finished without calling {', '.join(job['ops'])} (it called "
            f"{', '.join(called[:8]) + (' ...' if len(called) > 8 else '') if called else 'no compiled op'})")


def _summary(a: dict[str, Any]) -> str:
    return f"{a['test_id']}: " + ("captured" if a["ok"] else f"{a['category']}: {a['reason']}")


def main() -> int:
    req = json.load(sys.stdin)
    real_stdout = sys.stdout
    sys.stdout = sys.stderr          # tests and vLLM may print; stdout is the JSON's
    os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")
    root = os.path.abspath(req["tree_root"])
    sys.path.insert(0, root)
    resp: dict[str, Any] = {"ok": False, "jobs": [], "error": None}
    try:
        import torch
        import triton

        from vkc.invoke.triton.traced.capture import STATE, install_capture
        from vkc.invoke.triton.traced.platform import install_fake_h100

        resp["versions"] = {"torch": torch.__version__, "triton": triton.__version__,
                            "python": sys.version.split()[0]}
        sys.dont_write_bytecode = True       # the lenient test modules never reach __pycache__
        install_vllm_cpu_dispatch()
        install_lenient_checks()
        register_cpu_ops(root)
        install_fake_h100(req["profile"])
        install_capture()
        install_cpu_patches()
        install_accelerator_patches()
        STATE.tree_root = root
        from triton.runtime import jit
        recorder = jit.JITFunction.run
        for job in req["jobs"]:
            jit.JITFunction.run = recorder
            resp["jobs"].append(dict(run_job(job, root), id=job["id"], stubs=sorted(STUBS.tops)))
        resp["ok"] = True
    except Exception as e:  # noqa: BLE001
        resp["error"] = _one_line(e)
        resp["traceback"] = traceback.format_exc(limit=10)
    real_stdout.write(json.dumps(resp, sort_keys=True))
    real_stdout.flush()
    return 0


__all__ = ["MAX_VALUES", "main", "run_job"]

if __name__ == "__main__":
    sys.exit(main())
