"""invoke_triton: trace vLLM's wrapper at the model's shapes and render the invocation example."""
from __future__ import annotations

import ast
import dataclasses
import math
from pathlib import Path
from typing import Any

import vkc
from vkc.errors import InvocationError, NotApplicableError
from vkc.invoke.common import budget_bytes, format_dims, header_lines, model_dims, resolved_dims
from vkc.invoke.triton.pyfmt import pyrepr
from vkc.invoke.triton.recipes import get_recipe
from vkc.invoke.triton.recipes.base import default_flops_bytes
from vkc.invoke.triton.tracer import run_trace
from vkc.records import Extraction, Invocation, KernelEntry, ModelConfig, SourceTree
from vkc.write.names import safe_stem

TEMPLATES = Path(__file__).parent / "templates"
WORKLOAD_CHOICES = ("prefill", "decode")
TRITON_DEFAULT_WARPS = 4
TRITON_DEFAULT_STAGES = 3
TORCH_TO_TRITON = {
    "float16": "fp16", "bfloat16": "bf16", "float32": "fp32", "float64": "fp64",
    "float8_e4m3fn": "fp8e4nv", "float8_e5m2": "fp8e5", "float8_e4m3fnuz": "fp8e4b8",
    "float8_e5m2fnuz": "fp8e5b16", "int8": "i8", "int16": "i16", "int32": "i32", "int64": "i64",
    "uint8": "u8", "bool": "i1",
}
# source features the interpreter (TRITON_INTERPRET=1) does not run, or runs only partly
INTERPRETER_CAVEATS = {
    "inline_asm_elementwise": "inline PTX (tl.inline_asm_elementwise)",
    "make_tensor_descriptor": "tensor descriptors (tl.make_tensor_descriptor; only if that branch runs)",
    "_experimental_descriptor": "experimental TMA descriptors",
    "tl.extra": "tl.extra (libdevice) math",
    "libdevice": "libdevice math",
    "bfloat16": "bfloat16 (emulated by the interpreter)",
}


def qualified_name(kernel: KernelEntry) -> str:
    return kernel.qualified if kernel.lang == "triton" and kernel.qualified else f"{kernel.module}:{kernel.qualname}"


def invoke_triton(tree: SourceTree, extraction: Extraction, model: ModelConfig, workload: str | None,
                  *, command: str) -> Invocation:
    """Build the invocation example for a Triton kernel (spec 3.2, Agent B)."""
    kernel = extraction.kernel
    name = str(extraction.facts.get("name") or kernel.name)
    entry = str(extraction.facts.get("entry_symbol") or kernel.qualname)
    qualified = qualified_name(kernel)
    recipe = get_recipe(qualified)
    inferred = workload is None
    if recipe is not None:
        wl = workload or recipe.DEFAULT_WORKLOAD
        if wl not in recipe.WORKLOADS:
            raise InvocationError(f"workload {wl!r} is not supported for {name} (its wrapper runs {', '.join(recipe.WORKLOADS)})",
                                  hint=f"use --workload {recipe.DEFAULT_WORKLOAD} or omit it")
    else:
        wl = workload or "decode"
        if wl not in WORKLOAD_CHOICES:
            raise InvocationError(f"unknown workload {wl!r}", hint="use prefill or decode")

    dims = model_dims(model)
    notes: list[str] = []
    traced = None
    if recipe is not None:
        traced = _trace(tree, kernel, recipe, dims, wl, notes)
    else:
        notes.append(f"no workload recipe for {qualified}; launch not traced")
    if traced is not None:
        configs, launches, versions = traced
        return _finish(tree, extraction, model, wl, inferred, command, name, entry, configs, launches, notes,
                       traced=True, versions=versions)
    from vkc.invoke.triton.fallback import fallback_configs

    configs, launches = fallback_configs(extraction, model, entry, notes, tree=tree)
    return _finish(tree, extraction, model, wl, inferred, command, name, entry, configs, launches, notes,
                   traced=False, versions={})


# --------------------------------------------------------------------------- tracing


