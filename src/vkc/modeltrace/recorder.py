"""The event recorder of the model-trace worker (runs only inside the worker process).

One ordered list of events per traced step.  Each event: ``kind`` ("triton" | "op" | "aten" |
"collective" | "vllm_op"), ``name``, ``layer`` (index of the outermost ``layers.N`` module on the
module stack, or None), ``module`` (the innermost module's name) and, per tensor argument, its
dtype/shape/stride/storage offset, the base storage it views and that storage's *producer*: the
event of the step that last wrote it (``"event:<i>"``; ``"earlier-step:<name>"`` when an earlier traced step's
launch did) or where the worker made it (``"input:<name>"``,
``"metadata:<field>"``, ``"weight:<param>"``, ``"kv_cache:<layer>"``, ``"alloc"``,
``"gathered:metadata:block_table_tensor"`` (a builder's gather of block-table entries), ``"host:h2d"``: a
copy of host values, :mod:`vkc.modeltrace.hostcopy`, which keeps those values for the step's
``host_contents``; so does an aten result the step's metadata shadows computed).  While ``building`` (the
attention-metadata builders run, before the forward) only allocations and host copies are noted, no event.
Triton launches come from vkc's launch tracer (:mod:`vkc.invoke.triton.trace_worker`), whose
``STATE.launches``/``STATE.factory`` this module plugs into.
"""
from __future__ import annotations

import re
from typing import Any

from .hostcopy import HostMirror

__all__ = ["RECORDER", "Recorder"]

_LAYER = re.compile(r"(?:^|\.)layers\.(\d+)(?:\.|$)")
_FACTORY = {"empty", "empty_strided", "empty_like", "new_empty", "new_empty_strided", "zeros", "zeros_like",
            "new_zeros", "ones", "full", "new_full", "arange", "scalar_tensor", "full_like", "ones_like"}
_SKIP = {"detach", "alias", "lift_fresh", "_local_scalar_dense", "sym_size", "sym_stride", "sym_numel",
         "sym_storage_offset", "is_same_size", "_has_compatible_shallow_copy_type", "record_stream",
         "set_", "resize_"}
_RMSNORM_OPS = ("rms_norm", "fused_add_rms_norm", "rms_norm_quant", "layernorm")


