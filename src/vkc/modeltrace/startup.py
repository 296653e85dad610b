"""Worker start-up: the steps of :mod:`vkc.modeltrace.checklist`, each a function here.

Runs only inside the worker process (imports vLLM).  Every function names, in its docstring,
the vLLM code it mirrors; the checklist holds the same names with their source fingerprints.
"""
from __future__ import annotations

import functools
import inspect
import logging
import os
import sys
from typing import Any

__all__ = [
    "StartupState",
    "block_tables",
    "build_model",
    "builders",
    "engine_config",
    "init_parallel",
    "kv_cache",
    "pre_import",
]


class StartupState:
    def __init__(self) -> None:
        self.vllm_op_impls: dict[str, Any] = {}
        self.fake_mismatches: list[str] = []
        self.guessed: set[str] = set()
        self.backend_lines: list[str] = []
        self.collectives: list[dict[str, Any]] = []
        self.weight_launches: list[str] = []


S = StartupState()


def _watch_backend_logs() -> None:
    """Keep vLLM's own "Using ... backend" lines (a record factory sees every record, whatever
    handlers vLLM's logging config installs)."""
    old = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        rec = old(*args, **kwargs)
        if rec.name.startswith("vllm"):
            try:
                msg = " ".join(rec.getMessage().split())
            except Exception:  # noqa: BLE001
                return rec
            low = msg.lower()
            if (low.startswith(("using ", "final ir op priority")) or ("backend" in low and "select" in low)) \
                    and msg not in S.backend_lines:
                S.backend_lines.append(msg)
        return rec

    logging.setLogRecordFactory(factory)


def _tolerant(fn: Any, qual: str) -> Any:
    """Call a vLLM fake with only the positional arguments it accepts (vLLM bug: some lag their schema)."""
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return fn
    if any(p.kind == p.VAR_POSITIONAL for p in params):
        return fn
    n = sum(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in params)

    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        if len(args) > n:
            note = f"{qual}: vLLM's fake takes {n} positional arguments, the schema passes {len(args)}"
            if note not in S.fake_mismatches:
                S.fake_mismatches.append(note)
            args = args[:n]
        return fn(*args, **kwargs)

    return call


def pre_import(tree_root: str, profile: dict[str, Any]) -> dict[str, int]:
    """Checklist steps ``op-schemas``, ``tolerant-fakes``, ``vllm-op-bodies``, ``fake-platform``,
    ``meta-placements``."""
    import torch
    import torch.library as tl

    from vkc.modeltrace.external import install_external_stand_ins
    from vkc.modeltrace.opschema import register_schemas

    real_fake = tl.register_fake

    def register_fake(op: Any, fn: Any = None, /, **kw: Any) -> Any:
        def reg(f: Any) -> Any:
            return real_fake(op, _tolerant(f, str(op)), **kw)
        return reg if fn is None else reg(fn)

    tl.register_fake = register_fake
    real_impl = tl.Library.impl

    def impl(self: Any, op_name: Any, fn: Any, dispatch_key: str = "", *a: Any, **kw: Any) -> Any:
        if getattr(self, "ns", None) == "vllm" and isinstance(op_name, str) and callable(fn):
            S.vllm_op_impls.setdefault(op_name.split("::")[-1].split(".")[0], fn)
        return real_impl(self, op_name, fn, dispatch_key, *a, **kw)

    tl.Library.impl = impl  # type: ignore[method-assign]
    from vkc.modeltrace.launches import platform_module

    tw = platform_module()
    tw._register_capability_ops()       # answered as an SM 9.0 build (before the schemas)
    counts = register_schemas(tree_root, S.guessed.add)
    _watch_backend_logs()
    tw.install_fake_h100(profile)
    install_external_stand_ins()        # FlashAttention (MLA prefill): recorded as external events
    _host_only_platform_answers()
    from vkc.modeltrace.startup_steps import enter_meta_placements

    enter_meta_placements()
    torch.accelerator.empty_cache = lambda: None        # vllm/v1/worker/workspace.py
    torch.accelerator.synchronize = lambda *a, **k: None
    torch.accelerator.current_device_index = lambda: 0   # the fake H100 is device 0 (Step5's DSA adapter)
    _fake_stream()
    return counts