def _trace(tree: SourceTree, kernel: KernelEntry, recipe: Any, dims: dict, wl: str, notes: list[str]):
    recipe_mod = recipe.__name__.rsplit(".", 1)[1]
    shapes = {}
    jobs = []
    for cfg, small in (("FULL", False), ("SMALL", True)):
        try:
            shp = recipe.shapes(dims, wl, budget_bytes(), small)
        except NotApplicableError:
            raise
        except Exception as e:  # noqa: BLE001  (a recipe that cannot size this model)
            notes.append(f"recipe {recipe_mod} cannot size {cfg} for this model ({type(e).__name__}: {e})")
            return None
        shapes[cfg] = shp
        jobs.append({"id": cfg, "recipe": recipe_mod, "kernel": qualified_name(kernel), "kernel_line": kernel.line,
                     "shapes": shp, "platform": getattr(recipe, "PLATFORM", "h100")})
    resp = run_trace(tree, jobs)
    if not resp.get("ok"):
        notes.append(f"trace worker failed: {resp.get('error')}")
        return None
    configs: dict[str, dict] = {}
    launches: dict[str, dict] = {}
    for job in resp["jobs"]:
        if not job["ok"]:
            if job.get("error_class") == "NotApplicableError":  # the recipe says: not this model
                raise NotApplicableError(job["error_message"])
            notes.append(f"wrapper could not be traced for {job['id']}: {job['error']}")
            return None
        launch = job["launches"][job["selected"][0]]
        launch = dict(launch, _all=[f"{x['fn']['qualname']}{x['grid']}" for x in job["launches"]],
                      _count=len(job["selected"]))
        configs[job["id"]] = _config(job, launch, shapes[job["id"]], recipe)
        launches[job["id"]] = launch
    return configs, launches, resp.get("versions", {})


def _config(job: dict, launch: dict, shp: dict, recipe: Any) -> dict[str, Any]:
    buffers = {n: (b["shape"], b["dtype"], tuple(b["init"])) for n, b in sorted(job["buffers"].items())}
    args = []
    for p in launch["params"]:
        a = launch["args"].get(p)
        if a is None:
            continue
        if a["kind"] == "tensor":
            args.append((p, ("tensor", a["base"], a["shape"], a["stride"], a["offset"], a["dtype"])))
        else:
            args.append((p, ("scalar", a["value"])))
    opts = dict(launch["options"])
    num_warps = opts.pop("num_warps", None) or TRITON_DEFAULT_WARPS
    num_stages = opts.pop("num_stages", None) or TRITON_DEFAULT_STAGES
    options = {k: v for k, v in sorted(opts.items()) if v is not None}
    live = sum(math.prod(b["shape"]) * b["itemsize"] for b in job["buffers"].values())
    fb = getattr(recipe, "flops_bytes", default_flops_bytes)
    flops, nbytes = fb(shp, launch)
    return {
        "grid": tuple(launch["grid"]),
        "num_warps": int(num_warps), "num_stages": int(num_stages), "options": options,
        "constexprs": {n: launch["constexprs"][n] for n in launch["constexpr_names"]},
        "buffers": buffers, "args": args, "live_bytes": int(live),
        "flops": float(flops) if flops else None, "bytes": float(nbytes or 0.0),
        "shapes": {k: v for k, v in sorted(shp.items()) if isinstance(v, (int, float, str, bool)) or v is None},
    }


# --------------------------------------------------------------------------- compile literal


def compile_literal(entry: str, cfg: dict, launch: dict | None) -> dict[str, Any]:
    """Signature/constexprs/attrs of the FULL launch for triton.compile (sm_90)."""
    signature = None
    if launch and launch.get("signature"):   # in parameter order (the worker's JSON sorts keys)
        signature = {p: launch["signature"][p] for p in launch["params"]}
    attrs = dict(launch["attrs"]) if launch and launch.get("attrs") else {}
    argmap = dict(cfg["args"])
    if signature is None:   # derive it ourselves (untraced, or Triton internals changed)
        signature = {}
        for p in (launch["params"] if launch else list(argmap) + list(cfg["constexprs"])):
            if p in cfg["constexprs"]:
                signature[p] = "constexpr"
            else:
                spec = argmap[p]
                signature[p] = _sig_type(spec)
    constexprs = {}
    for p, t in signature.items():
        if t == "constexpr":
            constexprs[p] = cfg["constexprs"][p] if p in cfg["constexprs"] else (argmap[p][1] if argmap[p][0] == "scalar" else None)
    return {"entry": entry, "target": ("cuda", 90, 32), "signature": signature, "constexprs": constexprs,
            "attrs": {k: attrs[k] for k in sorted(attrs)}, "num_warps": cfg["num_warps"],
            "num_stages": cfg["num_stages"]}


