"""LoRA in the traced step, worker side (feature ``lora``; imports vLLM).

The model served with ``--enable-lora --max-lora-rank R --max-loras 1`` (:data:`MAX_LORAS`, vLLM's
default), each step run the way vLLM's V2 model runner runs its own warm-up step (mirrored, each a
checklist feature step, :data:`vkc.modeltrace.checklist.FEATURE_STEPS` ``"lora"``):

* the engine config gets ``enable_lora=True, max_lora_rank=R, max_loras=1``
  (``EngineArgs.create_engine_config``: ``VllmConfig.lora_config``);
* ``GPUModelRunner.load_model`` -> ``LoRAModelRunnerMixin.load_lora_model``: vLLM's
  ``LRUCacheWorkerLoRAManager`` wraps the model's LoRA-capable layers (their stacked LoRA buffers
  sized at rank R, on meta) and makes the Punica wrapper;
* every step under ``LoRAModelRunnerMixin.maybe_dummy_run_with_lora`` with
  ``num_active_loras=max_loras`` as ``GPUModelRunner._dummy_run`` calls it:
  ``maybe_setup_dummy_loras`` adds vLLM's dummy adapters (``create_dummy_lora``, warm-up rank
  ``min(R, 8)``, zero weights, no checkpoint) and ``maybe_select_dummy_loras`` sets the mapping: the
  requests get the LoRA ids ``1..max_loras`` cyclically (with one LoRA: every request, every
  token under LoRA 1, slot 0);
* ``PunicaWrapperGPU.update_metadata`` (called by ``set_active_adapters``) runs vLLM's own code on a
  host twin of the wrapper (``torch.unique``/``sort`` of the mapping need values; on a GPU they are
  aten ops on the mapping, no tree kernel): the meta wrapper gets the twin's host flags
  (``no_lora_flag_cpu``, ``num_active_loras_cpu``, lengths) and its index buffers the twin's values
  as the artifacts' buffer contents (:func:`step_result`).

The forward then launches vLLM's LoRA kernels (``lora_shrink``/``lora_expand``, ``fused_moe_lora``
and the ``moe_lora_align`` op for MoE layers) from the wrapped layers.  The LoRA buffers are named
for the recorder (``lora:<module>.<buffer>``, ``lora_meta:<buffer>``).

What the worker adjusts for it, when the model is wrapped (each said in the step's
``lora.rebound_at_load``): vLLM's LoRA modules are imported only then, after the fake H100 and the
op-body hooks exist; ``PIN_MEMORY`` of ``vllm.lora`` modules is the worker's answer (no pinned host
memory); fused_moe_lora's ``get_max_shared_memory_bytes(device.index)`` (None on meta) answers the fake
H100's opt-in shared memory; the weight-address LUTs keyed by ``data_ptr()`` build each call's own
entry (:class:`FreshLut`), as each layer's own addresses do on a GPU; a meta tensor's ``data_ptr()``
is a distinct fake address per storage (meta answers 0), remembered, and the host-to-device copies
of ``vllm.lora.ops`` (``async_tensor_h2d``: the weight-pointer tables, slice starts, strides) keep
their values: a table of those addresses becomes ``pointers`` (what each entry points at), the
others contents, as do the MoE LoRA layers' ``adapter_enabled`` flags (checklist ``lora-ptr-tables``).
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

__all__ = ["MAX_LORAS", "FreshLut", "install", "lora_step", "step_result"]

MAX_LORAS = 1           # vLLM's default --max-loras (LoRAConfig.max_loras)

_PUNICA_BUFFERS = ("_token_lora_indices", "_sampler_indices", "_sampler_indices_padded", "_embeddings_indices")
_KERNEL_META = ("token_lora_mapping", "token_indices_sorted_by_lora_ids", "active_lora_ids", "num_tokens_per_lora",
                "lora_token_start_loc")
_KERNEL_META_HOST = ("no_lora_flag_cpu", "num_active_loras_cpu")
_STATE: dict[str, Any] = {}


def install(rank: int) -> None:
    """Before the worker starts: the engine config with LoRA, the model wrapped by vLLM's LoRA
    manager, the Punica wrapper's metadata computed on its host twin."""
    from vkc.modeltrace import startup

    real_config, real_build = startup.engine_config, startup.build_model

    def engine_config(model_dir: str, opts: dict[str, Any]) -> Any:
        from vllm.engine import arg_utils

        real_args = arg_utils.EngineArgs

        def with_lora(**kw: Any) -> Any:
            return real_args(**kw, enable_lora=True, max_lora_rank=rank, max_loras=MAX_LORAS)

        arg_utils.EngineArgs = with_lora  # type: ignore[misc,assignment]
        try:
            return real_config(model_dir, opts)
        finally:
            arg_utils.EngineArgs = real_args  # type: ignore[misc]

    def build_model(vllm_config: Any) -> Any:
        return _load_lora_model(real_build(vllm_config), vllm_config)

    startup.engine_config = engine_config  # type: ignore[assignment]
    startup.build_model = build_model  # type: ignore[assignment]


