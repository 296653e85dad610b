"""Model-trace worker: ``python -m vkc.modeltrace.worker < request.json > response.json``.

Runs vLLM's own model class for one decode/prefill step per requested shape on ``device="meta"``
under vkc's fake H100 (see :mod:`vkc.modeltrace.checklist` for the start-up steps) and records every
Triton launch, custom-op call, aten compute op and (with ``tp > 1``) collective.  Request::

    {"tree_root": "...", "profile": {...}, "config": {<config.json, layers cut>},
     "options": {"tp", "attention_backend", "kv_cache_dtype", "block_size", "max_model_len", ...},
     "steps": [{"id", "workload": "decode"|"prefill", "batch", "ctx", "prompt_len"}]}

Response: ``{"ok", "error", "versions", "backends", "importable", "warnings", "steps": [{"id",
"ok", "error", "events"}], ...}``.  vLLM's logs go to stderr; stdout carries only the JSON.
"""
from __future__ import annotations

import dataclasses
import json
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

OPTIONAL_PACKAGES = ("flashinfer", "triton_kernels", "deep_gemm", "deep_ep",
                     "compressed_tensors", "flash_mla", "aiter", "pplx_kernels")


def _install_recorders(model: Any) -> None:
    import torch

    from vkc.modeltrace.launches import capture_module
    tw = capture_module()
    from vkc.modeltrace.recorder import RECORDER, FactoryAdapter, LaunchList

    tw.install_capture()
    tw.STATE.factory = FactoryAdapter()  # type: ignore[assignment]
    tw.STATE.launches = LaunchList()
    RECORDER.module_names = {id(m): n for n, m in model.named_modules()}
    torch.nn.modules.module.register_module_forward_pre_hook(RECORDER.pre_hook)
    torch.nn.modules.module.register_module_forward_hook(RECORDER.post_hook)
    for n, p in list(model.named_parameters()) + list(model.named_buffers()):
        RECORDER.name_storage(p, f"weight:{n}")


def _record_ir_dispatch() -> None:
    """Note which provider each vLLM IR op call picks, and whether a priority list was set, so the
    silent-fallback guard tells vLLM's own choice of the native path from a missing priority."""
    from vllm.ir.op import IrOp

    from vkc.modeltrace.recorder import RECORDER

    real = IrOp.dispatch

    def dispatch(self: Any, *args: Any, **kwargs: Any) -> Any:
        impl = real(self, *args, **kwargs)
        if RECORDER.active:
            RECORDER.ir_dispatches.append((self.name, str(impl.provider), bool(self._priority_impls)))
        return impl

    IrOp.dispatch = dispatch  # type: ignore[method-assign]


def _reenter_vllm_ops() -> list[str]:
    """``torch.ops.vllm.X`` reaching the dispatch mode runs the Python body vLLM registered for the
    GPU (its fake would hide the attention and MoE kernels on meta tensors)."""
    from vkc.modeltrace.recorder import REENTER
    from vkc.modeltrace.startup import S

    REENTER.update(S.vllm_op_impls)
    return sorted(REENTER)


