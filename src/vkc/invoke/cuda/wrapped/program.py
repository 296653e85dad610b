"""Entry of the wrapper-compiled path: :func:`invoke_wrapped` -- a host program that calls vLLM's own host
function of an op with one op call's tensors, compiled against vkc's Tensor stand-in.

Any source of op calls can use it: the model-traced attempt (:mod:`vkc.invoke.cuda.modeltraced.attempt`)
passes the model step's call with the step's facts; a capture from vLLM's tests passes its
:class:`OpCall` (the event, the storages' known contents, its source string) and the mode it earns.
Every refusal is a :class:`~.host.WrapRefused` naming the reason; nothing falls back silently here.
"""
from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vkc.invoke.core.dims import ModelDims
from vkc.invoke.core.header import header_lines
from vkc.invoke.core.provenance import InvocationMode, Provenance
from vkc.invoke.cuda.build import build_command, main_file_name
from vkc.invoke.cuda.literals import comment_text, cpp_str
from vkc.invoke.cuda.modeltraced.bind import describe_args
from vkc.invoke.cuda.refcheck import with_reference, wrapped_check
from vkc.modeltrace.contents import Contents
from vkc.modeltrace.records import TracedEvent
from vkc.naming import safe_stem
from vkc.records import Extraction, Invocation, ModelConfig, SourceTree
from vkc.templating import render
from vkc.toolchain.nvcc import instantiation_line

from .args import Bound, bind
from .check import param_problem, type_aliases, unsupported, uses_cublas
from .fills import StorageFill
from .header import HeaderInputs, header_fields
from .host import HostCode, NotLaunched, WrapRefused, host_code
from .schema import SchemaArg, op_schema

__all__ = ["TEMPLATE", "OpCall", "invoke_wrapped", "launch_text"]

TEMPLATE = "vkc.invoke.cuda/wrapped.cu.j2"
BYTES_RULE = ("each tensor argument's viewed bytes once, a written argument vLLM made before the op twice (read "
              "and written); KV-cache arguments are not counted (the op touches only the slots it indexes)")


@dataclass(frozen=True)
class OpCall:
    """One call of a vLLM custom op, from any source."""

    event: TracedEvent                                   # kind "op", name "_C::rms_norm"
    contents: Mapping[str, Contents] = field(default_factory=dict)   # storage id -> known contents
    source: str = ""                                     # where the call came from, in words
    facts: Any = None                                    # StepFacts of a model step (producer rules), or None
    kv_bases: frozenset[str] = frozenset()               # storages that are KV caches
    # the kernels (qualified names) the source knows this call launches; None: vkc's dispatch rules decide
    launches: tuple[str, ...] | None = None


def launch_text(host: HostCode) -> str:
    return f"launch: vLLM's {host.function} ({host.where}) compiled against vkc's Tensor stand-in"


def _op_entry(tree: SourceTree, op: str) -> tuple[Any, str, Any]:
    from vkc.index import build_index
    from vkc.invoke.cuda.modeltraced.opmap import op_kernel_map, registrations

    index = build_index(tree)
    entry = op_kernel_map(index).get(op)
    if entry is None:
        raise WrapRefused(f"{op} has no CUDA host function in the tree's op map")
    bind_file = _registrations(str(tree.root), registrations).get(op, ("", "csrc/torch_bindings.cpp"))[1]
    return entry, bind_file, index


_REGS: dict[str, Mapping[str, tuple[str, str]]] = {}


def _registrations(root: str, read: Any) -> Mapping[str, tuple[str, str]]:
    if root not in _REGS:
        _REGS[root] = read(Path(root))
    return _REGS[root]


def _launches(tree: SourceTree, index: Any, kernels: Sequence[str], ev: TracedEvent) -> tuple[str, ...] | None:
    """The op's kernels this call launches (vkc's dispatch rules), None when no rule knows."""
    from vkc.invoke.cuda.modeltraced.dispatch import call_launches

    entries = {k.qualified: k for k in index.kernels}
    got = {k: call_launches(k, ev, entry=entries.get(k), tree=tree) for k in kernels}
    if any(v is None for v in got.values()):
        return None
    return tuple(k for k in kernels if got[k])