class FakeStream:
    """A CUDA stream / event stand-in: ordering calls are no-ops on meta tensors."""

    cuda_stream = 0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        return None

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def synchronize(self) -> None:
        return None

    def wait_stream(self, _s: Any) -> None:
        return None

    def wait_event(self, _e: Any) -> None:
        return None

    def record_event(self, _e: Any = None) -> FakeStream:
        return FakeStream()

    def record(self, _s: Any = None) -> None:
        return None

    def wait(self, _s: Any = None) -> None:
        return None

    def query(self) -> bool:
        return True

    def elapsed_time(self, _other: Any) -> float:
        return 0.0


def _host_only_platform_answers() -> None:
    """No pinned host memory (mla_attention's PIN_MEMORY) and ``current_device()`` as meta (the GDN
    layers create parameters on it): host-side choices only, no kernel depends on them."""
    import torch
    from vllm import platforms

    p = platforms._current_platform
    p.is_pin_memory_available = lambda: False
    p.current_device = lambda: torch.device("meta")


def _fake_stream() -> None:
    """``torch.cuda.current_stream()`` (Marlin workspace, vllm/utils/torch_utils.py) and
    ``is_current_stream_capturing()`` (Step5's DSA prefill planner: False, as in an eager step)."""
    import torch

    torch.cuda.current_stream = lambda device=None: FakeStream()  # type: ignore[assignment,return-value]
    # the trace runs eagerly (enforce_eager): no stream is ever capturing a CUDA graph (DeepSeek-V4's compressor asks)
    torch.cuda.is_current_stream_capturing = lambda: False  # type: ignore[assignment]


def fake_streams_after_import() -> None:
    """vLLM's ``current_stream()`` / ``aux_stream()`` (vllm/utils/torch_utils.py) create CUDA
    streams on a CUDA platform; give them stand-ins (after the import: the names are annotations)."""
    import torch
    from vllm.utils import torch_utils

    torch_utils._current_stream_tls.value = FakeStream()
    torch.cuda.Stream = FakeStream          # type: ignore[misc,assignment]
    torch.cuda.Event = FakeStream           # type: ignore[misc,assignment]
    torch.Event = FakeStream                # type: ignore[misc,assignment]   # device-generic (index_group.py)
    torch.cuda.stream = lambda s=None: FakeStream()  # type: ignore[assignment,misc]
    torch.cuda.set_stream = lambda s: None  # type: ignore[assignment,misc]


def engine_config(model_dir: str, opts: dict[str, Any]) -> Any:
    """``vllm/engine/arg_utils.py: EngineArgs.create_engine_config`` (architecture inspection in-process)."""
    from vllm.engine.arg_utils import EngineArgs
    from vllm.model_executor.models import registry

    registry._run_in_subprocess = lambda fn: fn()
    if opts.get("attention_backend") in ("FLASH_ATTN", "FLASH_ATTN_MLA_SPARSE"):   # the FlashAttention backends
        from vkc.modeltrace.startup_steps import flash_attn_versions

        flash_attn_versions()
    kw: dict[str, Any] = {"model": model_dir, "skip_tokenizer_init": True, "enforce_eager": True,
                          "load_format": "dummy", "block_size": opts["block_size"],
                          "max_model_len": opts["max_model_len"], "kv_cache_dtype": opts["kv_cache_dtype"],
                          "max_num_seqs": max(256, opts["max_batch"]),
                          "max_num_batched_tokens": max(8192, opts["max_tokens"])}
    if opts.get("attention_backend"):
        kw["attention_backend"] = opts["attention_backend"]
    if opts.get("quantization"):        # --quantization (a variant's serving option; absent: the config's)
        kw["quantization"] = opts["quantization"]
    if opts.get("kda_prefill_backend"):     # --kda-prefill-backend (a variant's serving option; absent: "auto")
        kw["kda_prefill_backend"] = opts["kda_prefill_backend"]
    if opts.get("linear_backend"):      # --linear-backend (a variant's serving option; absent: "auto")
        kw["linear_backend"] = opts["linear_backend"]
    if opts.get("dtype"):               # --dtype (a variant's serving option; absent: "auto")
        kw["dtype"] = opts["dtype"]
    # linear-attention prefill: vLLM's H100 default is FlashInfer (external, JIT); take the in-tree
    # Triton/FLA kernels, as for attention (the table's header says so)
    kw["gdn_prefill_backend"] = "triton"
    return EngineArgs(**_release_engine_kwargs(EngineArgs, kw)).create_engine_config()