class Recorder:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.storages: dict[int, dict[str, Any]] = {}   # _cdata -> {"id", "nbytes", "producer"}
        self.keep: list[Any] = []
        self.module_names: dict[int, str] = {}
        self.stack: list[str] = []
        self.active = False
        self.building = False          # a metadata builder runs: name allocations and host copies only
        self.host = HostMirror()
        # the step's metadata shadows (vkc.modeltrace.dummy_scalars.metadata_shadows): host values an aten
        # op computed from the batch's query offsets / sequence lengths, as vLLM's device op computes them
        self.shadows: Any = None
        self.warnings: list[str] = []
        self.norm_spans: list[tuple[str, int, int]] = []
        # vLLM IR op dispatches (vllm/ir/op.py: IrOp.dispatch): (op, chosen provider, priority set?)
        self.ir_dispatches: list[tuple[str, str, bool]] = []

    # ------------------------------------------------------------------ storages
    def reset_step(self) -> None:
        """A new step's event list.  A storage an earlier step's launch wrote last (a persistent buffer: the
        indexer's top-k table, a request-mapping buffer) keeps that as ``"earlier-step:<name>"``: its
        ``event:<i>`` named the earlier step's list, not this one's."""
        names = {int(e["index"]): str(e.get("name", "?")) for e in self.events if "index" in e}
        for st in self.storages.values():
            p = str(st.get("producer", ""))
            if p.startswith("event:"):
                st["producer"] = f"earlier-step:{names.get(int(p.split(':', 1)[1]), '?')}"
        self.events = []

    def _key(self, t: Any) -> int:
        return int(t.untyped_storage()._cdata)

    def name_storage(self, t: Any, producer: str) -> None:
        key = self._key(t)
        if key not in self.storages:
            self.storages[key] = {"id": f"s{len(self.storages)}", "nbytes": int(t.untyped_storage().nbytes()),
                                  "producer": producer, "first": producer}
            self.keep.append(t)
        else:
            self.storages[key]["producer"] = producer
            self.storages[key].pop("fill", None)

    def filled(self, t: Any, value: float | None) -> None:
        """``t``'s storage was made by a constant factory (torch.zeros/ones/full) and not written since."""
        st = self.storages.get(self._key(t))
        if st is not None and value is not None:
            st["fill"] = value

    def describe(self, t: Any, param: str = "") -> dict[str, Any]:
        key = self._key(t)
        st = self.storages.get(key)
        if st is None:
            self.name_storage(t, "unknown")
            st = self.storages[key]
        return {"kind": "tensor", "base": st["id"], "base_nbytes": st["nbytes"], "shape": list(t.shape),
                "stride": list(t.stride()), "offset": int(t.storage_offset()),
                "dtype": str(t.dtype).replace("torch.", ""), "itemsize": t.element_size(),
                "producer": st["producer"], "origin": st["first"], **({"fill": st["fill"]} if "fill" in st else {})}

    def wrote(self, t: Any, index: int) -> None:
        self.name_storage(t, f"event:{index}")

    def host_copy(self, dst: Any, src: Any) -> None:
        """``src`` (a CPU tensor) was copied into the meta tensor ``dst``: keep the values; a storage no
        recorded op made yet (a builder's fresh or persistent buffer) is named ``host:h2d``."""
        key = self._key(dst)
        if self.host.copied(key, dst, src) and self.storages.get(key, {}).get("producer", "alloc") == "alloc":
            self.name_storage(dst, "host:h2d")

    def host_contents(self) -> dict[str, Any]:
        """The step's ``host_contents`` (:meth:`vkc.modeltrace.hostcopy.HostMirror.step_contents`)."""
        return self.host.step_contents(self.storages, self.events)

    # ------------------------------------------------------------------ layers
    def layer(self) -> int | None:
        for name in self.stack:
            m = _LAYER.search(name)
            if m:
                return int(m.group(1))
        return None

    def add(self, ev: dict[str, Any]) -> int:
        ev["index"] = len(self.events)
        ev["layer"] = self.layer()
        ev["module"] = self.stack[-1] if self.stack else None
        self.events.append(ev)
        return ev["index"]

    # module hooks
    def pre_hook(self, module: Any, _args: Any) -> None:
        name = self.module_names.get(id(module), type(module).__name__)
        self.stack.append(name)
        if type(module).__name__.endswith("RMSNorm"):
            self.norm_spans.append((name, len(self.events), len(self.ir_dispatches)))

    def post_hook(self, module: Any, _args: Any, _out: Any) -> None:
        if self.stack:
            self.stack.pop()
        if type(module).__name__.endswith("RMSNorm") and self.norm_spans:
            name, start, ir_start = self.norm_spans.pop()
            span = self.events[start:]
            chosen = self.ir_dispatches[ir_start:]
            # native by vLLM's own choice: the priority list was set and its kernels declined these
            # arguments (GemmaRMSNorm's fp32 weight on bf16 input fails vllm_c's supports_args)
            by_choice = bool(chosen) and all(prio for _op, _p, prio in chosen)
            if self.active and not by_choice and not any(_is_norm(e) for e in span):
                natives = sorted({e["name"] for e in span})
                self.warnings.append(f"RMSNorm {name} ran without a vLLM op (native torch path: {natives}); "
                                     "the IR op priority was not applied")


def _is_norm(ev: dict[str, Any]) -> bool:
    """A compiled vLLM norm op (``_C::...``) or a Triton norm kernel; not the ``vllm_ir`` dispatcher
    op, which runs whichever implementation the IR op priority picked (native torch without one)."""
    name = ev["name"]
    compiled = ev["kind"] == "triton" or (ev["kind"] == "op" and name.startswith("_"))
    return compiled and any(k in name for k in _RMSNORM_OPS)


RECORDER = Recorder()
REENTER: dict[str, Any] = {}   # torch.ops.vllm.<name> -> the Python body vLLM registered
# the context a re-entered vLLM op body runs under: the meta placements once more, registered by checklist step
# meta-placements (vkc.modeltrace.startup_steps.enter_meta_placements; torch pops a mode while its handler runs)
BODY_CONTEXTS: list[Any] = []