def _load_lora_model(model: Any, vllm_config: Any) -> Any:
    """``GPUModelRunner.load_model``: ``self.load_lora_model(model, vllm_config, device)``."""
    import torch
    from vllm.config import set_current_vllm_config
    from vllm.v1.worker.lora_model_runner_mixin import LoRAModelRunnerMixin

    class Runner(LoRAModelRunnerMixin):
        def __init__(self, vc: Any) -> None:
            self.lora_config = vc.lora_config

    if vllm_config.lora_config is None:
        raise RuntimeError("LoRA trace: the engine config has no lora_config (enable_lora not applied)")
    runner = Runner(vllm_config)
    _STATE["rebound"] = _rebind_platform()
    _host_twin_metadata()       # vllm.lora imported here, after the fake platform and the op-body hooks
    _STATE["rebound"] += _shared_memory_answer() + _fresh_pointer_luts() + _distinct_addresses() + _record_h2d()
    with set_current_vllm_config(vllm_config), torch.device("meta"):
        wrapped = runner.load_lora_model(model, vllm_config, torch.device("meta"))
    _STATE.update(runner=runner, vllm_config=vllm_config, named=False)
    return wrapped


def _rebind_platform() -> list[str]:
    """vLLM's LoRA modules imported before the fake H100 was installed hold the platform vLLM
    resolved then (``UnspecifiedPlatform``: no GPU in the worker) as ``current_platform``; they get
    the fake H100 (``get_punica_wrapper`` -> ``PunicaWrapperGPU``, as on a CUDA host), and its answer
    to ``PIN_MEMORY`` (the dummy adapters' host tensors: pinned or not, no kernel depends on it)."""
    import sys

    from vllm import platforms

    fake = platforms._current_platform
    pin = bool(fake.is_pin_memory_available())       # the worker's answer: no pinned host memory
    out = []
    for name, mod in sorted(sys.modules.items()):
        if (name == "vllm.lora" or name.startswith("vllm.lora.")) and mod is not None:
            held = getattr(mod, "current_platform", None)
            if held is not None and held is not fake:
                setattr(mod, "current_platform", fake)  # noqa: B010 -- a module's global
                out.append(f"{name}.current_platform")
            if getattr(mod, "PIN_MEMORY", pin) != pin:      # torch_utils.PIN_MEMORY, read at import
                setattr(mod, "PIN_MEMORY", pin)  # noqa: B010
                out.append(f"{name}.PIN_MEMORY")
    return out


def _shared_memory_answer() -> list[str]:
    """``get_max_shared_memory_bytes(device.index)`` (fused_moe_lora's stage count): vLLM's C++
    answers ``cudaDevAttrMaxSharedMemoryPerBlockOptin``; here the fake H100's value, whatever the
    index (a meta tensor's ``device.index`` is None where a ``cuda:0`` tensor's is 0)."""
    import sys

    import torch
    from vllm.utils import mem_utils

    props = torch.cuda.get_device_properties(0)          # the fake H100's (the profile's) properties
    optin = int(getattr(props, "shared_memory_per_block_optin"))  # noqa: B009 -- not in torch's stubs

    def get_max_shared_memory_bytes(gpu: int | None = 0) -> int:
        return optin

    real = mem_utils.get_max_shared_memory_bytes
    out = []
    for name, mod in sorted(sys.modules.items()):
        ours = name in ("vllm.lora", "vllm.utils.mem_utils") or name.startswith("vllm.lora.")
        if ours and mod is not None and getattr(mod, "get_max_shared_memory_bytes", None) is real:
            setattr(mod, "get_max_shared_memory_bytes", get_max_shared_memory_bytes)  # noqa: B010
            out.append(f"{name}.get_max_shared_memory_bytes")
    return out