def _host(tree: SourceTree, ex: Extraction, entry: Any, schema: tuple[SchemaArg, ...]) -> HostCode:
    homes = [h.strip() for h in entry.host_file.split(",")]
    if len(homes) != 1:
        raise WrapRefused(f"{entry.host} is defined in {len(homes)} files ({entry.host_file})")
    host = host_code(str(tree.root), homes[0], entry.host, ex.source_code, nargs=len(schema))
    problems = unsupported(host.text)
    if problems:
        raise WrapRefused(f"{entry.host}'s host code uses what vkc's Tensor stand-in does not provide: "
                          + ", ".join(problems[:6]) + (f" (+{len(problems) - 6} more)" if len(problems) > 6 else ""))
    if len(host.params) != len(schema):
        raise WrapRefused(f"the schema has {len(schema)} arguments, {entry.host} {len(host.params)} parameters")
    aliases = type_aliases(host.text + "\n" + ex.source_code)
    for (ctype, pname), a in zip(host.params, schema):
        why = param_problem(ctype, a.type, aliases)
        if why:
            raise WrapRefused(f"{entry.host}'s parameter {pname}: {why}")
    return host


def _instantiation(ex: Extraction, bound: Bound) -> str:
    qual = ex.kernel.qualname
    insts = ex.facts.get("instantiations") or {}
    want = {"c10::BFloat16": "bfloat16", "c10::Half": "float16", "float": "float32"}.get(bound.dtype)
    args = insts.get(want) if want else None
    args = args or ex.facts.get("example_instantiation")
    if not ex.kernel.template_params:
        return qual
    if not args:
        raise WrapRefused(f"the extractor found no instantiation of {qual} to name in the marker")
    return f"{qual}<{args}>"


def _fill_lines(s: Any, f: StorageFill) -> list[str]:
    p, t, n = f"{s.name}->ptr", f.ctype, f"(size_t)({s.nbytes}ULL / sizeof({f.ctype}))"
    grid = f"<<<vkc_host::blocks({n}), 256, 0, stream>>>"
    lit = _lit
    if f.kind == "zero":
        return [f"VKC_CHECK(cudaMemsetAsync({p}, 0, {s.nbytes}ULL, stream));"]
    if f.kind == "normal":
        return [f"vkc_host::fill_normal<{t}>{grid}(({t}*){p}, {n}, {f.seed}ULL, {lit(float(f.params[0]))}f);"]
    if f.kind == "uniform":
        lo, hi = lit(float(f.params[0])), lit(float(f.params[1]))
        return [f"vkc_host::fill_uniform<{t}>{grid}(({t}*){p}, {n}, {f.seed}ULL, {lo}f, {hi}f);"]
    if f.kind == "randint":
        lo_i, hi_i = int(f.params[0]), int(f.params[1])
        return [f"vkc_host::fill_randint<{t}>{grid}(({t}*){p}, {n}, {f.seed}ULL, {lo_i}LL, {hi_i}LL);"]
    if f.kind == "const":
        v = f.params[0]
        vt = "long long" if isinstance(v, (int, bool)) else "double"
        return [f"vkc_host::fill_const<{t}, {vt}>{grid}(({t}*){p}, {n}, ({vt}){lit(v)});"]
    if f.kind in ("values", "runs"):
        vals, counts = (f.params[0], (1,) * len(f.params[0])) if f.kind == "values" else f.params
        vals, counts = _rle(vals, counts)
        vt = "long long" if all(isinstance(v, (int, bool)) for v in vals) else "double"
        head = f"{{ static const {vt} v[] = {{{', '.join(lit(v) for v in vals)}}};"
        if all(c == 1 for c in counts):
            return [head, f"  vkc_host::upload_runs<{t}, {vt}>({p}, {n}, v, nullptr, {len(vals)}); }}"]
        return [head, f"  static const long long c[] = {{{', '.join(str(int(c)) for c in counts)}}};",
                f"  vkc_host::upload_runs<{t}, {vt}>({p}, {n}, v, c, {len(vals)}); }}"]
    if f.kind in ("block_table", "slot_mapping"):
        return [f"vkc_host::upload_ids<{t}>({p}, {n}, {int(f.params[0])}LL, {f.seed}ULL);"]
    if f.kind == "arange":
        return [f"vkc_host::upload_arange<{t}>({p}, {n}, {lit(float(f.params[0]))}, {lit(float(f.params[1]))});"]
    raise WrapRefused(f"no C++ fill for {f.kind}")