def _release_engine_kwargs(engine_args: Any, kw: dict[str, Any]) -> dict[str, Any]:
    """Older releases lack some engine options (0.11.0: no ``attention_backend``, which it reads from
    ``VLLM_ATTENTION_BACKEND``; no ``gdn_prefill_backend``): the environment variable where the release
    has one, else the option is left to vLLM's default, said in the trace's backend lines."""
    import dataclasses

    try:
        fields = {f.name for f in dataclasses.fields(engine_args)}
    except TypeError:
        return kw
    out = dict(kw)
    for name in [k for k in kw if k not in fields]:
        value = out.pop(name)
        if name == "attention_backend":
            os.environ["VLLM_ATTENTION_BACKEND"] = str(value)
            S.backend_lines.append(f"vkc: {name}={value} set through VLLM_ATTENTION_BACKEND (no engine option "
                                   "in this release)")
        else:
            S.backend_lines.append(f"vkc: {name}={value} not set: no engine option in this release (vLLM's "
                                   "default applies)")
    return out


def init_parallel(vllm_config: Any, tp: int, skip: tuple[str, ...] = ()) -> None:
    """``vllm/v1/worker/worker_base.py: WorkerBase.__init__`` (IR op priority) and
    ``vllm/distributed/parallel_state.py: init_distributed_environment`` /
    ``ensure_model_parallel_initialized`` (gloo, world size 1; rank 0 of ``tp`` faked)."""
    import tempfile

    import vllm.ir
    from vllm.config import set_current_vllm_config
    from vllm.distributed import parallel_state as ps

    prio = vllm_config.kernel_config.ir_op_priority
    if "ir-op-priority" not in skip and not hasattr(prio, "set_default"):
        # older releases (0.20.0): the worker sets no IR op priority at start-up, so neither does vkc
        S.backend_lines.append("vkc: no IR op priority set at start-up (this release's worker sets none)")
    elif "ir-op-priority" not in skip:      # skipped only by the test that pins the silent fallback
        prio.set_default()
        vllm.ir.set_default_torch_wrap(vllm_config.compilation_config.ir_enable_torch_wrap)
    init_file = os.path.join(tempfile.mkdtemp(prefix="vkc-dist-"), "init")
    with set_current_vllm_config(vllm_config):
        ps.init_distributed_environment(world_size=1, rank=0, local_rank=0,
                                        distributed_init_method=f"file://{init_file}", backend="gloo")
        ps.ensure_model_parallel_initialized(1, 1)
    if tp > 1:
        _fake_tp(ps.get_tp_group(), tp)
        # ModelConfig.get_num_kv_heads / get_num_attention_heads divide by this (metadata builders)
        vllm_config.parallel_config.tensor_parallel_size = tp


