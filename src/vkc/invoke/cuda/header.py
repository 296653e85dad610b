"""The provenance header of a CUDA host program, rendered by the core header (``//`` lines)."""
from __future__ import annotations

from typing import Any

import vkc
from vkc.invoke.core.dims import ModelDims
from vkc.invoke.core.header import header_lines
from vkc.invoke.core.provenance import Provenance
from vkc.invoke.cuda.literals import comment_text
from vkc.invoke.cuda.plan import Plan
from vkc.records import Extraction, ModelConfig, SourceTree

__all__ = ["UNTRACED_MARK", "bytes_rule", "header_fields", "header_lines", "model_text"]

UNTRACED_MARK = " [untraced/generic: no recipe for this kernel; compile-only quality]"


def _n(v: Any) -> str:
    return "n/a" if v is None else str(v)


def _text(*lines: str) -> str:
    """One header value: each line made comment-safe, continuation lines indented by the renderer."""
    return "\n".join(comment_text(ln) for ln in lines)


def model_text(model: ModelConfig, d: ModelDims) -> str:
    """The ``MODEL_NAME`` field: the model id and the dimensions vkc read from its config."""
    return _text(
        model.model_id,
        f"H_q={_n(d.h_q)} H_kv={_n(d.h_kv)} Dh={_n(d.head_dim)} hidden_size={d.hidden} max_ctx={d.max_ctx} "
        f"dtype={d.dtype}",
        f"intermediate_size={_n(d.intermediate)} num_experts={_n(d.num_experts)} top_k={_n(d.topk)} "
        f"moe_intermediate_size={_n(d.moe_intermediate)} kv_lora_rank={_n(d.kv_lora_rank)} "
        f"qk_rope_head_dim={_n(d.qk_rope_head_dim)} rms_norm_eps={d.eps}",
        f"flags: {', '.join(d.flags) or 'none'}", *(f"warning: {w}" for w in d.warnings))


def header_fields(tree: SourceTree, ex: Extraction, model: ModelConfig, d: ModelDims, wl: str, why: str,
                  plan: Plan, command: str, build: str, run_stem: str,
                  provenance: Provenance, traced: tuple[str, ...] = ()) -> list[tuple[str, str]]:
    """``(key, value)`` pairs, in order; values are already comment-safe text."""
    k = ex.kernel
    launch = ex.facts.get("launch") or {}
    fields = [
        (f"vkc {vkc.__version__} -- invocation example",
         _text("CUDA host program for one vLLM kernel" + (UNTRACED_MARK if plan.untraced else ""))),
        ("vLLM", _text(tree.citation)),
        ("KERNEL", _text(f"{plan.kernel_symbol} at {k.file}:{k.line}")),
        ("WRAPPER", _text(plan.wrapper or "n/a")),
    ]
    if launch.get("file"):
        fields.append(("LAUNCH SITE (extractor)",
                       _text(f"{launch.get('file')}:{launch.get('line')} ({launch.get('wrapper')})")))
    fields += [
        ("MODEL_NAME", model_text(model, d)),
        ("WORKLOAD", _text(f"{wl} ({why})")),
        ("invocation", _text(provenance.header_value())),
        ("INSTANTIATION", _text(plan.instantiation, f"dispatch: {plan.dispatch or 'n/a'}")),
        ("GRID", _text(f"{plan.grid_expr or plan.grid}  BLOCK: {plan.block_expr or plan.block}  "
                       f"SMEM: {plan.smem_expr or plan.smem} bytes")),
        ("SIZING", _text(_sizing(plan))),
    ]
    if traced:
        fields.append(("TRACED CALL", _text(*traced)))
    if plan.scale.traced is not None:
        fields.append(("GB/s BYTES", _text(bytes_rule(plan))))
    fields += [("CONFIG", _text(s)) for s in model.sources] or [("CONFIG", "n/a")]
    fields += [
        ("COMMAND", _text(command)),
        ("BUILD", _text(build)),
        ("RUN", _text(_run(plan, run_stem))),
        ("PRINTS", "RESULT kernel=<name> model=<id> workload=<w> config=FULL|SMALL time_ms=<x> GB/s=<y>"),
    ]
    fields += [("NOTE", _text(n)) for n in plan.notes]
    return fields


def bytes_rule(plan: Plan) -> str:
    """Which rule the RESULT line's GB/s figure counts bytes by."""
    if plan.bytes_moved:
        return (f"rule: {plan.bytes_rule or 'the recipe counts what the launch touches'}; "
                f"bytes = {plan.bytes_moved}")
    ws = [b.name for b in plan.buffers if b.role == "ws"]
    return ("rule: buffer bytes (no cache or paged-attention rule applies): each in/out buffer once, inout "
            "twice; the recipe sizes each buffer to what the launch reads or writes"
            + (f"; workspace not counted: {', '.join(ws)}" if ws else ""))


def _sizing(plan: Plan) -> str:
    s = plan.scale
    if s.traced is not None:
        return f"{s.name} = {s.traced}: {s.traced_note} (SMALL_SANITY=1: {s.small}); {s.note}"
    if plan.min_gpus == 1:
        return (f"{s.name} fills ~20% of free GPU memory clamped to [2 GiB, 8 GiB] (SMALL_SANITY=1: {s.small}); "
                f"{s.note}")
    return f"{s.note} (SMALL_SANITY=1: {s.name}={s.small})"


def _run(plan: Plan, stem: str) -> str:
    if plan.min_gpus == 1:
        return f"./{stem}   (env: SMALL_SANITY=1 small shapes; VKC_DUMP_DIR=<dir> dumps buffers + manifest.txt)"
    return (f"./{stem}   (env: SMALL_SANITY=1 small sizes; VKC_WORLD_SIZE=2|4|6|8 ranks, default the largest "
            f"that fits the visible GPUs; VKC_ITERS=<n>; exit code 2 with fewer than {plan.min_gpus} GPUs)")

