"""Speculative decoding with a drafter model in the traced step, worker side (feature ``spec``; imports vLLM).

``speculative=mtp`` (:data:`vkc.modeltrace.spec.SPEC_CONFIGS`): ``--speculative-config
'{"method": "mtp", "num_speculative_tokens": 3}'`` on a target whose config has multi-token-prediction
layers (DeepSeek-V3: ``num_nextn_predict_layers`` 1).  vLLM builds the drafter's config from the target's
own (``SpeculativeConfig.__post_init__``: ``model`` defaults to the target, ``hf_config_override`` turns
``DeepseekV3ForCausalLM`` into ``DeepSeekMTPModel``); with one MTP layer and 3 tokens ``init_speculator``
(``vllm/v1/worker/gpu/spec_decode/__init__.py``) takes ``MTPSpeculator`` (``use_multi_module_mtp()`` is
``min(1, 3) > 1`` = False), a ``TargetDependentARSpeculator``.  Mirrored, each a checklist feature step:

* ``spec-draft-load`` (``GPUModelRunner.load_model``): after the target model, ``init_speculator`` and
  ``speculator.load_model(target)``, vLLM's ``load_eagle_model`` with the loader's ``get_model`` answered
  as :func:`vkc.modeltrace.startup.build_model` builds a model (meta, dummy weights); the draft's attention
  layers register in the static forward context before the KV cache is planned, so the KV-cache groups,
  the caches and the metadata builders include them (``GPUModelRunner.initialize_kv_cache``);
* ``speculative=draft-model`` (``--speculative-config '{"method": "draft_model", "model": ...}'``, the drafter a
  bundled model whose config the request carries, cut as the target's): ``StandaloneARSpeculator``, its layers
  built under vLLM's ``prefix="draft_model"``; ``spec-draft-groups``: each KV-cache group's builders split by
  query-head count, as ``init_attn_backend`` does (the 70B's 64 heads, the 8B's 32);
* ``spec-draft-attn`` (``GPUModelRunner.initialize_kv_cache``): ``speculator.set_attn`` with the runner's
  ``BlockTables`` (:mod:`vkc.modeltrace.runner_prepare`) and ``init_cudagraph_manager`` (eager: NONE);
* ``spec-draft-propose`` (``GPUModelRunner.sample_tokens``): ``propose`` over the step's batch with the
  target's hidden states (``get_drafter_hidden_states``) and the attention metadata and slot mappings of the
  target forward (draft prefill reuses them), ``num_sampled`` / ``num_rejected`` from the sampler.
"""
from __future__ import annotations

from typing import Any

__all__ = ["DRAFT", "DRAFT_METHODS", "draft_dir", "install_draft", "propose"]

DRAFT_METHODS = ("mtp", "draft_model")
DRAFT: dict[str, Any] = {}          # "speculator", "forward" (the target forward's attn metadata, slot mappings)


def install_draft() -> None:
    """Before the worker starts: the drafter built right after the target model (``spec-draft-load``), and
    the target forward's attention metadata kept for the draft prefill."""
    import vllm.forward_context as fc

    from vkc.modeltrace import startup, worker

    real_build = startup.build_model

    def build_model(vllm_config: Any) -> Any:
        model = real_build(vllm_config)
        DRAFT["model"] = model
        DRAFT["speculator"] = _load_speculator(vllm_config, model, real_build)
        return model

    startup.build_model = build_model  # type: ignore[assignment]
    real_recorders = worker._install_recorders

    def install_recorders(model: Any) -> None:        # the drafter's modules and weights named as the target's
        from vkc.modeltrace.recorder import RECORDER

        real_recorders(model)
        draft = DRAFT["speculator"].model
        RECORDER.module_names.update({id(m): f"drafter.{n}" if n else "drafter" for n, m in draft.named_modules()
                                      if id(m) not in RECORDER.module_names})
        for n, p in list(draft.named_parameters()) + list(draft.named_buffers()):
            if RECORDER._key(p) not in RECORDER.storages:
                RECORDER.name_storage(p, f"weight:drafter.{n}")

    worker._install_recorders = install_recorders  # type: ignore[assignment]
    startup.builders = _split_by_heads(startup.builders)  # type: ignore[assignment]
    real_ctx = fc.set_forward_context

    def set_forward_context(attn_metadata: Any, vllm_config: Any, *args: Any, **kwargs: Any) -> Any:
        DRAFT["forward"] = (attn_metadata, kwargs.get("slot_mapping"))
        return real_ctx(attn_metadata, vllm_config, *args, **kwargs)

    fc.set_forward_context = set_forward_context  # type: ignore[assignment]


def _split_by_heads(real: Any) -> Any:
    """``startup.builders`` with each KV-cache group's layers split by their query-head count first, as
    ``init_attn_backend`` keys its attention groups (``vllm/v1/worker/gpu/attn_utils.py``: "layers with
    different Q-head counts (e.g. a spec-decode draft head and its target) get separate metadata builders");
    checklist step ``spec-draft-groups``."""
    import dataclasses

    def builders(vllm_config: Any, kv_cfg: Any, layers: dict[str, Any]) -> list[tuple[Any, list[str], int]]:
        heads = sorted({int(getattr(layer, "num_heads", 0) or 0) for layer in layers.values()})
        if len(heads) < 2:
            return list(real(vllm_config, kv_cfg, layers))
        out: list[tuple[Any, list[str], int]] = []
        for h in heads:
            groups = [dataclasses.replace(g, layer_names=[n for n in g.layer_names
                                                          if int(getattr(layers[n], "num_heads", 0) or 0) == h])
                      for g in kv_cfg.kv_cache_groups]
            part = dataclasses.replace(kv_cfg, kv_cache_groups=groups)
            out += [(b, names, gi) for b, names, gi in real(vllm_config, part, layers) if names]
        return out

    return builders