def _body_context() -> Any:
    import contextlib

    return BODY_CONTEXTS[0]() if BODY_CONTEXTS else contextlib.nullcontext()


class LaunchList(list):
    """Stands in for ``trace_worker.STATE.launches``: each Triton launch becomes an event."""

    def append(self, rec: dict[str, Any]) -> None:  # type: ignore[override]
        fn = rec["fn"]
        ev = {"kind": "triton", "name": f"{fn['module']}:{fn['qualname']}", "grid": rec["grid"],
              "constexprs": rec["constexprs"], "options": rec["options"],
              "num_warps": rec["options"].get("num_warps"), "num_stages": rec["options"].get("num_stages"),
              "args": [[k, v] for k, v in rec["args"].items()], "autotune": rec["autotune"], "heuristics": rec["heuristics"],
              "site": rec["site"], "signature": rec["signature"], "attrs": rec.get("attrs"), "grid_callable": rec.get("grid_callable"),
              "constexpr_defaulted": rec.get("constexpr_defaulted"), "specialize_error": rec["specialize_error"]}
        idx = RECORDER.add(ev)
        for _n, a in ev["args"]:
            # a fresh buffer, or one carried over from an earlier step: this step's first launch to take it
            # is credited as its writer (a launch cannot tell reads from writes)
            if a.get("kind") == "tensor" and (a["producer"] in ("alloc", "unknown")
                                              or a["producer"].startswith("earlier-step:")):
                for st in RECORDER.storages.values():
                    if st["id"] == a["base"]:
                        st["producer"] = f"event:{idx}"
                        st.pop("fill", None)


class FactoryAdapter:
    """Stands in for ``trace_worker.STATE.factory`` (only ``describe`` is used by the recorder)."""

    def describe(self, t: Any, param: str) -> dict[str, Any]:
        return RECORDER.describe(t, param)


def _factory_fill(base: str, args: Any, kwargs: Any) -> float | None:
    """The constant an aten factory fills its result with (zeros 0, ones 1, full its fill value), else None."""
    if base in ("zeros", "zeros_like", "new_zeros"):
        return 0.0
    if base in ("ones", "ones_like", "new_ones"):
        return 1.0
    pos = {"full": 1, "full_like": 1, "new_full": 2, "scalar_tensor": 0}.get(base)
    if pos is None:
        return None
    v = kwargs.get("fill_value", args[pos] if len(args) > pos else None)
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def _arg_json(v: Any) -> Any:
    import torch

    from vkc.modeltrace.launches import capture_module

    _jsonable = capture_module()._jsonable

    if isinstance(v, torch.Tensor):
        return RECORDER.describe(v)
    if isinstance(v, (list, tuple)) and any(isinstance(x, torch.Tensor) for x in v):
        return [_arg_json(x) for x in v]
    return {"kind": "scalar", "value": _jsonable(v)}