class FreshLut(dict):  # type: ignore[type-arg]
    """A LoRA weight-address LUT (``_LORA_A_PTR_DICT`` ...: ``get`` miss, build, store, ``get``) where a
    look-up takes out what is there: each call builds its own entry, as each layer's weights (their own
    addresses) do on a GPU; on meta every ``data_ptr()`` is 0 and all layers would share the first's."""

    def get(self, key: Any, default: Any = None) -> Any:
        return self.pop(key, default)


def _fresh_pointer_luts() -> list[str]:
    """vLLM's LoRA ops cache the weights' pointer tables and strides by ``data_ptr()`` tuples
    (``vllm/lora/ops/triton_ops/utils.py: _get_lora_a_ptr``, ``fused_moe_lora_op.py: _get_ptr``, ...):
    every ``*_PTR_DICT`` of ``vllm.lora.ops`` becomes a :class:`FreshLut`."""
    import sys

    out = []
    for name, mod in sorted(sys.modules.items()):
        if not name.startswith("vllm.lora.ops.") or mod is None:
            continue
        for attr, val in sorted(vars(mod).items()):
            if attr.endswith("_PTR_DICT") and isinstance(val, dict) and not isinstance(val, FreshLut):
                setattr(mod, attr, FreshLut(val))
                out.append(f"{name}.{attr}")
    return out


FAKE_BASE = 1 << 44         # the first fake address of a meta storage (far from 0: a null pointer stays 0)
_ALIGN = 1 << 12