def draft_dir(config: dict[str, Any]) -> str:
    """A directory holding the drafter's ``config.json`` (the request's ``draft_config``, cut as the target's),
    what ``--speculative-config``'s ``model`` names (``speculative=draft-model``)."""
    import json
    import os
    import tempfile

    path = tempfile.mkdtemp(prefix="vkc-draft-")
    with open(os.path.join(path, "config.json"), "w") as fh:
        json.dump(config, fh)
    return path


def _load_speculator(vllm_config: Any, target: Any, build: Any) -> Any:
    """``init_speculator`` + ``speculator.load_model(target)`` (``GPUModelRunner.load_model``), the loader's
    ``get_model(vllm_config=, model_config=)`` as vkc builds the target (``initialize_model`` under meta)."""
    import dataclasses

    import torch
    from vllm.config import set_current_vllm_config
    from vllm.model_executor.model_loader import utils as loader_utils
    from vllm.v1.worker.gpu.spec_decode import init_speculator
    from vllm.v1.worker.gpu.spec_decode.eagle import utils as eagle_utils
    from vllm.v1.worker.gpu.spec_decode.standalone_ar import speculator as standalone

    real_init = loader_utils.initialize_model

    def get_model(*, vllm_config: Any, model_config: Any = None, prefix: str = "") -> Any:
        """``get_model`` -> ``BaseModelLoader.load_model`` -> ``initialize_model(vllm_config, model_config=,
        prefix=)``: the standalone drafter's layers are ``draft_model.*``, apart from the target's."""
        vc = vllm_config if model_config is None else dataclasses.replace(vllm_config, model_config=model_config)

        def initialize_model(config: Any, **kw: Any) -> Any:
            return real_init(config, **({"prefix": prefix} if prefix else {}), **kw)

        loader_utils.initialize_model = initialize_model  # type: ignore[assignment]
        try:
            return build(vc)
        finally:
            loader_utils.initialize_model = real_init  # type: ignore[assignment]

    real = eagle_utils.get_model, standalone.get_model
    eagle_utils.get_model = standalone.get_model = get_model  # type: ignore[assignment]
    try:
        with set_current_vllm_config(vllm_config):
            spec = init_speculator(vllm_config, torch.device("meta"), None)  # type: ignore[arg-type]
            spec.load_model(target)
    finally:
        eagle_utils.get_model, standalone.get_model = real  # type: ignore[assignment]
    return spec


def propose(state: dict[str, Any], ctx: dict[str, Any], batch: Any, out: Any, hidden: Any, k: int) -> Any:
    """``speculator.propose`` as ``GPUModelRunner.sample_tokens`` calls it after ``postprocess_sampled``
    (``spec-draft-propose``); ``set_attn`` / ``init_cudagraph_manager`` once (``spec-draft-attn``)."""
    from vllm.config import set_current_vllm_config
    from vllm.config.compilation import CUDAGraphMode
    from vllm.v1.worker.gpu.spec_decode.utils import get_drafter_hidden_states

    from .runner_prepare import KV_CONFIG, RUNNER_STORAGE_OFFSET, _block_tables
    from .storage_tables import feature_storages

    spec, rs, sampler = DRAFT["speculator"], state["req_states"], state["sampler"]
    if not getattr(spec, "_vkc_attn", False):
        if "runner" not in state:       # GPUModelRunner.initialize_kv_cache's BlockTables, as runner_prepare makes them
            with feature_storages(ctx, key="runner_storages", offset=RUNNER_STORAGE_OFFSET):
                state["runner"] = _block_tables(state, [int(t.shape[1]) for t in ctx["block_tables"]])
        spec.set_attn(None, KV_CONFIG["config"], state["runner"]["tables"], state["buffers"], [])
        spec.init_cudagraph_manager(CUDAGraphMode.NONE)
        spec._vkc_attn = True
    attn_metadata, slots = DRAFT["forward"]
    # propose's own @torch.inference_mode left off (its draft forward, _run_model, keeps its own): under inference
    # mode a dtype cast (StandaloneAR's last_sampled.int()) reaches the recorder as the view-flagged aten::to, which
    # it skips as a view, so the cast's result would have no producer; outside it is aten::_to_copy, recorded.
    # Inference mode changes no launch (autograd bookkeeping only).
    run = getattr(type(spec).propose, "__wrapped__", type(spec).propose)
    with set_current_vllm_config(state["vllm_config"]):
        return run(
            spec, batch, attn_metadata, slots, get_drafter_hidden_states(DRAFT["model"], hidden), None,
            out.num_sampled, out.num_rejected, rs.last_sampled_tokens, rs.next_prefill_tokens,
            sampler.sampling_states.temperature.gpu, sampler.sampling_states.seeds.gpu,
            num_speculative_tokens=k)