def _fake_tp(group: Any, tp: int) -> None:
    """Rank 0 of ``tp``: sizes from the group; collectives become events with byte counts."""
    from vkc.modeltrace.recorder import RECORDER

    group.world_size = tp
    group.rank_in_group = 0
    group.ranks = list(range(tp))

    def event(kind: str, t: Any, out_bytes: int) -> None:
        RECORDER.add({"kind": "collective", "name": f"tp.{kind}", "world_size": tp,
                      "args": [["input", RECORDER.describe(t)]], "bytes": int(t.numel() * t.element_size()),
                      "out_bytes": out_bytes})

    def all_reduce(input_: Any) -> Any:
        event("all_reduce", input_, int(input_.numel() * input_.element_size()))
        return input_

    def all_gather(input_: Any, dim: int = -1) -> Any:
        import torch
        event("all_gather", input_, int(input_.numel() * input_.element_size() * tp))
        return torch.cat([input_] * tp, dim=dim)

    def reduce_scatter(input_: Any, dim: int = -1) -> Any:
        event("reduce_scatter", input_, int(input_.numel() * input_.element_size() // tp))
        return input_.chunk(tp, dim=dim)[0].contiguous()

    group.all_reduce = all_reduce
    group.all_gather = all_gather
    group.reduce_scatter = reduce_scatter


def build_model(vllm_config: Any) -> Any:
    """``vllm/model_executor/model_loader/utils.py: initialize_model`` under meta, then
    ``process_weights_after_loading`` (quantization repacking, MoE backend choice), its host reads of
    small checkpoint tensors answered as the dummy loader fills them (:mod:`vkc.modeltrace.dummy_scalars`)."""
    import torch
    from vllm.config import set_current_vllm_config
    from vllm.model_executor.model_loader.utils import (
        initialize_model,
        process_weights_after_loading,
    )
    from vllm.utils.torch_utils import set_default_torch_dtype
    from vllm.v1.worker.workspace import init_workspace_manager

    fake_streams_after_import()
    mc = vllm_config.model_config
    with set_current_vllm_config(vllm_config):
        init_workspace_manager(torch.device("meta"))
        with set_default_torch_dtype(mc.dtype), torch.device("meta"):
            model = initialize_model(vllm_config)
        from vkc.modeltrace.dummy_scalars import shadow_small_tensors
        from vkc.modeltrace.startup_steps import WeightLaunches

        with shadow_small_tensors(model), WeightLaunches(S.weight_launches):          # checklist step dummy-scalars
            process_weights_after_loading(model, mc, torch.device("meta"))
    return model



def kv_cache(vllm_config: Any, num_blocks: int) -> tuple[dict[str, Any], dict[str, Any], Any]:
    """``GPUModelRunner.get_kv_cache_spec`` -> ``resolve_kv_cache_layout`` ->
    ``get_kv_cache_groups``/``get_kv_cache_config_from_groups`` -> ``allocate_kv_cache`` ->
    ``bind_kv_cache_to_layers`` (vllm/v1/worker/utils.py)."""
    import torch
    from vllm.config import get_layers_from_vllm_config, set_current_vllm_config
    from vllm.model_executor.layers.attention_layer_base import AttentionLayerBase
    from vllm.v1.attention.backends.utils import (
        get_supported_kv_cache_layouts,
        resolve_kv_cache_layout,
    )
    try:
        from vllm.v1.core.kv_cache_planning import (
            get_kv_cache_config_from_groups,
            get_kv_cache_groups,
        )
    except ImportError:      # vLLM <= 0.32: the same two functions, same signatures, in kv_cache_utils
        from vllm.v1.core.kv_cache_utils import (  # type: ignore[no-redef]
            get_kv_cache_config_from_groups,
            get_kv_cache_groups,
        )
    from vllm.v1.worker.utils import allocate_kv_cache, bind_kv_cache_to_layers

    with set_current_vllm_config(vllm_config):
        layers = get_layers_from_vllm_config(vllm_config, AttentionLayerBase)
        from vkc.modeltrace.startup_steps import customized_spec

        specs = {n: customized_spec(layer, s) for n, layer in layers.items()
                 if (s := layer.get_kv_cache_spec(vllm_config))}
        backends = {layers[n].get_attn_backend() for n in specs}
        names = [m.name for m in get_supported_kv_cache_layouts(backends)]
        layout = resolve_kv_cache_layout(vllm_config, [names], specs.values())
        groups = get_kv_cache_groups(vllm_config, specs)
        page = sum(g.kv_cache_spec.page_size_bytes for g in groups) or 1
        cfg = get_kv_cache_config_from_groups(vllm_config, groups, page * num_blocks * max(1, len(specs)))
        caches = allocate_kv_cache(cfg, torch.device("meta"), layout, None)
        bind_kv_cache_to_layers(caches, vllm_config.compilation_config.static_forward_context)
    return caches, layers, cfg


def builders(vllm_config: Any, kv_cfg: Any, layers: dict[str, Any]) -> list[tuple[Any, list[str], int]]:
    """``GPUModelRunner.initialize_attn_backend`` / ``initialize_metadata_builders``: one
    builder per (backend, spec) of each KV cache group, with the group's index."""
    import torch
    from vllm.config import set_current_vllm_config

    from vkc.modeltrace.startup_steps import mamba_ssu_backend

    mamba_ssu_backend(vllm_config, kv_cfg)
    out = []
    with set_current_vllm_config(vllm_config):
        for gi, group in enumerate(kv_cfg.kv_cache_groups):
            by: dict[Any, list[str]] = {}
            for n in group.layer_names:
                spec = group.kv_cache_spec
                spec = getattr(spec, "kv_cache_specs", {}).get(n, spec)
                by.setdefault((layers[n].get_attn_backend(), spec), []).append(n)
            for (backend, spec), names in by.items():
                cls = backend.get_builder_cls()
                b = cls(spec, names, vllm_config, torch.device("meta"), **_builder_kwargs(cls, spec, vllm_config))
                out.append((b, names, gi))
    return out


def _builder_kwargs(cls: Any, spec: Any, vllm_config: Any) -> dict[str, Any]:
    """``vllm/v1/worker/utils.py: AttentionGroup.create_metadata_builders``: a builder class that declares
    ``requires_block_table_width`` gets the group's block-table width (no kernel block splitting here)."""
    if not getattr(cls, "requires_block_table_width", False):
        return {}
    from vllm.v1.worker.block_table import get_block_table_width

    blocks = spec.max_num_blocks_per_req(vllm_config, vllm_config.model_config.max_model_len)
    return {"block_table_width": get_block_table_width(blocks, spec.block_size)}


def block_tables(vllm_config: Any, kv_cfg: Any) -> list[Any]:
    """``GPUModelRunner.initialize_kv_cache`` -> ``BlockTables``: per KV cache group the persistent
    block table ``[max_num_reqs, width]``, width = ``spec.max_num_blocks_per_req(vllm_config,
    max_model_len)`` aligned by ``get_block_table_width`` (decoder-only models: no encoder length).
    The attention builders get its first ``num_reqs`` rows (``gather_block_tables``), so a kernel's
    block-table stride is the width and a tile that reads past a sequence's last block stays in its row."""
    import torch

    try:
        from vllm.v1.worker.block_table import get_block_table_width
    except ImportError:        # older releases: the width is the per-request maximum itself
        get_block_table_width = None
    rows = int(vllm_config.scheduler_config.max_num_seqs)
    max_len = int(vllm_config.model_config.max_model_len)
    out = []
    for group in kv_cfg.kv_cache_groups:
        spec = group.kv_cache_spec
        try:
            width = int(spec.max_num_blocks_per_req(vllm_config, max_len))
        except (AttributeError, TypeError):
            width = -(-max_len // int(spec.block_size))
        if get_block_table_width is not None:
            width = int(get_block_table_width(width, spec.block_size,
                                              token_alignment=getattr(spec, "block_table_token_alignment", None)))
        out.append(torch.empty(rows, width, dtype=torch.int32, device="meta"))
    return out


def importable(names: tuple[str, ...]) -> dict[str, bool]:
    import importlib.util

    res = {}
    for n in names:
        try:
            res[n] = importlib.util.find_spec(n) is not None
        except (ImportError, ValueError):
            res[n] = n in sys.modules
    return res
