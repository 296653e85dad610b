"""Render a Triton launch plan: the provenance header, the invocation example, the handoff record.

The script comes from ``templates/invoke.py.j2`` through :func:`vkc.templating.render` (parsed
after rendering); its ``CONFIGS`` literal is :meth:`TritonPlan.to_literal` and ``VKC_COMPILE``
is :func:`~vkc.invoke.triton.plan.compile_literal` of the FULL configuration.
"""
from __future__ import annotations

import ast
import dataclasses
from dataclasses import dataclass
from typing import Any

import vkc
from vkc.invoke.common import format_dims, resolved_dims
from vkc.invoke.core.header import header_lines
from vkc.invoke.core.provenance import InvocationMode, Provenance
from vkc.invoke.triton.modeltraced.build import ModelTracedPlan
from vkc.invoke.triton.plan import LaunchConfig, LaunchInfo, TritonPlan, compile_literal
from vkc.invoke.triton.restore import read_written_params, restored_buffers
from vkc.modeltrace.records import ModelTrace
from vkc.modeltrace.render import serving_notes
from vkc.naming import safe_stem
from vkc.records import Extraction, Handoff, Invocation, ModelConfig, SourceTree
from vkc.reference import LaunchFacts, ReferenceLookup, find_reference, outputs_literal
from vkc.templating import render

TEMPLATE = "vkc.invoke.triton/invoke.py.j2"
# source features the interpreter (TRITON_INTERPRET=1) does not run, or runs only partly
INTERPRETER_CAVEATS = {
    "inline_asm_elementwise": "inline PTX (tl.inline_asm_elementwise)",
    "make_tensor_descriptor": "tensor descriptors (tl.make_tensor_descriptor; only if that branch runs)",
    "_experimental_descriptor": "experimental TMA descriptors",
    "tl.extra": "tl.extra (libdevice) math",
    "libdevice": "libdevice math",
    "bfloat16": "bfloat16 (emulated by the interpreter)",
}
TRACED_MODE = ("traced: vLLM's own wrapper run on meta tensors (CPU, no launch) under a fake H100 profile "
               "(SM 9.0, 132 SMs, 227 KiB smem/block)")
MODEL_TRACED_MODE = ("model-traced: vLLM's own model step (its model class, metadata builders and KV cache) run on "
                     "meta tensors (CPU, no launch) under a fake H100 profile (SM 9.0, 132 SMs, 227 KiB smem/block); "
                     "the kernel's launches recorded as the step made them")
CONFIG_PICK = ("the example runs FULL (GPU) or SMALL (SMALL_SANITY=1 / no GPU); pick another configuration with "
               "VKC_CONFIG=<name>, e.g. VKC_CONFIG=FULL.2 (with SMALL_SANITY=1 it runs SMALL.2)")
TEST_TRACED_MODE = ("traced from a vLLM test: a test under tests/ that calls the kernel's wrapper, run on CPU tensors "
                    "under a fake H100 profile (SM 9.0, 132 SMs, 227 KiB smem/block) until the kernel's first launch "
                    "(recorded, not run); the launch as the test's call made it (see `invocation` for the test and "
                    "whether its sizes came from the model)")
GUESS_MODE = "UNTRACED: inputs guessed from the kernel signature; grid/meta NOT from vLLM's wrapper (see notes)"


@dataclass(frozen=True)
class Context:
    """Who asked for what: the inputs of the invocation besides the plan."""

    tree: SourceTree
    extraction: Extraction
    model: ModelConfig
    workload: str
    inferred: bool
    why: str           # the workload policy's reason (core.policy.choose_workload)
    command: str
    name: str
    entry: str
    provenance: Provenance | None = None
    trace: ModelTrace | None = None      # the model trace, when one was made (its warnings go in the header)


def _caveats(source: str) -> list[str]:
    return [why for needle, why in INTERPRETER_CAVEATS.items() if needle in source]


def _compact(d: Any) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in d.items())


def _wrapper(ctx: Context, launch: LaunchInfo | None) -> str:
    site = launch.site if launch else None
    if site:
        return f"{site.file}:{site.line} ({site.function})"
    sites = ctx.extraction.kernel.launch_sites[:2]
    return ", ".join(f"{s.file}:{s.line} ({s.wrapper})" for s in sites) or "unknown"


def _from_test(prov: Provenance | None) -> bool:
    return prov is not None and prov.mode in (InvocationMode.TEST_TRACED, InvocationMode.VLLM_SIZED)