def _metadata(step: dict[str, Any], block_size: int) -> dict[str, Any]:
    import torch

    b = int(step["batch"])
    if step["workload"] == "decode":
        q, ctx = 1, int(step["ctx"])
    else:
        q = ctx = int(step["prompt_len"])
    tokens = b * q
    blocks_per_seq = -(-ctx // block_size)
    meta = torch.device("meta")
    qsl_cpu = torch.arange(0, tokens + 1, q, dtype=torch.int32)
    seq_cpu = torch.full((b,), ctx, dtype=torch.int32)
    return {"num_reqs": b, "num_tokens": tokens, "q": q, "ctx": ctx, "blocks": b * blocks_per_seq,
            "query_start_loc": torch.empty(b + 1, dtype=torch.int32, device=meta), "query_start_loc_cpu": qsl_cpu,
            "seq_lens": torch.empty(b, dtype=torch.int32, device=meta), "seq_lens_cpu_upper_bound": seq_cpu,
            "slot_mapping": torch.empty(tokens, dtype=torch.int64, device=meta),
            "positions": torch.empty(tokens, dtype=torch.int64, device=meta),
            "input_ids": torch.empty(tokens, dtype=torch.int32, device=meta),
            "logits_indices": torch.empty(b, dtype=torch.int64, device=meta)}


def run_step(ctx: dict[str, Any], step: dict[str, Any]) -> dict[str, Any]:
    import torch
    from vllm.config import set_current_vllm_config
    from vllm.forward_context import set_forward_context
    from vllm.v1.attention.backend import CommonAttentionMetadata

    from vkc.modeltrace.recorder import RECORDER, make_dispatch_mode

    vc, model = ctx["vllm_config"], ctx["model"]
    md = _metadata(step, ctx["block_size"])
    RECORDER.reset_step()
    # each KV cache group's builder gets the first num_reqs rows of the group's persistent block table
    tables = [bt[: md["num_reqs"]] for bt in ctx["block_tables"]]
    if not tables:                          # no KV cache group (attention-free): the CAM still needs one
        tables = [torch.empty(md["num_reqs"], -(-md["ctx"] // ctx["block_size"]), dtype=torch.int32,
                              device="meta")]
    for k in ("query_start_loc", "seq_lens", "slot_mapping", "logits_indices"):
        RECORDER.name_storage(md[k], f"metadata:{k}")
    for bt in tables:
        RECORDER.name_storage(bt, "metadata:block_table_tensor")
    RECORDER.name_storage(md["positions"], "input:positions")
    RECORDER.name_storage(md["input_ids"], "input:input_ids")
    cam = CommonAttentionMetadata(
        query_start_loc=md["query_start_loc"], query_start_loc_cpu=md["query_start_loc_cpu"],
        seq_lens=md["seq_lens"], num_reqs=md["num_reqs"], num_actual_tokens=md["num_tokens"],
        max_query_len=md["q"], max_seq_len=md["ctx"], block_table_tensor=tables[0],
        slot_mapping=md["slot_mapping"], causal=True, positions=md["positions"],
        seq_lens_cpu_upper_bound=md["seq_lens_cpu_upper_bound"],
        # a host tensor, as gpu_model_runner.py makes it (num_computed_tokens_cpu < num_prompt_tokens_cpu)
        is_prefilling=torch.full((md["num_reqs"],), step["workload"] == "prefill", dtype=torch.bool))
    attn_metadata: dict[str, Any] = {}
    t0 = time.perf_counter()
    from vkc.modeltrace.dummy_scalars import metadata_shadows

    host = [(md["query_start_loc"], md["query_start_loc_cpu"]), (md["seq_lens"], md["seq_lens_cpu_upper_bound"])]
    with set_current_vllm_config(vc), metadata_shadows(host) as shadows:
        for builder, names, group in ctx["builders"]:
            m = _build(builder, dataclasses.replace(cam, block_table_tensor=tables[min(group, len(tables) - 1)]),
                       shadows)
            attn_metadata.update({n: m for n in names})
        slots = {n: md["slot_mapping"] for n in attn_metadata}
        RECORDER.active, RECORDER.shadows = True, shadows
        try:
            with make_dispatch_mode(), set_forward_context(attn_metadata, vc, num_tokens=md["num_tokens"],
                                                           slot_mapping=slots):
                hidden = model(input_ids=md["input_ids"], positions=md["positions"])
                if isinstance(hidden, tuple):
                    hidden = hidden[0]
                model.compute_logits(hidden[md["logits_indices"]])
        finally:
            RECORDER.active, RECORDER.shadows = False, None
    answered = sorted(set(shadows.answered))
    host_contents = RECORDER.host_contents()
    return {"id": step["id"], "ok": True, "error": None, "events": RECORDER.events,
            **({"metadata_host_reads": answered} if answered else {}),
            **({"host_contents": host_contents} if host_contents else {}),
            "forward_s": round(time.perf_counter() - t0, 4), "num_tokens": md["num_tokens"]}


def _build(builder: Any, cam: Any, shadows: Any) -> Any:
    """One metadata builder's ``build`` under the recorder's dispatch mode in its ``building`` state: its
    allocations and host-to-device copies are noted (a Triton launch of the builder -- the Mamba block-table
    gather -- writes a buffer the trace knows; a copied host array, or a result the metadata ``shadows`` computed,
    keeps its values), no op is an event.  A
    field whose storage no recorded launch or op wrote is named ``metadata:<field>``."""
    import torch

    from vkc.modeltrace.recorder import RECORDER, make_dispatch_mode

    RECORDER.building, RECORDER.shadows = True, shadows
    try:
        with make_dispatch_mode():
            m = builder.build(common_prefix_len=0, common_attn_metadata=cam)
    finally:
        RECORDER.building, RECORDER.shadows = False, None
    for f, v in _fields(m):
        if isinstance(v, torch.Tensor) and v.device.type == "meta":
            st = RECORDER.storages.get(RECORDER._key(v))
            if st is None or st["producer"] in ("alloc", "host:h2d"):
                RECORDER.name_storage(v, f"metadata:{f}")
                st = RECORDER.storages[RECORDER._key(v)]
                st["first"] = f"metadata:{f}" if st["first"] in ("alloc", "host:h2d") else st["first"]
        elif dataclasses.is_dataclass(v) and not isinstance(v, type):
            _name_nested(v)
    return m


_INT_DTYPES = ("torch.int32", "torch.int64")


def _name_nested(m: Any) -> None:
    """Name the integer tensors of a per-phase metadata object inside a builder's metadata
    ``metadata:<its class>.<field>`` (MiniMax-M3's ``MiniMaxM3IndexerPrefillMetadata.cu_seqlens_q``): the
    class says what a field holds (a decode ``seq_lens`` may be pool-granular, Glm5Next's kpool indexer);
    a storage a recorded launch or op wrote, or one named already (a view of ``seq_lens``), keeps its name."""
    import torch

    from vkc.modeltrace.recorder import RECORDER

    for f, v in _fields(m):
        if isinstance(v, torch.Tensor) and v.device.type == "meta" and str(v.dtype) in _INT_DTYPES:
            st = RECORDER.storages.get(RECORDER._key(v))
            if st is None or st["producer"] in ("alloc", "host:h2d"):
                RECORDER.name_storage(v, f"metadata:{type(m).__name__}.{f}")


def _fields(m: Any) -> list[tuple[str, Any]]:
    """A metadata object's fields: its ``__dict__``, else its slots (a builder may return a slotted class)."""
    if hasattr(m, "__dict__"):
        return sorted(vars(m).items())
    names = {n for c in type(m).__mro__ for n in getattr(c, "__slots__", ())}
    return sorted((n, getattr(m, n)) for n in names if hasattr(m, n))


def _startup(req: dict[str, Any], resp: dict[str, Any]) -> dict[str, Any]:
    from vkc.modeltrace import startup as st

    opts = req["options"]
    timings: dict[str, float] = {}
    t = time.perf_counter()
    from vkc.modeltrace.external import stand_in_missing_packages
    from vkc.modeltrace.release_stubs import install_release_stubs

    resp["stand_ins"] = stand_in_missing_packages()     # import-only (multimodal files' image libraries)
    if opts.get("recorded"):        # MODEL@deep-gemm=recorded,...: before vLLM probes for the packages
        from vkc.modeltrace.recorded import install_recorded
        resp["recording_packages"] = install_recorded(opts["recorded"], req["profile"])
    resp["stand_ins"] += install_release_stubs(Path(req["tree_root"]))   # a release's module-level imports
    resp["schemas"] = st.pre_import(req["tree_root"], req["profile"])
    model_dir = tempfile.mkdtemp(prefix="vkc-model-")
    with open(os.path.join(model_dir, "config.json"), "w") as fh:
        json.dump(req["config"], fh)
    vc = st.engine_config(model_dir, opts)
    timings["engine_config_s"] = time.perf_counter() - t
    st.init_parallel(vc, int(opts.get("tp", 1)), tuple(req.get("skip_steps", ())))
    from vkc.modeltrace.recording_packages import install_recording_packages

    resp["recording_packages"] = resp.get("recording_packages", []) + install_recording_packages()  # flashinfer
    from vkc.modeltrace.gates import LEFT_OUT, install_gated_imports

    install_gated_imports(req["tree_root"])            # checklist step cute-dsl-gates
    t = time.perf_counter()
    model = st.build_model(vc)
    timings["build_model_s"] = time.perf_counter() - t
    from vkc.modeltrace.startup_steps import update_block_size

    resp["block_size"] = update_block_size(vc)          # checklist step block-size (after load_model)
    caches, layers, kv_cfg = st.kv_cache(vc, _num_blocks(req, vc.cache_config.block_size))
    ctx = {"vllm_config": vc, "model": model, "block_size": vc.cache_config.block_size,
           "builders": st.builders(vc, kv_cfg, layers), "block_tables": st.block_tables(vc, kv_cfg)}
    _install_recorders(model)
    _record_ir_dispatch()
    from vkc.modeltrace.recorder import RECORDER
    for n, c in sorted(caches.items()):
        if RECORDER._key(c) not in RECORDER.storages:
            RECORDER.name_storage(c, f"kv_cache:{n}")
    resp["reentered_vllm_ops"] = _reenter_vllm_ops()
    from vkc.modeltrace.dummy_scalars import answered
    resp["dummy_scalars"] = answered()
    resp["weight_launches"] = sorted(set(st.S.weight_launches))
    resp["gated_imports"] = {m: list(v) for m, v in sorted(LEFT_OUT.items())}
    resp["timings"] = {k: round(v, 3) for k, v in timings.items()}
    resp["vllm_config"] = {"dtype": str(vc.model_config.dtype).replace("torch.", ""),
                           "quantization": vc.model_config.quantization,
                           "kv_cache_dtype": vc.cache_config.cache_dtype,
                           "block_size": vc.cache_config.block_size,
                           "kv_cache_layout": vc.cache_config.kv_cache_layout,
                           "attention_backend": str(vc.attention_config.backend),
                           "enforce_eager": vc.model_config.enforce_eager}
    resp["attention_layers"] = {n: type(l.impl).__name__ if hasattr(l, "impl") else type(l).__name__
                                for n, l in sorted(layers.items())}
    return ctx


def _num_blocks(req: dict[str, Any], block_size: int) -> int:
    """The KV-cache blocks to allocate: the request's count (sized at block 16), or more where the block
    size vLLM chose is smaller and the steps' sequences need more."""
    need = sum(int(s["batch"]) * -(-max(int(s["ctx"]), int(s["prompt_len"])) // int(block_size))
               for s in req["steps"])
    return max(int(req["options"]["num_blocks"]), need + 1)


def main() -> int:
    req = json.load(sys.stdin)
    real_stdout = sys.stdout
    sys.stdout = sys.stderr
    os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
    sys.path.insert(0, req["tree_root"])
    from vkc.modeltrace.launches import capture_module
    from vkc.modeltrace.startup import importable
    tw = capture_module()
    tw.STATE.tree_root = os.path.abspath(req["tree_root"])
    resp: dict[str, Any] = {"ok": False, "error": None, "steps": [], "warnings": []}
    t0 = time.perf_counter()
    try:
        import torch
        import triton
        resp["versions"] = {"torch": torch.__version__, "triton": triton.__version__,
                            "python": sys.version.split()[0]}
        resp["importable"] = importable(OPTIONAL_PACKAGES)   # before any stand-in module exists
        ctx = _startup(req, resp)
        for step in req["steps"]:
            try:
                resp["steps"].append(run_step(ctx, step))
            except Exception as e:  # noqa: BLE001
                resp["steps"].append({"id": step["id"], "ok": False, "error": f"{type(e).__name__}: {e}",
                                      "traceback": traceback.format_exc(limit=-40), "events": []})
        resp["ok"] = all(s["ok"] for s in resp["steps"])
        if not resp["ok"]:
            resp["error"] = next(s["error"] for s in resp["steps"] if not s["ok"])
    except Exception as e:  # noqa: BLE001
        resp["error"] = f"{type(e).__name__}: {e}"
        resp["traceback"] = traceback.format_exc(limit=-40)
    _finish(resp, t0)
    real_stdout.write(json.dumps(resp, sort_keys=True, default=str))
    real_stdout.flush()
    return 0


def _finish(resp: dict[str, Any], t0: float) -> None:
    from vkc.modeltrace.external import USED
    from vkc.modeltrace.recorder import RECORDER
    from vkc.modeltrace.startup import S

    resp["warnings"] = sorted(set(RECORDER.warnings))
    resp["external_stand_ins"] = sorted(USED)
    resp["backends"] = S.backend_lines
    resp["fake_mismatches"] = S.fake_mismatches
    resp["guessed_outputs"] = sorted(S.guessed)
    resp.setdefault("timings", {})["process_s"] = round(time.perf_counter() - t0, 3)


if __name__ == "__main__":
    sys.exit(main())
