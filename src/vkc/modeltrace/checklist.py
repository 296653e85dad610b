"""The versioned checklist of vLLM worker start-up steps the model trace mirrors.

Each step names the vLLM code it mirrors (``file: qualname``) and the worker function that does
it (:mod:`vkc.modeltrace.startup` / :mod:`vkc.modeltrace.worker`).  A *fingerprint* is the sha256
of each mirrored function's source text, read statically with ``ast`` (for the op schemas: of the
parsed schema list).  Fingerprints recorded for known vLLM releases live in
``fingerprints.json``; a tree whose fingerprints vkc does not know gets a loud warning in the
trace result (and every artifact header), naming the steps whose vLLM code changed.

Record a release: ``python -m vkc.modeltrace.checklist record TREE_ROOT VERSION``.
"""
from __future__ import annotations

import ast
import hashlib
import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["CHECKLIST_VERSION", "FEATURE_STEPS", "STEPS", "Step", "check_features", "check_tree", "fingerprints",
           "known_fingerprints"]

CHECKLIST_VERSION = 1


@dataclass(frozen=True)
class Step:
    id: str
    mirrors: str        # "<file>: <qualname>" in the vLLM tree
    does: str           # what the worker does for it


STEPS: tuple[Step, ...] = (
    Step("op-schemas", "csrc/torch_bindings.cpp: <schemas>",
         "define every ops.def schema of _C/_moe_C/... with torch.library; Meta kernels where no fake exists"),
    Step("op-schemas-moe", "csrc/moe/torch_bindings.cpp: <schemas>", "as op-schemas, for _moe_C"),
    Step("tolerant-fakes", "vllm/_custom_ops.py: moe_wna16_marlin_gemm_fake",
         "call vLLM's fakes with the positional arguments they accept (this fake lags its schema)"),
    Step("vllm-op-bodies", "vllm/utils/torch_utils.py: direct_register_custom_op",
         "re-enter the Python bodies of torch.ops.vllm.* (else their fakes hide attention and MoE kernels)"),
    Step("fake-platform", "vllm/platforms/cuda.py: NonNvmlCudaPlatform",
         "vkc's fake H100 (SM 9.0, 132 SMs) as current_platform"),
    Step("meta-placements", "vllm/platforms/cuda.py: CudaPlatformBase",
         "a tensor placed on current_platform.device_type ('cuda') by name goes to meta (a TorchFunctionMode, "
         "entered again for the Python body of a torch.ops.vllm op the recorder runs); "
         "torch.tensor(host data) there keeps its values as a host copy's"),
    Step("fa-versions", "vllm/v1/attention/backends/fa_utils.py: get_flash_attn_version",
         "attention backends FLASH_ATTN and FLASH_ATTN_MLA_SPARSE only: the vllm_flash_attn stand-in supports FA2/FA3 "
         "as its SM 9.0 build"),
    Step("arch-inspection", "vllm/model_executor/models/registry.py: _run_in_subprocess",
         "inspect the architecture in-process"),
    Step("engine-config", "vllm/engine/arg_utils.py: EngineArgs.create_engine_config",
         "EngineArgs(model=<cut config>, enforce_eager=True, load_format='dummy', ...)"),
    Step("ir-op-priority", "vllm/v1/worker/worker_base.py: WorkerBase.__init__",
         "ir_op_priority.set_default() + set_default_torch_wrap (else RMSNorm silently runs native torch)"),
    Step("distributed-init", "vllm/distributed/parallel_state.py: init_distributed_environment",
         "gloo, world size 1"),
    Step("model-parallel", "vllm/distributed/parallel_state.py: ensure_model_parallel_initialized",
         "TP/PP groups of size 1; --tp N fakes rank 0 of N on the TP group"),
    Step("tp-collectives", "vllm/distributed/parallel_state.py: GroupCoordinator.all_reduce",
         "with --tp N collectives become events with byte counts"),
    Step("workspace", "vllm/v1/worker/workspace.py: init_workspace_manager", "on the meta device"),
    Step("model-init", "vllm/model_executor/model_loader/utils.py: initialize_model",
         "under torch.device('meta') and the model dtype"),
    Step("cute-dsl-gates", "vllm/model_executor/kernels/linear/cute_dsl/gemm_rs_ar.py: maybe_init_gemm_rs_ar",
         "CuTe DSL not installed: the gated module imports partially (modeltrace/gates.py), its gate runs as "
         "written (False on SM 9.0: not SM100-family)"),
    Step("dummy-scalars", "vllm/model_executor/model_loader/weight_utils.py: initialize_single_dummy_weight",
         "parameters/buffers of <= 1024 elements get host shadows filled by this function (the dummy load); "
         "host reads in process_weights_after_loading are answered from them (modeltrace/dummy_scalars.py)"),
    Step("weights-post", "vllm/model_executor/model_loader/utils.py: process_weights_after_loading",
         "quantization repacking and MoE backend choice; its Triton launches (online weight quantization) "
         "captured by name, not run, not a step's"),
    Step("block-size", "vllm/v1/executor/uniproc_executor.py: UniProcExecutor._init_executor",
         "after load_model: current_platform.update_block_size_for_backend(vllm_config) (vLLM's own code: the "
         "block size the model's attention backends support, the hybrid/mixed-dtype page alignment); no "
         "--block-size unless the trace asks for one; the choice recorded (vllm_config, notes.block_size)"),
    Step("kv-spec", "vllm/v1/worker/gpu_model_runner.py: GPUModelRunner.get_kv_cache_spec",
         "layer.get_kv_cache_spec() of every attention layer, an AttentionSpec through customize_attention_spec"),
    Step("kv-layout", "vllm/v1/attention/backends/utils.py: resolve_kv_cache_layout", "as the engine core"),
    Step("kv-groups", "vllm/v1/core/kv_cache_planning.py: get_kv_cache_config_from_groups",
         "get_kv_cache_groups + get_kv_cache_config_from_groups"),
    Step("kv-alloc", "vllm/v1/worker/utils.py: allocate_kv_cache", "meta buffer, vLLM's per-layer views"),
    Step("kv-bind", "vllm/v1/worker/utils.py: bind_kv_cache_to_layers", "bind the views to the layers"),
    Step("mamba-ssu", "vllm/model_executor/layers/mamba/ops/ssu_dispatch.py: initialize_mamba_ssu_backend",
         "the Mamba SSU backend, as GPUModelRunner.initialize_kv_cache picks it (no-op without Mamba1/2 layers)"),
    Step("attn-backends", "vllm/v1/worker/gpu_model_runner.py: GPUModelRunner.initialize_attn_backend",
         "one metadata builder per (backend, spec) of each KV cache group"),
    Step("block-tables", "vllm/v1/worker/gpu/model_runner.py: GPUModelRunner.initialize_kv_cache",
         "per KV cache group a persistent [max_num_seqs, width] block table (width from "
         "spec.max_num_blocks_per_req and get_block_table_width); each builder gets its first num_reqs rows"),
    Step("metadata", "vllm/v1/attention/backend.py: CommonAttentionMetadata",
         "the step's batch through the backend's own builder"),
    Step("metadata-host-reads", "vllm/third_party/flash_linear_attention/ops/index.py: prepare_chunk_indices",
         "the step's query start offsets and sequence lengths carry their host values through aten ops "
         "(dummy_scalars.metadata_shadows); a host read derived from them only (this .tolist()) is answered"),
    Step("forward", "vllm/forward_context.py: set_forward_context", "model(input_ids, positions), compute_logits"),
)