def make_dispatch_mode():
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode

    class Mode(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            ns = func.namespace
            base = func._schema.name.split("::")[-1]
            flat = [a for a in list(args) + list(kwargs.values()) if isinstance(a, torch.Tensor)]
            on_meta = any(a.device.type == "meta" for a in flat)
            if ns == "vllm" and base in REENTER:
                if RECORDER.active:
                    RECORDER.add({"kind": "vllm_op", "name": f"vllm::{base}", "args": []})
                with self, _body_context():
                    return REENTER[base](*args, **kwargs)
            noting = RECORDER.active or RECORDER.building
            if noting and ns == "aten" and base in _FACTORY:
                out = func(*args, **kwargs)
                if isinstance(out, torch.Tensor) and out.device.type == "meta":
                    RECORDER.name_storage(out, "alloc")
                    RECORDER.filled(out, _factory_fill(base, args, kwargs))
                return out
            if noting and ns == "aten" and base == "_to_copy" and not on_meta and args \
                    and kwargs.get("device") is not None and torch.device(kwargs["device"]).type == "meta":
                out = func(*args, **kwargs)          # t.to(device): a fresh device tensor of host values
                if isinstance(out, torch.Tensor) and isinstance(args[0], torch.Tensor):
                    RECORDER.host_copy(out, args[0])
                return out
            if RECORDER.building and not RECORDER.active:
                out = func(*args, **kwargs)
                _noted_writes(func, args, kwargs)
                if ns == "aten" and base in _GATHERS:
                    _gathered(args, out)
                for o in out if isinstance(out, (tuple, list)) else [out]:
                    _shadowed(o)
                return out
            if not RECORDER.active or (ns == "aten" and (base in _SKIP or func.is_view or not on_meta)):
                return func(*args, **kwargs)
            ev: dict[str, Any] = {"kind": "aten" if ns == "aten" else "op", "name": f"{ns}::{base}",
                                  "overload": func._overloadname}
            names = [a.name for a in func._schema.arguments]
            ev["args"] = [[n, _arg_json(v)] for n, v in zip(names, args)]     # a list: keeps the order
            ev["args"] += [[k, _arg_json(v)] for k, v in kwargs.items()]
            idx = RECORDER.add(ev)
            out = func(*args, **kwargs)
            for a, v in zip(func._schema.arguments, args):
                if a.alias_info is not None and a.alias_info.is_write and isinstance(v, torch.Tensor):
                    RECORDER.wrote(v, idx)
            _noted_writes(func, args, kwargs)
            outs = out if isinstance(out, (tuple, list)) else [out]
            results = []
            for o in outs:
                if isinstance(o, torch.Tensor):
                    if RECORDER.storages.get(RECORDER._key(o), {}).get("producer") != f"event:{idx}":
                        RECORDER.wrote(o, idx)
                    results.append(RECORDER.describe(o))
                    _shadowed(o)
            ev["outputs"] = results
            return out

    return Mode()


# aten ops whose result elements are elements of their ``self``: a builder's gather of a named table
_GATHERS = frozenset({"index", "index_select", "gather", "take"})
_GATHERABLE = ("metadata:block_table_tensor",)


def _gathered(args: Any, out: Any) -> None:
    """A builder gathered entries of vLLM's block table (Step5's staged prefill pages: ``flat_table[idx]``,
    ``sparse_prefill_pages.py``): its fresh result holds block ids, ``gathered:metadata:block_table_tensor``."""
    import torch

    if not args or not isinstance(args[0], torch.Tensor) or not isinstance(out, torch.Tensor) \
            or out.device.type != "meta":
        return
    src = RECORDER.storages.get(RECORDER._key(args[0]), {}).get("producer", "")
    if src in _GATHERABLE and RECORDER.storages.get(RECORDER._key(out)) is None:
        RECORDER.name_storage(out, f"gathered:{src}")


def _shadowed(o: Any) -> None:
    """A meta result the step's metadata shadows computed on the host: keep those values."""
    import torch

    shadow = RECORDER.shadows.get(o) if RECORDER.shadows is not None and isinstance(o, torch.Tensor) else None
    if isinstance(shadow, torch.Tensor) and shadow.device.type == "cpu" and o.device.type == "meta":
        RECORDER.host.copied(RECORDER._key(o), o, shadow)


def _noted_writes(func: Any, args: Any, kwargs: Any) -> None:
    """After an op: the meta storages it wrote lose their host contents, except a ``copy_`` from a CPU
    tensor, whose values they now hold."""
    import torch

    if func._schema.name.split("::")[-1] == "copy_" and len(args) >= 2 and all(
            isinstance(x, torch.Tensor) for x in args[:2]) and args[0].device.type == "meta" \
            and args[1].device.type == "cpu":
        RECORDER.host_copy(args[0], args[1])
        return
    named = list(zip(func._schema.arguments, args)) + [(a, kwargs[a.name]) for a in func._schema.arguments
                                                      if a.name in kwargs]
    for a, v in named:
        if a.alias_info is not None and a.alias_info.is_write and isinstance(v, torch.Tensor) \
                and v.device.type == "meta":
            RECORDER.host.forget(RECORDER._key(v))