def _rle(vals: Sequence[Any], counts: Sequence[int]) -> tuple[list[Any], list[int]]:
    out_v: list[Any] = []
    out_c: list[int] = []
    for v, c in zip(vals, counts):
        if out_v and out_v[-1] == v and type(out_v[-1]) is type(v):
            out_c[-1] += int(c)
        else:
            out_v.append(v)
            out_c.append(int(c))
    return out_v, out_c


def _lit(v: Any) -> str:
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, int):
        return f"{v}LL" if abs(v) >= 2**31 else str(v)
    s = repr(float(v))
    if s in ("nan", "inf", "-inf"):
        raise WrapRefused(f"non-finite fill value {s}")
    return s if ("." in s or "e" in s) else s + ".0"


def _config(name: str, label: str, call: OpCall, bound: Bound) -> dict[str, Any]:
    storages = [{"name": s.name, "base": comment_text(s.base), "nbytes": s.nbytes, "role": s.role, "kv": s.kv,
                 "why": comment_text(s.fill.why), "fill": _fill_lines(s, s.fill), "ctype": s.fill.ctype,
                 "ctype_text": re.sub(r"[^A-Za-z0-9:_]", "", s.fill.ctype)} for s in bound.storages]
    views = [{"name": v.name, "storage": v.storage, "scalar_type": v.scalar_type, "offset": v.offset,
              "sizes": "{" + ", ".join(map(str, v.sizes)) + "}", "strides": "{" + ", ".join(map(str, v.strides)) + "}",
              "label": comment_text(v.label)} for v in bound.views]
    args = [{"name": a.name, "ctype": a.ctype, "init": a.init, "pre": list(a.pre), "label": comment_text(a.label)}
            for a in bound.args]
    return {"name": name, "label": label, "source": comment_text(call.source), "storages": storages,
            "views": views, "args": args, "call_args": ", ".join(f"c{i}" for i in range(len(args))),
            "bytes_moved": bound.bytes_moved, "bytes_rule": comment_text(BYTES_RULE),
            "dtype": re.sub(r"[^A-Za-z0-9:_]", "", bound.dtype)}


def _check_launch(tree: SourceTree, ex: Extraction, index: Any, entry: Any, full: OpCall,
                  check: bool) -> tuple[str, ...] | None:
    """The kernels the call launches (the source's word, else vkc's dispatch rules); refuses a call that
    launches another kernel of the op, or one of a multi-kernel op no rule covers."""
    op = full.event.name
    launches = full.launches if full.launches is not None else (
        _launches(tree, index, entry.kernels, full.event) if check else None)
    if launches is not None and ex.kernel.qualified not in launches:
        raise NotLaunched(f"this {op} call launches {', '.join(k.rsplit(':', 1)[-1] for k in launches) or 'nothing'}"
                          f", not {ex.kernel.name}")
    if check and launches is None and len(entry.kernels) > 1:
        raise WrapRefused(f"{op} can launch {len(entry.kernels)} kernels and vkc has no dispatch rule to tell "
                          f"whether this call launches {ex.kernel.name}")
    return launches


def _bind(call: OpCall, schema: tuple[SchemaArg, ...], host: HostCode) -> Bound:
    kv = call.kv_bases or (getattr(call.facts, "kv_bases", None) or frozenset())
    return bind(call.event, schema, host.params, known=call.contents, facts=call.facts, kv_bases=kv)