# Steps of the opt-in serving features (vkc.modeltrace.serving), checked only for traces that use
# them; their fingerprints live under "features" in fingerprints.json (the plain checklist is unchanged).
FEATURE_STEPS: dict[str, tuple[Step, ...]] = {
    "sampler": (
        Step("sampler-init", "vllm/v1/worker/gpu/model_runner.py: GPUModelRunner.load_model",
             "RequestState, InputBuffers and Sampler with the V2 runner's arguments"),
        Step("sampler-uva", "vllm/v1/worker/gpu/buffer_utils.py: UvaBuffer.__init__",
             "pinned CPU array + its device view (meta); is_uva_available() True as on a GPU host"),
        Step("sampler-admit", "vllm/v1/worker/gpu/model_runner.py: GPUModelRunner.add_requests",
             "req_states.add_request + sampler.add_request per request, then apply_staged_writes"),
        Step("sampler-staged-write", "vllm/v1/worker/gpu/buffer_utils.py: StagedWriteTensor.apply_write",
             "the staged writes' host lists kept, and applied to a host mirror of the target as "
             "_apply_write_kernel writes it (the admission kernels' buffer contents)"),
        Step("sampler-batch", "vllm/v1/worker/gpu/input_batch.py: InputBatch.make_dummy",
             "the sampled batch (as _dummy_sampler_run), idx_mapping from req_id_to_index"),
        Step("sampler-prepare", "vllm/v1/worker/gpu/model_runner.py: GPUModelRunner.prepare_inputs",
             "idx_mapping = the admitted requests' slots (req_id_to_index)"),
        Step("sampler-run", "vllm/v1/worker/gpu/model_runner.py: GPUModelRunner._dummy_sampler_run",
             "sampler(logits, input_batch) on the step's logits"),
        Step("sampler-flashinfer", "vllm/v1/sample/ops/topk_topp_sampler.py: flashinfer_sampler_supported",
             "VLLM_USE_FLASHINFER_SAMPLER=0: the in-tree Triton top-k/top-p path, not FlashInfer's"),
        # the runner's own per-step launches (modeltrace/runner_prepare.py), at the end of the featured step
        Step("runner-block-tables", "vllm/v1/worker/gpu/block_table.py: BlockTables.__init__",
             "GPUModelRunner.initialize_kv_cache's BlockTables: per group its block size, the forward's table "
             "width, uses_slot_mapping, dcp_sharded, the sliding-window reach; no context parallelism"),
        Step("runner-admit-blocks", "vllm/v1/worker/gpu/block_table.py: BlockTables.append_block_ids",
             "add_requests: each request's block ids (a fresh KV cache manager's 1, 2, ..., cdiv(seq_len, "
             "block_size) per group), then apply_staged_writes (its staged-write launch not recorded again)"),
        Step("runner-prepare-inputs", "vllm/v1/worker/gpu/model_runner.py: GPUModelRunner.prepare_inputs",
             "prepare_prefill_inputs (a prefill batch) and combine_sampled_and_draft_tokens (no drafts: the "
             "spec feature's own) over the step's batch: idx_mapping, query_start_loc, the request state"),
        Step("runner-prepare-attn", "vllm/v1/worker/gpu/model_runner.py: GPUModelRunner.prepare_attn",
             "gather_block_tables(idx_mapping, num_reqs, num_computed_tokens) and compute_slot_mappings("
             "idx_mapping, query_start_loc, positions, num_tokens): eager, no padding"),
        Step("runner-gather", "vllm/v1/worker/gpu/block_table.py: BlockTables.gather_block_tables",
             "the rows a previous larger batch left are cleared too: the steady state, the previous batch this one"),
        Step("runner-postprocess", "vllm/v1/worker/gpu/model_runner.py: GPUModelRunner.postprocess_sampled",
             "post_update after sampling and the prompt logprobs (sample_tokens' order; the spec feature's own)"),
    ),
    "bitmask": (
        Step("bitmask-sample", "vllm/v1/worker/gpu/model_runner.py: GPUModelRunner.sample",
             "apply_grammar_bitmask on the step's logits before the sampler (every request under a grammar)"),
    ),
    "sampling": (       # a sampling mix other than the default (vkc.modeltrace.mixes, mix_worker)
        Step("mix-admit", "vllm/v1/worker/gpu/sample/sampler.py: Sampler.add_request",
             "each request with its mix kind's SamplingParams (sampling states, logits processors, logprob ids)"),
        Step("mix-bad-words", "vllm/sampling_params.py: SamplingParams.update_from_tokenizer",
             "bad_words_token_ids set to the mix's token ids (what the tokenizer pass leaves; no tokenizer)"),
        Step("mix-sample", "vllm/v1/worker/gpu/sample/sampler.py: Sampler.__call__",
             "the sampler over the mixed batch: logits processors, min-p, logprobs (compute_topk_scores)"),
        Step("mix-prompt-logprobs-init", "vllm/v1/worker/gpu/model_runner.py: GPUModelRunner.load_model",
             "PromptLogprobsWorker(max_num_reqs, device, logprobs_mode); add_request per admitted request"),
        Step("mix-prompt-logprobs", "vllm/v1/worker/gpu/model_runner.py: GPUModelRunner.sample_tokens",
             "compute_prompt_logprobs(model.compute_logits, hidden_states, batch, ...) after sampling"),
        Step("mix-batch-prefill", "vllm/v1/worker/gpu/model_runner.py: GPUModelRunner.gather_batch_req_state",
             "the batch's prefill_len_np / num_computed_prefill_tokens_np from the request state"),
    ),
    "watermark": (
        Step("watermark-config", "vllm/engine/arg_utils.py: EngineArgs.create_watermark_config",
             "EngineArgs(watermark_config={key, algorithm: gumbel})"),
        Step("watermark-sampler", "vllm/v1/worker/gpu/model_runner.py: GPUModelRunner.load_model",
             "GPUWatermarkSampler(create_watermarker(config), deduplicate_contexts=..., **sampler kwargs)"),
        Step("watermark-request", "vllm/v1/engine/input_processor.py: InputProcessor.apply_watermarking",
             "each request's watermarking = VllmConfig._check_supports_watermarking(params)"),
        Step("watermark-check", "vllm/config/vllm.py: VllmConfig._check_supports_watermarking",
             "called as the input processor calls it"),
    ),
    "sampling-mask": (
        Step("mask-config", "vllm/engine/arg_utils.py: EngineArgs.create_model_config",
             "EngineArgs(return_sampling_mask=True) -> ModelConfig.return_sampling_mask"),
        Step("mask-sample", "vllm/v1/worker/gpu/sample/output.py: SamplingMaskTensors.from_logits",
             "called by Sampler.__call__ with return_sampling_mask (no fused sampler)"),
    ),
    "nans": (
        Step("nans-env", "vllm/v1/worker/gpu/sample/sampler.py: Sampler.__init__",
             "VLLM_COMPUTE_NANS_IN_LOGITS=1 set before vLLM is imported: compute_nans"),
    ),
    "spec": (
        Step("spec-config", "vllm/engine/arg_utils.py: EngineArgs.create_speculative_config",
             "EngineArgs(speculative_config={method: ngram, num_speculative_tokens: 3, ...})"),
        Step("spec-state", "vllm/v1/worker/gpu/model_runner.py: GPUModelRunner.__init__",
             "RequestState with num_speculative_steps and dense all_token_ids (n-gram)"),
        Step("spec-verify", "vllm/v1/worker/gpu/model_runner.py: GPUModelRunner.sample",
             "decode steps of 1 + k tokens: the RejectionSampler on every token's logits"),
        Step("spec-expand", "vllm/v1/worker/gpu/input_batch.py: expand_idx_mapping",
             "cu_num_logits in steps of 1 + k, expand_idx_mapping, combine_sampled_and_draft_tokens"),
        Step("spec-postprocess", "vllm/v1/worker/gpu/model_runner.py: GPUModelRunner.postprocess_sampled",
             "post_update after sampling (the default model state's postprocess_state launches nothing)"),
        Step("spec-propose", "vllm/v1/worker/gpu/spec_decode/__init__.py: init_speculator",
             "init_speculator's NgramGPUSpeculator; propose(...) after postprocess, drafts to req_states.draft_tokens"),
        Step("spec-propose-call", "vllm/v1/worker/gpu/model_runner.py: GPUModelRunner.sample_tokens",
             "the speculator.propose arguments (num_sampled, num_rejected, last_sampled_tokens, temperature, seeds)"),
    ),
    "thinking": (       # --reasoning-parser with thinking-token budgets (vkc.modeltrace.thinking)
        Step("thinking-config", "vllm/engine/arg_utils.py: EngineArgs._set_default_reasoning_config_args",
             "EngineArgs(reasoning_parser=qwen3): the engine config's ReasoningConfig(reasoning_parser=qwen3)"),
        Step("thinking-token-ids", "vllm/config/reasoning.py: ReasoningConfig.initialize_token_ids",
             "the parser's start/end strings as the tokenizer encodes them (no tokenizer: Qwen3's <think>/</think> "
             "ids, 151667/151668); the natural end is the end string"),
        Step("thinking-state", "vllm/v1/worker/gpu/sample/thinking_budget.py: ThinkingBudgetState.__init__",
             "built by the V2 runner's Sampler from vllm_config.reasoning_config"),
        Step("thinking-apply", "vllm/v1/worker/gpu/sample/thinking_budget.py: ThinkingBudgetState.apply",
             "called by Sampler.__call__ when a request of the batch has a budget (the thinking mix)"),
    ),
    # a drafter model (speculative=mtp; vkc.modeltrace.spec_draft), with the "spec" steps
    "spec-draft": (
        Step("spec-draft-select", "vllm/config/speculative.py: SpeculativeConfig.use_multi_module_mtp",
             "mtp with one MTP layer and 3 tokens: not multi-module; init_speculator takes MTPSpeculator"),
        Step("spec-draft-load", "vllm/v1/worker/gpu/spec_decode/speculator.py: DraftModelSpeculator.load_model",
             "after the target model (GPUModelRunner.load_model), before the KV cache is planned: the draft's "
             "attention layers are in the KV-cache groups, caches and metadata builders"),
        Step("spec-draft-model", "vllm/v1/worker/gpu/spec_decode/eagle/utils.py: load_eagle_model",
             "the loader's get_model(vllm_config=, model_config=draft) as vkc builds the target (meta, dummy "
             "weights); embed_tokens / lm_head shared with the target"),
        Step("spec-draft-groups", "vllm/v1/worker/gpu/attn_utils.py: init_attn_backend",
             "each KV-cache group's layers split by query-head count before backend and spec (a draft head and its "
             "target get separate metadata builders)"),
        Step("spec-draft-attn", "vllm/v1/worker/gpu/spec_decode/speculator.py: DraftModelSpeculator.set_attn",
             "set_attn(model_state, kv_cache_config, the runner's BlockTables, input buffers, attn groups), then "
             "init_cudagraph_manager(NONE) (eager)"),
        Step("spec-draft-propose", "vllm/v1/worker/gpu/spec_decode/target_dependent_ar/speculator.py: "
             "TargetDependentARSpeculator.propose",
             "after postprocess_sampled: the target's hidden states (get_drafter_hidden_states) and its forward's "
             "attention metadata and slot mappings (draft prefill), num_sampled/num_rejected from the sampler"),
    ),
    "lora": (
        Step("lora-config", "vllm/engine/arg_utils.py: EngineArgs.create_engine_config",
             "EngineArgs(enable_lora=True, max_lora_rank=R, max_loras=1): VllmConfig.lora_config"),
        Step("lora-load", "vllm/v1/worker/lora_model_runner_mixin.py: LoRAModelRunnerMixin.load_lora_model",
             "after the model is built (GPUModelRunner.load_model): LRUCacheWorkerLoRAManager wraps it, device meta"),
        Step("lora-runner-load", "vllm/v1/worker/gpu/model_runner.py: GPUModelRunner.load_model",
             "load_lora_model right after the model loader, when lora_config is set"),
        Step("lora-dummy-run", "vllm/v1/worker/gpu/model_runner.py: GPUModelRunner._dummy_run",
             "each step under maybe_dummy_run_with_lora(num_active_loras=max_loras, remove_lora=True)"),
        Step("lora-setup-dummy", "vllm/v1/worker/lora_model_runner_mixin.py: LoRAModelRunnerMixin.maybe_setup_dummy_loras",
             "vLLM's dummy adapters (create_dummy_lora, warm-up rank min(R, 8)), ids 1..max_loras"),
        Step("lora-select-dummy", "vllm/v1/worker/lora_model_runner_mixin.py: LoRAModelRunnerMixin.maybe_select_dummy_loras",
             "the mapping: requests under LoRA ids 1..max_loras cyclically, every token under its request's"),
        Step("lora-punica-metadata", "vllm/lora/punica_wrapper/punica_gpu.py: PunicaWrapperGPU.update_metadata",
             "run on a host (CPU) twin of the wrapper; the meta wrapper gets its host flags, its buffers the "
             "twin's values as contents"),
        Step("lora-kernel-meta", "vllm/lora/ops/triton_ops/lora_kernel_metadata.py: LoRAKernelMeta.prepare_tensors",
             "data-dependent (torch.unique, sort, no-LoRA flag): why the metadata is computed on the host twin"),
        Step("lora-shared-memory", "vllm/utils/mem_utils.py: get_max_shared_memory_bytes",
             "the fake H100's cudaDevAttrMaxSharedMemoryPerBlockOptin for any device index (fused_moe_lora asks "
             "with a meta tensor's index, None)"),
        Step("lora-ptr-luts", "vllm/lora/ops/triton_ops/utils.py: _get_lora_a_ptr",
             "the weight-address LUTs keyed by data_ptr(): each call builds its own "
             "entry, as each layer's own addresses do on a GPU, and each step records its tables (every *_PTR_DICT of vllm.lora.ops)"),
        Step("lora-ptr-luts-b", "vllm/lora/ops/triton_ops/utils.py: _get_lora_b_ptr", "as lora-ptr-luts"),
        Step("lora-ptr-luts-moe", "vllm/lora/ops/triton_ops/fused_moe_lora_op.py: _get_ptr", "as lora-ptr-luts"),
        Step("lora-ptr-tables", "vllm/utils/torch_utils.py: async_tensor_h2d",
             "the LoRA ops' host-built tables (weight addresses, slice starts, strides): each copy's values "
             "kept as the step's contents; a meta tensor's data_ptr() is a distinct fake address per storage "
             "(remembered), so each weight-pointer table entry names the allocation it points at"),
    ),
}