def _sig_type(spec: tuple) -> str:
    if spec[0] == "tensor":
        return "*" + TORCH_TO_TRITON.get(spec[5], "fp32")
    v = spec[1]
    if v is None:
        return "constexpr"
    if isinstance(v, bool):
        return "i1"
    if isinstance(v, int):
        return "i32" if -2**31 <= v < 2**31 else "i64"
    return "fp32"


# --------------------------------------------------------------------------- rendering


def _caveats(source: str) -> list[str]:
    return [why for needle, why in INTERPRETER_CAVEATS.items() if needle in source]


def _compact(d: dict) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in d.items())


def _finish(tree, extraction: Extraction, model: ModelConfig, wl: str, inferred: bool, command: str, name: str,
            entry: str, configs: dict, launches: dict, notes: list[str], *, traced: bool, versions: dict) -> Invocation:
    kernel = extraction.kernel
    kernel_file = f"{safe_stem(name)}.py"
    full, small = configs["FULL"], configs["SMALL"]
    lf = launches.get("FULL") or {}
    site = lf.get("site") or {}
    wrapper = (f"{site['file']}:{site['line']} ({site['function']})" if site else
               ", ".join(f"{s.file}:{s.line} ({s.wrapper})" for s in kernel.launch_sites[:2]) or "unknown")
    caveats = _caveats(extraction.source_code)
    if traced:
        at = lf.get("autotune")
        mode = ("traced: vLLM's own wrapper run on meta tensors (CPU, no launch) under a fake H100 profile "
                "(SM 9.0, 132 SMs, 227 KiB smem/block)")
        if at:
            mode += f"; autotuned: first pruned config of {at['num_pruned']}/{at['num_configs']} used"
    else:
        mode = lf.get("mode") or ("UNTRACED: inputs guessed from the kernel signature; grid/meta NOT from "
                                  "vLLM's wrapper (see notes)")
    fields: list[tuple[str, Any]] = [
        ("Invocation example generated by vkc", vkc.__version__),
        ("vLLM", f"{tree.version} ({tree.origin})"),
        ("kernel", f"{name} = {entry} from {kernel.file}:{kernel.line}; saved beside this script as {kernel_file}"),
        ("wrapper (launch site)", wrapper),
        ("MODEL_NAME", model.model_id),
        ("resolved dims", format_dims(resolved_dims(model))),
        ("WORKLOAD", f"{wl} (inferred: the wrapper recipe's default)" if inferred else wl),
        ("mode", mode),
    ]
    for cname, cfg in (("FULL", full), ("SMALL", small)):
        fields.append((f"{cname} meta", f"grid={cfg['grid']} num_warps={cfg['num_warps']} num_stages={cfg['num_stages']}"
                       f" live={cfg['live_bytes'] / 2**20:.1f} MiB"))
        fields.append((f"{cname} shapes", _compact(cfg["shapes"])))
        fields.append((f"{cname} constexprs", _compact(cfg["constexprs"])))
    fields.append(("config sources", list(model.sources) or ["(none)"]))
    if caveats:
        fields.append(("TRITON_INTERPRET caveats (SMALL on CPU)", caveats))
    if notes:
        fields.append(("notes", notes))
    if not traced:
        for s in kernel.launch_sites[:3]:
            fields.append((f"launch site, verbatim (# from {s.file}:{s.line})", s.text or "(no text)"))
    fields.append(("regenerate with", command))
    header = "\n".join(header_lines(fields))
    comp = compile_literal(entry, full, lf or None)
    code = _render(header=header, name=name, entry=entry, model_id=model.model_id, workload=wl, kernel_file=kernel_file,
                   traced=traced, caveats=caveats, configs=_tag_configs(configs), compile=comp,
                   rate_unit="TFLOP/s" if full["flops"] else "GB/s")
    handoff = _handoff(extraction, configs, launches, traced, notes, versions)
    facts = {"traced": traced, "generic": bool(lf.get("generic")), "kernel_file": kernel_file, "entry_symbol": entry, "configs": configs,
             "compile": comp, "interpreter_caveats": caveats, "workload_inferred": inferred,
             "launch_site": site or None}
    return Invocation(code=code, handoff=handoff, workload=wl, model_id=model.model_id, header=header, facts=facts)