def _mode(plan: TritonPlan, prov: Provenance | None = None) -> str:
    if isinstance(plan, ModelTracedPlan):
        return MODEL_TRACED_MODE
    if _from_test(prov):
        return TEST_TRACED_MODE
    if plan.traced:
        at = plan.launch.autotune if plan.launch else None
        if at:
            return TRACED_MODE + f"; autotuned: first pruned config of {at['num_pruned']}/{at['num_configs']} used"
        return TRACED_MODE
    return (plan.launch.mode if plan.launch else None) or GUESS_MODE


def _qualified(ctx: Context) -> str:
    k = ctx.extraction.kernel
    return k.qualified if k.lang == "triton" and k.qualified else f"{k.module}:{k.qualname}"


def _launch_facts(plan: TritonPlan) -> list[LaunchFacts]:
    out = []
    for cname, cfg in plan.configs():
        values: dict[str, Any] = {a.param: a.value for a in cfg.scalars}
        values.update(cfg.constexprs)
        out.append(LaunchFacts(cname, values, frozenset(t.param for t in cfg.tensors),
                               frozenset(a.param for a in cfg.args), frozenset(cfg.constexprs), dict(cfg.shapes)))
    return out


# the example's own top-level names (templates/invoke.py.j2): a reference piece may not take one
EXAMPLE_NAMES = frozenset({
    "KERNEL_NAME", "MODEL_NAME", "WORKLOAD", "KERNEL_FILE", "ENTRY", "TRACED", "INTERPRETER_CAVEATS", "CONFIGS",
    "VKC_COMPILE", "WARMUP", "REPS", "REFERENCE_OUTPUTS", "importlib", "math", "os", "sys", "time", "torch",
    "triton", "tl", "types", "_HAS_CUDA", "_SMALL", "_value", "_init_tensor", "_view", "_jit_function",
    "_load_kernel", "_choose_config", "build", "make_launch", "check_outputs", "reference", "_poison", "_poisoned",
    "_compare", "run_check", "bench", "data_dtype", "main"})