def _find(tree: ast.AST, qualname: str) -> ast.AST | None:
    parts = qualname.split(".")

    def walk(node: ast.AST, rest: list[str]) -> ast.AST | None:
        for child in ast.walk(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and child.name == rest[0]:
                if len(rest) == 1:
                    return child
                hit = walk(child, rest[1:])
                if hit is not None:
                    return hit
        return None

    return walk(tree, parts)


def _fingerprint(root: Path, step: Step) -> str | None:
    rel, _, qual = step.mirrors.partition(": ")
    path = root / rel
    if not path.is_file():
        return None
    text = path.read_text(encoding="utf-8")
    if qual == "<schemas>":
        from vkc.modeltrace.opschema import parse_schemas

        blob = "\n".join(f"{ns}::{sch}" for ns, sch in parse_schemas(root, (rel,)))
    else:
        node = _find(ast.parse(text), qual)
        if node is None:
            return None
        blob = ast.get_source_segment(text, node) or ""
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def fingerprints(tree_root: str | Path, steps: tuple[Step, ...] = STEPS) -> dict[str, str | None]:
    root = Path(tree_root)
    return {s.id: _fingerprint(root, s) for s in steps}


def _feature_steps(features: tuple[str, ...]) -> tuple[Step, ...]:
    """Every sampling feature builds the sampler's runner state (request slots, the batch): its steps
    too (``lora`` alone changes the forward and samples nothing)."""
    names = set(features) | ({"sampler"} if set(features) - {"lora"} else set())
    return tuple(s for f in sorted(names) for s in FEATURE_STEPS.get(f, ()))


def check_features(tree_root: str | Path, version: str, features: tuple[str, ...],
                   status: str) -> tuple[str, tuple[str, ...], Mapping[str, str | None]]:
    """:func:`check_tree` for the feature steps: ``(status, warnings, fingerprints)``, the status
    ``"unknown"`` when ``status`` is or a feature step's vLLM code is not a recorded release's."""
    fps = fingerprints(tree_root, _feature_steps(features))
    data = json.loads((Path(__file__).with_name("fingerprints.json")).read_text())
    known: dict[str, dict[str, str]] = data.get("features", {})
    if any(all(ref.get(k) == v for k, v in fps.items()) for ref in known.values()):
        return status, (), fps
    ref = known.get(version) or (known[max(known)] if known else {})
    changed = sorted(k for k in fps if fps[k] != ref.get(k))
    warn = (f"UNVERIFIED vLLM tree ({version}) for serving features {', '.join(features)}: the checklist "
            f"does not know the source of {len(changed)} feature step(s) it mirrors ({', '.join(changed)}); "
            "the sampler kernels traced may differ from what this vLLM's runner launches")
    return "unknown", (warn,), fps


def known_fingerprints() -> dict[str, dict[str, str]]:
    return json.loads((Path(__file__).with_name("fingerprints.json")).read_text())["versions"]


def check_tree(tree_root: str | Path, version: str) -> tuple[str, tuple[str, ...], Mapping[str, str | None]]:
    """``(status, warnings, fingerprints)``; status ``"known"`` when every step matches a recorded release."""
    fps = fingerprints(tree_root)
    known = known_fingerprints()
    for v, ref in sorted(known.items()):
        if all(fps.get(k) == ref.get(k) for k in ref) and set(ref) == set(fps):
            return "known", (), fps
    ref = known.get(version) or (known[max(known)] if known else {})
    changed = sorted(k for k in fps if fps[k] != ref.get(k))
    warn = (f"UNVERIFIED vLLM tree ({version}): the model-trace start-up checklist v{CHECKLIST_VERSION} "
            f"does not know the source of {len(changed)} step(s) it mirrors ({', '.join(changed)}); "
            "the kernels traced may differ from what this vLLM's worker runs")
    return "unknown", (warn,), fps


def _record(root: str, version: str) -> int:
    path = Path(__file__).with_name("fingerprints.json")
    data: dict[str, Any] = (json.loads(path.read_text()) if path.is_file()
                            else {"checklist_version": CHECKLIST_VERSION, "versions": {}})
    fps = fingerprints(root)
    missing = [k for k, v in fps.items() if v is None]
    if missing:
        print(f"steps not found in the tree: {missing}", file=sys.stderr)
        return 1
    data["versions"][version] = fps
    feats = fingerprints(root, _feature_steps(tuple(FEATURE_STEPS)))
    if any(v is None for v in feats.values()):
        print(f"feature steps not found in the tree: {[k for k, v in feats.items() if v is None]}", file=sys.stderr)
        return 1
    data.setdefault("features", {})[version] = feats
    data["checklist_version"] = CHECKLIST_VERSION
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    print(f"recorded {len(fps)} fingerprints for {version}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "record":
        sys.exit(_record(sys.argv[2], sys.argv[3]))
    print(__doc__)
    sys.exit(2)