def _distinct_addresses() -> list[str]:
    """``data_ptr()`` of a meta tensor: a distinct fake address per storage (+ the view's byte offset)
    where meta answers 0 for all, as a GPU's allocations have their own; each address handed out
    is remembered (:data:`_STATE` ``"addresses"``: address -> the tensor asked), so a table of them
    that vLLM's host builds (the LoRA ops' weight-pointer tables) says which allocation each entry is."""
    import torch

    real = torch.Tensor.data_ptr
    bases: dict[int, int] = {}
    addresses: dict[int, Any] = _STATE.setdefault("addresses", {})
    keep: list[Any] = _STATE.setdefault("address_keep", [])

    def data_ptr(self: Any) -> int:
        if self.device.type != "meta":
            return int(real(self))
        st = self.untyped_storage()
        key = int(st._cdata)
        if key not in bases:
            base = _STATE.setdefault("next_address", FAKE_BASE)
            bases[key] = base
            _STATE["next_address"] = -(-(base + max(int(st.nbytes()), 1)) // _ALIGN) * _ALIGN
            keep.append(self)          # the storage stays alive: its address is never reused
        addr = bases[key] + int(self.storage_offset()) * self.element_size()
        addresses.setdefault(addr, self)
        return addr

    torch.Tensor.data_ptr = data_ptr  # type: ignore[method-assign]
    return ["torch.Tensor.data_ptr (meta: distinct fake addresses)"]


def _record_h2d() -> list[str]:
    """vLLM's LoRA ops copy host-built tables to the device (``async_tensor_h2d``: the weight-pointer
    tables, slice starts, strides): each copy's values are kept for the step's contents."""
    import sys

    from vllm.utils import torch_utils

    real = torch_utils.async_tensor_h2d

    def async_tensor_h2d(data: Any, *args: Any, **kwargs: Any) -> Any:
        out = real(data, *args, **kwargs)
        vals = data.tolist() if hasattr(data, "tolist") else list(data)
        _STATE.setdefault("h2d", []).append((out, vals))
        return out

    out = []
    for name, mod in sorted(sys.modules.items()):
        if name.startswith("vllm.lora.ops.") and mod is not None and getattr(mod, "async_tensor_h2d", None) is real:
            setattr(mod, "async_tensor_h2d", async_tensor_h2d)  # noqa: B010 -- a module's global
            out.append(f"{name}.async_tensor_h2d")
    return out


def _table_entries(vals: list[Any]) -> list[dict[str, Any]] | None:
    """The allocations a host-built table of fake addresses points at (None: not such a table)."""
    from vkc.modeltrace.recorder import RECORDER

    addresses = _STATE.get("addresses", {})
    if not vals or not all(isinstance(v, int) and v in addresses for v in vals):
        return None
    entries = []
    for v in vals:
        t = addresses[v]
        st = RECORDER.storages.get(RECORDER._key(t))
        entries.append({"storage": st["id"] if st else None, "origin": st["first"] if st else None,
                        "nbytes": int(t.untyped_storage().nbytes()), "offset": int(t.storage_offset()),
                        "dtype": str(t.dtype).replace("torch.", ""), "shape": list(t.shape)})
    return entries


def _host_twin_metadata() -> None:
    """``PunicaWrapperGPU.update_metadata`` on a host (CPU) twin of the wrapper; the device wrapper
    keeps the twin's host-side flags and lengths, its buffers' values are kept for the contents."""
    from vllm.lora.punica_wrapper.punica_gpu import PunicaWrapperGPU
    from vllm.utils import torch_utils

    real = PunicaWrapperGPU.update_metadata

    def update_metadata(self: Any, mapping: Any, lora_index_to_id: Any, max_loras: int, vocab_size: int,
                        **kwargs: Any) -> None:
        if getattr(self, "device", None) is None or str(self.device) != "meta":
            return real(self, mapping, lora_index_to_id, max_loras, vocab_size, **kwargs)
        twin = getattr(self, "_vkc_host_twin", None)
        if twin is None:
            twin = self._vkc_host_twin = PunicaWrapperGPU(
                int(self._token_lora_indices.shape[0]), int(self._seq_start_locs.shape[0]), device="cpu",
                lora_config=self.lora_config)
            # torch.empty on a GPU: past the step's tokens the values are whatever was there (no kernel
            # reads them: the launches take the first num_tokens); the twin's start as zeros
            for n in _PUNICA_BUFFERS:
                getattr(twin, n).zero_()
            for which in ("token_mapping_meta", "prompt_mapping_meta"):
                for n in _KERNEL_META:
                    getattr(getattr(twin, which), n).zero_()
        pinned = torch_utils.PIN_MEMORY       # the twin's host-to-"device" copies stay on the host
        torch_utils.PIN_MEMORY = False
        try:
            real(twin, mapping, lora_index_to_id, max_loras, vocab_size, **kwargs)
        finally:
            torch_utils.PIN_MEMORY = pinned
        self.is_prefill = twin.is_prefill
        self.indices_len[:] = twin.indices_len
        host: list[tuple[Any, Any]] = []
        for n in _PUNICA_BUFFERS:
            host.append((getattr(self, n), getattr(twin, n).numpy().copy()))
        for which in ("token_mapping_meta", "prompt_mapping_meta"):
            mine, theirs = getattr(self, which), getattr(twin, which)
            for n in _KERNEL_META_HOST:
                getattr(mine, n).copy_(getattr(theirs, n))
            for n in _KERNEL_META:
                host.append((getattr(mine, n), getattr(theirs, n).numpy().copy()))
        _STATE.setdefault("wrappers", {})[id(self)] = self
        _STATE["host"] = host

    PunicaWrapperGPU.update_metadata = update_metadata  # type: ignore[method-assign]


def _name_buffers(model: Any) -> None:
    """The recorder's names for the wrapped layers' LoRA buffers and the Punica metadata buffers."""
    import torch

    from vkc.modeltrace.recorder import RECORDER

    for mname, mod in model.named_modules():
        for attr, val in sorted(vars(mod).items()):
            if attr == "adapter_enabled" and isinstance(val, torch.Tensor) and val.device.type == "meta":
                RECORDER.name_storage(val, f"lora:{mname}.{attr}")
                _STATE.setdefault("enabled", []).append(val)
            if "lora" not in attr:
                continue
            items = val if isinstance(val, (tuple, list)) else (val,)
            for i, t in enumerate(items):
                if isinstance(t, torch.Tensor) and t.device.type == "meta":
                    RECORDER.name_storage(t, f"lora:{mname}.{attr}" + (f"[{i}]" if len(items) > 1 else ""))
    for w in _STATE.get("wrappers", {}).values():
        for n in _PUNICA_BUFFERS:
            RECORDER.name_storage(getattr(w, n), f"lora_meta:{n.lstrip('_')}")
        for which in ("token_mapping_meta", "prompt_mapping_meta"):
            for n in _KERNEL_META:
                RECORDER.name_storage(getattr(getattr(w, which), n), f"lora_meta:{which}.{n}")


@contextlib.contextmanager
def lora_step(ctx: dict[str, Any], step: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """``maybe_dummy_run_with_lora`` around one step (``GPUModelRunner._dummy_run``'s call): the
    dummy adapters added, the mapping selected, removed after the step."""
    import numpy as np
    from vllm.config import set_current_vllm_config

    from vkc.modeltrace import worker

    runner, vc = _STATE["runner"], ctx["vllm_config"]
    md = worker._metadata(step, ctx["block_size"])
    b, tokens = int(md["num_reqs"]), int(md["num_tokens"])
    per_req = np.full(b, tokens // b, dtype=np.int32)
    lc = vc.lora_config
    info: dict[str, Any] = {}
    with set_current_vllm_config(vc), runner.maybe_dummy_run_with_lora(
            lc, num_scheduled_tokens=per_req, num_sampled_tokens=None, remove_lora=True,
            num_active_loras=lc.max_loras):
        if not _STATE["named"]:
            _name_buffers(ctx["model"])
            _STATE["named"] = True
        info["host"] = _STATE.get("host", [])   # unchanged mapping: vLLM skips the update
        _STATE["h2d"] = []
        info["h2d"] = _STATE["h2d"]
        mgr = runner.lora_manager._adapter_manager
        info["lora_index_to_id"] = list(mgr.lora_index_to_id)
        yield info


def step_result(info: dict[str, Any]) -> dict[str, Any]:
    """The step's LoRA note: the slots' adapter ids and the Punica buffers' contents by storage id."""
    from vkc.modeltrace.recorder import RECORDER
    from vkc.modeltrace.serving_host import _runs

    contents: dict[str, Any] = {}
    for t, host in info.get("host", []):
        st = RECORDER.storages.get(RECORDER._key(t))
        if st is not None:
            contents[st["id"]] = {"runs": _runs(host)}
    # the MoE LoRA layers' adapter_enabled (vllm/lora/layers/fused_moe.py: zeros of max_loras + 1, set_lora
    # sets a slot's 1, reset_lora its 0): 1 for each slot holding an adapter
    slots = [int(i is not None) for i in info.get("lora_index_to_id", [])]
    for t in _STATE.get("enabled", []):
        st = RECORDER.storages.get(RECORDER._key(t))
        n = int(t.numel())
        if st is not None:
            contents[st["id"]] = {"runs": _runs((slots + [0] * n)[:n])}
    pointers: dict[str, Any] = {}
    for t, vals in info.get("h2d", []):
        st = RECORDER.storages.get(RECORDER._key(t))
        if st is None:          # no recorded launch or op read it
            continue
        entries = _table_entries(vals) if "int" in str(t.dtype) else None
        if entries is not None:
            pointers[st["id"]] = entries
        else:
            contents[st["id"]] = {"runs": _runs(vals)}
    vc = _STATE["vllm_config"]
    lc = vc.lora_config
    return {"lora": {"max_lora_rank": int(lc.max_lora_rank), "max_loras": int(lc.max_loras),
                     "lora_index_to_id": info.get("lora_index_to_id", []),
                     "rebound_at_load": list(_STATE.get("rebound", [])),
                     "punica_wrapper": type(next(iter(_STATE.get("wrappers", {}).values()), None)).__name__},
            "contents": dict(sorted(contents.items())), "pointers": dict(sorted(pointers.items()))}