def lookup_reference(ctx: Context, plan: TritonPlan) -> ReferenceLookup:
    """vLLM's PyTorch reference for this example's launch (vkc.reference), or None with the reason."""
    mode = ctx.provenance.mode.value if ctx.provenance is not None else ("recipe" if plan.traced else "synthesized")
    found = find_reference(ctx.tree, _qualified(ctx), mode=mode, configs=_launch_facts(plan))
    if found.reference is not None:
        top = {n.name for n in ast.parse(found.reference.code).body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
        top |= {t.id for n in ast.parse(found.reference.code).body if isinstance(n, ast.Assign)
                for t in n.targets if isinstance(t, ast.Name)}
        clash = sorted(top & EXAMPLE_NAMES)
        if clash:
            return ReferenceLookup(None, f"the reference's names {clash} clash with the example's own")
    return found


def _output_dtypes(plan: TritonPlan, param: str) -> list[str]:
    seen: list[str] = []
    for _cname, cfg in plan.configs():
        arg = cfg.arg(param)
        dtype = getattr(arg, "dtype", None)
        if dtype and dtype not in seen:
            seen.append(dtype)
    return seen


def _reference_fields(plan: TritonPlan, found: ReferenceLookup) -> list[tuple[str, Any]]:
    ref = found.reference
    if ref is None:
        return []
    tols = []
    for param, tol in ref.output_tolerance:
        for dtype in _output_dtypes(plan, param):
            atol, rtol = tol.for_dtype(dtype)
            tols.append(f"{param} ({dtype}): atol={atol:g} rtol={rtol:g} ({tol.origin})")
    fields: list[tuple[str, Any]] = [("reference", f"{ref.source} {ref.origin} ({ref.spec.function})"),
                                     ("tolerance", tols)]
    extra = [f"pieces: {', '.join(ref.pieces)}"]
    if ref.stubs:
        extra.append(f"not extracted (raise if reached): {', '.join(ref.stubs)}")
    if ref.spec.note:
        extra.append(ref.spec.note)
    extra.append("check: VKC_CHECK=1 (always at SMALL) poisons the outputs, launches once and compares")
    fields.append(("reference notes", extra))
    return fields


def _header_fields(ctx: Context, plan: TritonPlan, kernel_file: str, caveats: list[str],
                   notes: list[str], found: ReferenceLookup | None = None) -> list[tuple[str, Any]]:
    kernel, model = ctx.extraction.kernel, ctx.model
    fields: list[tuple[str, Any]] = [
        ("Invocation example generated by vkc", vkc.__version__),
        ("vLLM", ctx.tree.citation),
        ("kernel", f"{ctx.name} = {ctx.entry} from {kernel.file}:{kernel.line}; saved beside this script as {kernel_file}"),
        ("wrapper (launch site)", _wrapper(ctx, plan.launch)),
        ("MODEL_NAME", model.model_id),
        ("resolved dims", format_dims(resolved_dims(model))),
        ("WORKLOAD", f"{ctx.workload} (inferred: the wrapper recipe's default)" if ctx.inferred else ctx.workload),
        ("mode", _mode(plan, ctx.provenance)),
    ]
    if ctx.provenance is not None:
        fields.append(("invocation", ctx.provenance.header_value()))
    if found is not None:
        fields.extend(_reference_fields(plan, found))
    if ctx.trace is not None and ctx.trace.fingerprint_status != "known":
        fields.append(("model trace warnings (vLLM start-up checklist)", list(ctx.trace.warnings) or ["(none)"]))
    if isinstance(plan, ModelTracedPlan) and ctx.trace is not None and serving_notes(ctx.trace):
        fields.append(("serving choices of the traced step", serving_notes(ctx.trace)))
    if isinstance(plan, ModelTracedPlan):
        fields.append(("configurations", [f"{r.name}: step {r.step}, {r.role}; events {list(r.events)}"
                                          for r in plan.roles]))
        if plan.extra:
            fields.append(("choosing a configuration", CONFIG_PICK))
        if plan.notes:
            fields.append(("model-traced contents", list(plan.notes)))
    for cname, cfg in plan.configs():
        fields.append((f"{cname} meta", (f"grid={cfg.grid} num_warps={cfg.num_warps} num_stages={cfg.num_stages}"
                       f" live={cfg.live_bytes / 2**20:.1f} MiB")))
        fields.append((f"{cname} shapes", _compact(cfg.shapes)))
        fields.append((f"{cname} constexprs", _compact(cfg.constexprs)))
    fields.append(("config sources", list(model.sources) or ["(none)"]))
    if caveats:
        fields.append(("TRITON_INTERPRET caveats (SMALL on CPU)", caveats))
    if notes:
        fields.append(("notes", notes))
    if not plan.traced:
        for s in kernel.launch_sites[:3]:
            fields.append((f"launch site, verbatim (# from {s.file}:{s.line})", s.text or "(no text)"))
    fields.append(("regenerate with", ctx.command))
    return fields


def render_invocation(ctx: Context, plan: TritonPlan, notes: list[str]) -> Invocation:
    """The Invocation record: generated script, header, handoff and facts."""
    kernel_file = f"{safe_stem(ctx.name)}.py"
    caveats = _caveats(ctx.extraction.source_code)
    found = lookup_reference(ctx, plan)
    ref = found.reference
    header = "\n".join(header_lines(_header_fields(ctx, plan, kernel_file, caveats, notes, found)))
    comp = compile_literal(ctx.entry, plan.full, plan.launch)
    cfgs = dict(plan.configs()) if isinstance(plan, ModelTracedPlan) else {"FULL": plan.full, "SMALL": plan.small}
    restored = restored_buffers(cfgs, read_written_params(ctx.extraction.source_code, ctx.entry))
    code = render(TEMPLATE, check="python", header=header, name=ctx.name, entry=ctx.entry,
                  model_id=ctx.model.model_id, workload=ctx.workload, kernel_file=kernel_file, traced=plan.traced,
                  caveats=caveats, configs=plan.to_literal(), compile=comp,
                  named_configs=isinstance(plan, ModelTracedPlan) and bool(plan.extra),
                  rate_unit="TFLOP/s" if plan.full.flops else "GB/s", restored=restored,
                  reference=ref is not None, reference_code=ref.code if ref else "",
                  reference_imports=[i for i in ref.imports if i != "import torch"] if ref else [], reference_entry=ref.entry if ref else "",
                  reference_args=list(ref.spec.args) if ref else [],
                  reference_outputs=outputs_literal(ref, {o.param: _output_dtypes(plan, o.param)
                                                          for o in ref.spec.outputs}) if ref else [])
    site = plan.launch.site if plan.launch else None
    facts = {"traced": plan.traced, "generic": plan.path == "generic", "path": plan.path, "plan": plan,
             "kernel_file": kernel_file, "entry_symbol": ctx.entry, "compile": comp, "interpreter_caveats": caveats,
             "workload_inferred": ctx.inferred, "workload_why": ctx.why,
             "launch_site": site.to_json() if site else None, "provenance": ctx.provenance,
             "model_traced": isinstance(plan, ModelTracedPlan), "reference": found.to_json()}
    return Invocation(code=code, handoff=_handoff(ctx.extraction.handoff, plan, notes, ctx.provenance), workload=ctx.workload,
                      model_id=ctx.model.model_id, header=header, facts=facts)


def _traced_notes(plan: TritonPlan, prov: Provenance | None = None) -> list[str]:
    lf = plan.launch
    if _from_test(prov):
        extra = [("grid/constexprs/num_warps/num_stages/scalars/views traced from a vLLM test's own call of the "
                  "wrapper (CPU tensors, fake H100: SM 9.0, 132 SMs, 232448 B smem/block opt-in; no launch)")]
    elif isinstance(plan, ModelTracedPlan):
        extra = [(f"grid/constexprs/num_warps/num_stages/scalars/views traced from vLLM's own {plan.model_id} step "
                  f"{plan.step_id} (SMALL: step {plan.small_step_id}; fake H100: SM 9.0, 132 SMs, 232448 B smem/block "
                  "opt-in; meta tensors, no launch)")]
        extra.extend(f"configuration {r.name}: step {r.step}, {r.role}" for r in plan.roles)
    else:
        extra = [("grid/constexprs/num_warps/num_stages/scalars traced from vLLM's wrapper at the model's shapes "
                 "(fake H100: SM 9.0, 132 SMs, 232448 B smem/block opt-in; meta tensors, no launch)")]
    if lf is None:
        return extra
    if lf.site:
        extra.append(f"launch site {lf.site.file}:{lf.site.line} in {lf.site.function}")
    at = lf.autotune
    if at:
        extra.append(f"autotune: first pruned config used ({at['config']}); {at['num_pruned']} of "
                     f"{at['num_configs']} configs left after pruning"
                     + (f"; {at['note']}" if at.get("note") else ""))
        if at.get("reset_to_zero"):
            extra.append(f"autotune reset_to_zero={at['reset_to_zero']} (zeroed buffers in the example)")
    if lf.heuristics:
        extra.append(f"heuristics kept real: {list(lf.heuristics)}")
    who = "the traced step" if isinstance(plan, ModelTracedPlan) else "the wrapper"
    if lf.count > 1:
        extra.append(f"{who} launched this kernel {lf.count} times; the first launch is FULL")
    if lf.all_launches:
        extra.append(f"all launches of {who}: " + "; ".join(lf.all_launches))
    if lf.constexpr_defaulted:
        extra.append(f"constexpr defaults applied: {list(lf.constexpr_defaulted)}")
    if plan.versions:
        extra.append(f"traced with torch {plan.versions.get('torch')}, triton {plan.versions.get('triton')}")
    return extra


def _guards(h: Handoff, full: LaunchConfig) -> dict[str, Any]:
    guards = dict(h.guards)
    c = full.constexprs
    guards.update({
        "dtype": ",".join(sorted({t.dtype for t in full.tensors})),
        "causal": c.get("USE_CAUSAL", c.get("CAUSAL", guards.get("causal"))),
        "sliding_window": c.get("SLIDING_WINDOW", guards.get("sliding_window")),
        "sinks": c.get("USE_SINKS", guards.get("sinks")),
        "packed_qkv": guards.get("packed_qkv", False),
    })
    return guards


def _handoff(h: Handoff, plan: TritonPlan, notes: list[str], prov: Provenance | None = None) -> Handoff:
    full, small = plan.full, plan.small
    grid_text = h.grid_expr or "(none from the extractor)"
    meta = dict(h.meta_params)
    meta.update(full.constexprs)
    meta.update(num_warps=full.num_warps, num_stages=full.num_stages)
    if full.options:
        meta["launch_options"] = dict(full.options)
    extra = list(notes)
    if plan.traced:
        extra.extend(_traced_notes(plan, prov))
    else:
        extra.append("UNTRACED fallback: inputs from the kernel signature; grid and meta values are guesses")
    return dataclasses.replace(h, grid_expr=f"{grid_text} -> FULL {full.grid}, SMALL {small.grid}", meta_params=meta,
                               guards=_guards(h, full), notes=tuple(h.notes) + tuple(extra))


__all__ = ["INTERPRETER_CAVEATS", "Context", "render_invocation"]
