"""Checklist step ``dummy-scalars``: host reads of small checkpoint tensors answered as vLLM's dummy loader fills them.

Runs only inside the model-trace worker (imports torch and vLLM).

vLLM with ``load_format='dummy'`` (what the trace mirrors) fills every parameter and persistent buffer
through ``vllm/model_executor/model_loader/weight_utils.py: initialize_single_dummy_weight`` before
``process_weights_after_loading``: floats uniform in +-1e-3 (8-bit floats +-1), int8/uint8 random
bytes, E8M0 scales a fixed byte, ``dummy_weight_value`` where a parameter has one, other integers left
as allocated.  On the meta device that fill is skipped (the function returns for meta tensors), so a
quantization method that reads a checkpoint scalar on the host -- ``.item()``, ``bool(t > 0)``,
``.to("cpu").tolist()`` (``requantize_with_max_scale``, ``BaseKVCacheMethod``, compressed-tensors'
KV-cache scales) -- cannot be answered.

The rule (:func:`shadow_small_tensors`): every parameter and persistent buffer of at most
:data:`SMALL_NUMEL` elements (scalars, per-shard, per-expert and per-head scales and zero points; never
a per-channel or per-group tensor of a real layer, nor a weight) gets a *host shadow*: a CPU tensor of
its dtype and shape filled by vLLM's own ``initialize_single_dummy_weight`` (CPU generator, seed 1234;
on a GPU the fill draws from the CUDA generator, so the numbers differ, the distribution does not).
Integer tensors the dummy loader leaves unfilled get no shadow.  While ``process_weights_after_loading``
runs, a dispatch mode carries shadows through every aten op whose tensor inputs all have one (or are
host tensors), and answers a host read of a shadowed meta tensor from its shadow.  The meta tensors
themselves are untouched: kernels see exactly what they saw before; only host-side decisions (a branch
on a scale's sign, a scale copied to a Python float) get the values vLLM's dummy load gives them.  A
host read of anything else (a whole packed weight repacked through numpy, a derived value of an
unshadowed tensor) still fails, loudly, as before.  What was shadowed and which host reads it answered
go to the trace's ``notes["dummy_scalars"]``.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

__all__ = ["SMALL_NUMEL", "ShadowTable", "answered", "metadata_shadows", "shadow_small_tensors"]

SMALL_NUMEL = 1024
# ops whose meta call cannot answer (a host value or a host copy): answered from the shadows
_HOST_READS = ("_local_scalar_dense", "_to_copy", "equal", "is_nonzero")


def _key(t: Any) -> tuple[Any, ...]:
    return (int(t.untyped_storage()._cdata), int(t.storage_offset()), tuple(t.shape), tuple(t.stride()), str(t.dtype))


class ShadowTable:
    """meta tensor (by storage, offset, shape, stride, dtype) -> its host shadow."""

    def __init__(self) -> None:
        self.values: dict[tuple[Any, ...], Any] = {}
        self.keep: list[Any] = []          # the meta tensors (their storage ids stay valid)
        self.seeded: list[str] = []
        self.answered: list[str] = []

    def get(self, t: Any) -> Any:
        return self.values.get(_key(t))

    def put(self, t: Any, cpu: Any) -> None:
        self.values[_key(t)] = cpu
        self.keep.append(t)

    def drop_storage(self, t: Any) -> None:
        sid = int(t.untyped_storage()._cdata)
        for k in [k for k in self.values if k[0] == sid]:
            del self.values[k]


_TABLE: list[ShadowTable] = []


def answered() -> dict[str, Any]:
    """What the last :func:`shadow_small_tensors` shadowed and answered (the trace's notes)."""
    if not _TABLE:
        return {}
    t = _TABLE[-1]
    return {"rule": f"parameters/persistent buffers of <= {SMALL_NUMEL} elements: host shadows filled by vLLM's "
                    "initialize_single_dummy_weight (CPU generator, seed 1234); host reads in "
                    "process_weights_after_loading answered from them",
            "shadowed": len(t.seeded), "answered": sorted(set(t.answered))}


def _dummy_fill(name: str, p: Any) -> Any | None:
    """A CPU tensor of ``p``'s dtype and shape as vLLM's dummy loader fills it (None: left unfilled)."""
    import torch
    from vllm.model_executor.model_loader.weight_utils import initialize_single_dummy_weight

    cpu = torch.zeros(tuple(p.shape), dtype=p.dtype, device="cpu")
    if getattr(p, "dummy_weight_value", None) is not None:
        cpu.dummy_weight_value = p.dummy_weight_value  # type: ignore[attr-defined]
    floating = torch.is_floating_point(cpu) or cpu.dtype in (torch.int8, torch.uint8)
    if not floating and getattr(p, "dummy_weight_value", None) is None:
        return None            # other integers: the dummy loader leaves them as allocated (no value to give)
    # called as the release's dummy loader calls it: 0.33.0 passes the parameter's name (E8M0 scales are
    # told apart by it); older releases' function takes no name (issue 14)
    kwargs = {"name": name.rsplit(".", 1)[-1]} if _takes_name(initialize_single_dummy_weight) else {}
    initialize_single_dummy_weight(cpu, **kwargs)
    return cpu


def _takes_name(fn: Any) -> bool:
    import inspect

    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return True
    return "name" in params or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


def _seed(model: Any, table: ShadowTable) -> None:
    for module_name, module in model.named_modules():
        tensors = list(module.named_parameters(recurse=False)) + [
            (n, b) for n, b in module.named_buffers(recurse=False) if n not in module._non_persistent_buffers_set]
        for n, t in tensors:
            if t is None or t.device.type != "meta" or t.numel() > SMALL_NUMEL:
                continue
            cpu = _dummy_fill(n, t)
            if cpu is not None:
                table.put(t, cpu)
                table.seeded.append(f"{module_name}.{n}" if module_name else n)


def _mode(table: ShadowTable) -> Any:
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils._pytree import tree_flatten, tree_map

    def host_args(args: Any, kwargs: Any) -> tuple[Any, Any] | None:
        flat, _ = tree_flatten((args, kwargs))
        known = False
        for a in flat:
            if isinstance(a, torch.Tensor) and a.device.type == "meta":
                if table.get(a) is None:
                    return None
                known = True
        if not known:
            return None

        def sub(a: Any) -> Any:
            if isinstance(a, torch.Tensor) and a.device.type == "meta":
                return table.get(a)
            if isinstance(a, torch.device) and a.type == "meta":
                return torch.device("cpu")
            return a
        return tree_map(sub, args), tree_map(sub, kwargs)

    class _Shadows(TorchDispatchMode):
        def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
            kwargs = kwargs or {}
            host = host_args(args, kwargs) if func.namespace == "aten" else None
            base = func._schema.name.split("::")[-1]
            to_host = base != "_to_copy" or (kwargs.get("device") is not None
                                              and torch.device(kwargs["device"]).type == "cpu")
            if host is not None and base in _HOST_READS and to_host:
                table.answered.append(f"aten::{base}")
                return func(*host[0], **host[1])
            out = func(*args, **kwargs)
            written = [i for i, (a, s) in enumerate(zip(args, func._schema.arguments))
                       if isinstance(a, torch.Tensor) and a.device.type == "meta"
                       and s.alias_info is not None and s.alias_info.is_write]
            for i in written:
                table.drop_storage(args[i])    # a write: the storage's other views are stale
            if host is not None:
                try:
                    cpu_out = func(*host[0], **host[1])
                except Exception:  # noqa: BLE001 -- no shadow for this result; a host read of it fails as before
                    return out
                pairs = zip(out if isinstance(out, (tuple, list)) else [out],
                            cpu_out if isinstance(cpu_out, (tuple, list)) else [cpu_out])
                for o, c in pairs:
                    if isinstance(o, torch.Tensor) and o.device.type == "meta" and isinstance(c, torch.Tensor):
                        table.put(o, c)
                for i in written:
                    table.put(args[i], host[0][i])
            return out

    return _Shadows()


@contextlib.contextmanager
def shadow_small_tensors(model: Any) -> Iterator[ShadowTable]:
    """Checklist step ``dummy-scalars`` around ``process_weights_after_loading`` (see the module docstring)."""
    table = ShadowTable()
    _TABLE.append(table)
    _seed(model, table)
    with _mode(table):
        yield table


@contextlib.contextmanager
def metadata_shadows(pairs: list[tuple[Any, Any]]) -> Iterator[ShadowTable]:
    """Checklist step ``metadata-host-reads``: around a step's metadata build and forward, the step's own
    metadata tensors (``pairs``: the meta tensor and the host tensor vLLM's runner copies into it -- the
    query start offsets and sequence lengths of the batch) carry their host values through every aten op, as
    the dummy-scalar shadows do; a host read of a value derived from them only (vLLM syncs there itself: FLA's
    ``prepare_chunk_indices`` ``.tolist()`` of the chunk counts) is answered from them.  Kernels see the same
    meta tensors; a host read of anything else fails as before.  Enter it below the recorder's mode."""
    table = ShadowTable()
    for meta, cpu in pairs:
        table.put(meta, cpu)
    with _mode(table):
        yield table