def invoke_wrapped(tree: SourceTree, ex: Extraction, full: OpCall, small: OpCall | None = None, *,
                   mode: InvocationMode, model: ModelConfig | None, workload: str, why: str, command: str,
                   name: str, notes: Sequence[str] = (), check_launch: bool = True,
                   fallback_from: str | None = None) -> Invocation:
    """The invocation example for ``ex`` from the op call ``full`` (and ``small`` for SMALL_SANITY=1).

    Raises :class:`~.host.WrapRefused` when the op's host function or the call cannot be reproduced.
    ``check_launch=False`` skips the dispatch rules' "does this call launch the kernel" test (compile
    checks over synthetic calls only: ``bench/wrapped_compile.py``)."""
    op = full.event.name
    if full.event.kind != "op":
        raise WrapRefused(f"{op} is a {full.event.kind} event, not a custom-op call")
    entry, bind_file, index = _op_entry(tree, op)
    if ex.kernel.qualified not in entry.kernels:
        raise WrapRefused(f"{op}'s host function {entry.host} does not reach {ex.kernel.qualified}")
    got = op_schema(str(tree.root), op)
    if got is None:
        raise WrapRefused(f"the tree's torch_bindings.cpp defines no schema for {op}")
    schema_text, schema = got
    launches = _check_launch(tree, ex, index, entry, full, check_launch)
    host = _host(tree, ex, entry, schema)
    bfull = _bind(full, schema, host)
    bsmall = _bind(small, schema, host) if small is not None else None
    stem = safe_stem(name)
    flags = tuple(str(f) for f in ex.facts.get("include_flags", ()) or () if "TORCH_INCLUDE" not in str(f))
    build = build_command(stem, flags)
    inst = _instantiation(ex, bfull)
    source = f"{full.source}; {launch_text(host)}" if full.source else launch_text(host)
    prov = Provenance(mode, source, fallback_from=fallback_from)
    configs = [f"FULL: the call's own tensors ({full.source or op})"]
    configs.append(f"SMALL (SMALL_SANITY=1): {small.source}" if small is not None
                   else "SMALL (SMALL_SANITY=1): the FULL call, 5 repetitions")
    told = "the call's source" if full.launches is not None else f"vkc's dispatch rule for {op}"
    h = HeaderInputs(op, schema_text, host, bind_file, inst, launches or (), told, tuple(entry.kernels),
                     tuple(describe_args(full.event)), tuple(configs), BYTES_RULE, tuple(notes))
    dims = ModelDims.from_config(model) if model is not None else None
    fields = header_fields(tree, ex, model, dims, workload, why, prov, h, command=command, build=build, stem=stem)
    header = header_lines(fields, "//")
    calls = [("FULL", full.event, bfull)] + ([("SMALL", small.event, bsmall)] if small and bsmall else [])
    found, check, poison, ref_fields = wrapped_check(tree, op, schema, calls, mode.value, name)
    if ref_fields:
        header = header_lines(with_reference(fields, ref_fields), "//")
    cfgs = [_config("FULL", "FULL", full, bfull)]
    if small is not None and bsmall is not None:
        cfgs.append(_config("SMALL", "SMALL", small, bsmall))
    for c in cfgs:
        c["poison"] = poison.get(c["name"], [])
    code = render(TEMPLATE, header=header, unit=f"{stem}.cu", markers=[_marker(inst)], includes=list(host.includes),
                  host_function=host.function, host_where=host.where, chunks=list(host.chunks), configs=cfgs,
                  call=host.qualified, small_config="SMALL" if len(cfgs) > 1 else "FULL",
                  kernel_name_lit=cpp_str(name), model_lit=cpp_str(model.model_id if model else "none"),
                  workload_lit=cpp_str(workload), cublas=uses_cublas(host.text), **check)
    handoff = dataclasses.replace(ex.handoff, grid_expr=f"computed by {host.function} ({host.where})",
                                  meta_params={**dict(ex.handoff.meta_params), "instantiation": inst,
                                               "launch": "wrapper-compiled"})
    facts = {"unit_file": f"{stem}.cu", "main_file": main_file_name(stem), "binary": stem, "build_command": build,
             "instantiation": inst, "marker": _marker(inst), "recipe": "wrapper-compiled", "untraced": False,
             "wrapper_compiled": True, "host_function": host.where, "host_name": host.function, "op": op, "min_gpus": 1,
             "workload_inferred": False, "provenance": prov, "reference": found.to_json()}
    return Invocation(code=code, handoff=handoff, workload=workload, model_id=model.model_id if model else "none",
                      header="\n".join(header), facts=facts)


def _marker(inst: str) -> str:
    qual, _, args = inst.partition("<")
    return instantiation_line(qual, args[:-1] if args else None)