def _tag_configs(configs: dict) -> dict:
    return {k: configs[k] for k in ("FULL", "SMALL")}


def _render(**ctx: Any) -> str:
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), undefined=jinja2.StrictUndefined,
                             keep_trailing_newline=True, autoescape=False)
    env.filters["py"] = pyrepr
    code = env.get_template("invoke.py.j2").render(**ctx)
    try:
        ast.parse(code)
    except SyntaxError as e:
        raise InvocationError(f"generated invocation example does not parse: {e}",
                              hint="this is a vkc bug; please report it with the command line") from e
    return code


def _handoff(extraction: Extraction, configs: dict, launches: dict, traced: bool, notes: list[str], versions: dict):
    h = extraction.handoff
    full, small = configs["FULL"], configs["SMALL"]
    lf = launches.get("FULL") or {}
    site = lf.get("site")
    grid_text = h.grid_expr or "(none from the extractor)"
    grid_expr = f"{grid_text} -> FULL {full['grid']}, SMALL {small['grid']}"
    meta = dict(h.meta_params)
    meta.update({k: v for k, v in full["constexprs"].items()})
    meta.update(num_warps=full["num_warps"], num_stages=full["num_stages"])
    if full["options"]:
        meta["launch_options"] = full["options"]
    guards = dict(h.guards)
    c = full["constexprs"]
    dtypes = sorted({spec[5] for _, spec in full["args"] if spec[0] == "tensor"})
    guards.update({
        "dtype": ",".join(dtypes),
        "causal": c.get("USE_CAUSAL", c.get("CAUSAL", guards.get("causal"))),
        "sliding_window": c.get("SLIDING_WINDOW", guards.get("sliding_window")),
        "sinks": c.get("USE_SINKS", guards.get("sinks")),
        "packed_qkv": guards.get("packed_qkv", False),
    })
    extra = list(notes)
    if traced:
        extra.append("grid/constexprs/num_warps/num_stages/scalars traced from vLLM's wrapper at the model's shapes "
                     "(fake H100: SM 9.0, 132 SMs, 232448 B smem/block opt-in; meta tensors, no launch)")
        if site:
            extra.append(f"launch site {site['file']}:{site['line']} in {site['function']}")
        at = lf.get("autotune")
        if at:
            extra.append(f"autotune: first pruned config used ({at['config']}); {at['num_pruned']} of "
                         f"{at['num_configs']} configs left after pruning"
                         + (f"; {at['note']}" if at.get("note") else ""))
            if at.get("reset_to_zero"):
                extra.append(f"autotune reset_to_zero={at['reset_to_zero']} (zeroed buffers in the example)")
        if lf.get("heuristics"):
            extra.append(f"heuristics kept real: {lf['heuristics']}")
        if lf.get("_count", 1) > 1:
            extra.append(f"the wrapper launched this kernel {lf['_count']} times; the first launch is reproduced")
        if lf.get("_all"):
            extra.append("all launches of the wrapper: " + "; ".join(lf["_all"]))
        defaulted = lf.get("constexpr_defaulted") or []
        if defaulted:
            extra.append(f"constexpr defaults applied: {defaulted}")
        if versions:
            extra.append(f"traced with torch {versions.get('torch')}, triton {versions.get('triton')}")
    else:
        extra.append("UNTRACED fallback: inputs from the kernel signature; grid and meta values are guesses")
    return dataclasses.replace(h, grid_expr=grid_expr, meta_params=meta, guards=guards,
                               notes=tuple(h.notes) + tuple(extra))
