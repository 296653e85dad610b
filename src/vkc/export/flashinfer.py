"""``vkc export DIR --format flashinfer-trace --out OUTDIR``: a FlashInfer-Trace dataset
(``TraceSet.from_path(OUTDIR)`` loads it) of the Triton kernels whose examples carry a reference.

Per kernel and model (and launch shape class: the same tensors, dtypes and const axes), under
``OUTDIR/``:

* ``definitions/<op_type>/<name>.json``: axes (const from the model, var for batch / sequence /
  token / block counts, :mod:`vkc.export.fi_layout`), typed inputs and outputs (pure outputs keep
  the kernel parameter's name; an in-place buffer is the input ``p`` and the output ``p_out``),
  the example's reference as ``run`` (self-contained; the constexprs it is given are looked up by
  the var axes), tags ``model:``, ``stage:``, ``tp:``, ``vkc:kernel:``, ``vkc:reference:``;
* ``workloads/<op_type>/<name>.jsonl``: one workload trace per (model, workload, FULL launch) in
  DIR; index-like inputs as safetensors blobs under ``blob/workloads/<op_type>/<name>/``, scalars
  as scalar inputs, float tensors the example fills with ``randn`` as random inputs;
* ``solutions/<op_type>/<name>/<name>__vkc_triton.json``: ``main.py`` (``run``, destination
  passing) + ``kernel.py`` (vkc's extracted kernel), language triton, target hardware H100 (the
  launch parameters are vLLM's for its fake H100 profile).

Only FULL launches are exported (SMALL ones are not the model's shapes).  Nothing of the
artifacts is executed: the reference and kernel travel as text.
"""
from __future__ import annotations

import json
import os
import re
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vkc import __version__
from vkc.export.example import Example, ExampleSkip, read_example
from vkc.export.fi_layout import Layout, blob_tensor, layout, needs_blob, reference_closure
from vkc.export.inputs import load_dir
from vkc.export.outdir import ExportSummary, safe_join, slug, write_bytes, write_text
from vkc.templating import render

__all__ = ["TARGET_HARDWARE", "export_flashinfer", "op_type"]

TARGET_HARDWARE = ["H100"]
_OP_TYPES = (("attention", "attention"), ("fused_moe", "moe"), ("moe", "moe"), ("quantization", "quantization"),
             ("mamba", "mamba"), ("sample", "sampling"), ("lora", "lora"), ("layernorm", "norm"), ("norm", "norm"),
             ("rotary", "rope"), ("activation", "activation"))


def op_type(ex: Example) -> str:
    """A coarse category from the kernel's vLLM path (``vllm`` when none fits)."""
    where = (ex.name.split(":", 1)[0] if ":" in ex.name else "") + " " + ex.code[:4000]
    kfile = re.search(r"^# kernel: \S+ = \S+ from (\S+):\d+", ex.code, re.M)
    where = kfile.group(1) if kfile else where
    return next((t for key, t in _OP_TYPES if key in where), "vllm")


@dataclass
class _Group:
    name: str
    ex: Example
    lay: Layout
    art_files: list[str] = field(default_factory=list)
    members: list[tuple[Example, str, str, Layout]] = field(default_factory=list)  # (ex, art, config, layout)


def _tp(ex: Example) -> int:
    for ln in ex.header:
        m = re.search(r"\btp=(\d+)", ln)
        if m:
            return int(m.group(1))
    return 1


def _definition(g: _Group) -> dict[str, Any]:
    lay = g.lay
    const = {a: v for a, k, v in lay.axes if k == "const"}
    axes = {a: ({"type": "const", "value": v} if k == "const" else {"type": "var"}) for a, k, v in lay.axes}
    var = [a for a, _n, _d in lay.bindings]
    launches = [[[m[3].var_values()[a] for a in var], m[3].launch] for m in g.members]
    ctx = {"vkc_version": __version__, "reference": f"{g.ex.reference_source} {g.ex.reference_origin}",
           "closure": "import torch  # noqa: F401\n\n" + reference_closure(g.ex), "var_axes": var,
           "bindings": [list(b) for b in lay.bindings], "launches": launches,
           "fixed": dict(lay.fixed), "outputs": [(n, p, i, poisoned) for n, p, _ax, _dt, i, poisoned in lay.outputs],
           "output_axes": {p: (list(ax), dt) for _n, p, ax, dt, _i, _po in lay.outputs},
           "const_axes": const, "params": list(lay.params),
           "input_names": [n for n, *_ in lay.inputs], "input_params": [(n, p) for n, p, *_ in lay.inputs]}
    stages = sorted({m[0].workload or "none" for m in g.members})
    tags = [f"model:{g.ex.model or 'default'}", *(f"stage:{s}" for s in stages), f"tp:{_tp(g.ex)}",
            f"vkc:kernel:{g.ex.name}", f"vkc:reference:{g.ex.reference_source}"]
    return {
        "name": g.name, "op_type": op_type(g.ex), "axes": axes,
        "inputs": {n: {"shape": list(ax) if ax is not None else None, "dtype": dt} for n, _p, ax, dt in lay.inputs},
        "outputs": {n: {"shape": list(ax), "dtype": dt} for n, _p, ax, dt, _i, _po in lay.outputs},
        "reference": render("vkc.export/fi_reference.py.j2", check="python", **ctx),
        "tags": tags,
        "description": (f"{g.ex.name} at {g.ex.model} ({', '.join(stages)}), exported by vkc {__version__} from "
                        f"{', '.join(sorted(set(g.art_files)))}; reference: {g.ex.reference_source} "
                        f"{g.ex.reference_origin}; tolerances: {'; '.join(g.ex.tolerance_lines)}"),
    }


def _solution(g: _Group, definition: dict[str, Any]) -> dict[str, Any]:
    lay = g.lay
    var = [a for a, _n, _d in lay.bindings]
    sol_outputs = [(n, p, not poisoned) for n, p, _ax, _dt, _i, poisoned in lay.outputs]
    ctx = {"vkc_version": __version__, "kernel": g.ex.name, "entry": g.ex.entry, "params": list(lay.params),
           "var_axes": var, "bindings": [list(b) for b in lay.bindings],
           "launches": [[[m[3].var_values()[a] for a in var], m[3].launch] for m in g.members],
           "fixed": dict(lay.fixed), "solution_outputs": sol_outputs, "strides": {p: list(s) for p, s in lay.strides},
           "input_params": [(n, p) for n, p, *_ in lay.inputs],
           "run_args": [n for n, *_ in lay.inputs] + [n for n, *_ in lay.outputs]}
    main = render("vkc.export/fi_solution.py.j2", check="python", **ctx)
    return {"name": f"{g.name}__vkc_triton", "definition": definition["name"], "author": f"vkc {__version__}",
            "spec": {"language": "triton", "target_hardware": TARGET_HARDWARE, "entry_point": "main.py::run",
                     "dependencies": [], "destination_passing_style": True},
            "sources": [{"path": "main.py", "content": main}, {"path": "kernel.py", "content": g.ex.source_code}],
            "description": f"vkc's extraction of {g.ex.name}, launched with the grid and meta-parameters "
                           "vLLM's wrapper computes at each workload"}


def _tolerances(g: _Group) -> dict[str, dict[str, list[float]]]:
    """vkc's (atol, rtol) per output and dtype (the format has no field for them)."""
    by_param = {p: tols for p, _i, _po, tols in g.ex.outputs}
    return {n: {dt: list(t) for dt, t in sorted(by_param[p].items())} for n, p, *_ in g.lay.outputs}


def _workloads(g: _Group, root: Path, op: str) -> list[dict[str, Any]]:
    import safetensors.torch

    traces = []
    for ex, art, config, lay in g.members:
        wid = str(uuid.uuid5(uuid.NAMESPACE_URL, f"vkc:{g.name}:{art}:{config}"))
        inputs: dict[str, Any] = {}
        blobs: dict[str, Any] = {}
        spec = dict(ex.configs[config]["args"])
        for name, param, ax, _dt in lay.inputs:
            if ax is None:
                inputs[name] = {"type": "scalar", "value": spec[param][1]}
            elif needs_blob(ex, config, param) and (t := blob_tensor(ex, config, param)) is not None:
                blobs[name] = t
            else:
                inputs[name] = {"type": "random"}
        if blobs:
            fname = f"{g.name}_{wid}.safetensors"
            rel = ("blob", "workloads", op, g.name, fname)
            write_bytes(safe_join(root, *rel), safetensors.torch.save(dict(sorted(blobs.items()))))
            for name in blobs:
                inputs[name] = {"type": "safetensors", "path": "/".join(rel), "tensor_key": name}
        ordered = {n: inputs[n] for n, *_ in lay.inputs}
        traces.append({"definition": g.name, "workload": {"axes": lay.var_values(), "inputs": ordered, "uuid": wid},
                       "solution": None, "evaluation": None})
    return traces


def _groups(bd: Any, summary: ExportSummary, small: bool) -> list[_Group]:
    groups: dict[tuple[Any, ...], _Group] = {}
    names: dict[str, int] = {}
    for art in bd.artifacts:
        artifact = {"name": art.name, "kernel": {"kernel_type": art.kernel_type, "source_code": art.source_code,
                                                  "invocation_example": art.invocation_example}}
        try:
            ex = read_example(artifact)
            want = "SMALL" if small else "FULL"
            fulls = sorted(c for c in ex.configs if c == want or c.startswith(want + "."))
            if not fulls:
                raise ExampleSkip(f"no {want} configuration")
            lays = [(c, layout(ex, c)) for c in fulls]
        except ExampleSkip as exc:
            summary.skip(art.file, str(exc))
            continue
        for config, lay in lays:
            key: tuple[Any, ...] = (ex.name, ex.model, lay.signature())
            g = groups.get(key)
            values = [lay.var_values()[a] for a, _n, _d in lay.bindings]
            if g is not None and any([m[3].var_values()[a] for a, _n, _d in lay.bindings] == values
                                     and m[3].launch != lay.launch for m in g.members):
                key = (*key, art.file, config)    # the same shapes launched another way: its own definition
                g = None
            if g is None:
                base = f"{ex.stem}__{slug(ex.model or 'default')}" + ("__small" if small else "")
                names[base] = names.get(base, 0) + 1
                g = groups[key] = _Group(base if names[base] == 1 else f"{base}__{names[base]}", ex, lay)
            if any(m[1] == art.file and m[3].var_values() == lay.var_values() for m in g.members):
                continue    # FULL.2 with the very same launch as FULL
            g.art_files.append(art.file)
            g.members.append((ex, art.file, config, lay))
    return [groups[k] for k in sorted(groups, key=lambda k: groups[k].name)]


def export_flashinfer(directory: str | os.PathLike[str], out: str | os.PathLike[str] | None = None, *,
                      small: bool = False) -> ExportSummary:
    """Write the dataset under ``out`` (default ``DIR/flashinfer-trace``) and ``export_summary.json``.

    ``small=True`` exports the SMALL launches instead (names end ``__small``): not the model's
    shapes, but ones the Triton interpreter runs on CPU (the tests run reference and solution)."""
    bd = load_dir(directory)
    root = Path(out) if out else bd.root / "flashinfer-trace"
    summary = ExportSummary("flashinfer-trace", root)
    for g in _groups(bd, summary, small):
        op = op_type(g.ex)
        try:
            definition = _definition(g)
            solution = _solution(g, definition)
        except ExampleSkip as exc:
            summary.skip(", ".join(g.art_files), str(exc))
            continue
        traces = _workloads(g, root, op)
        write_text(safe_join(root, "definitions", op, f"{g.name}.json"), json.dumps(definition, indent=1) + "\n")
        write_text(safe_join(root, "workloads", op, f"{g.name}.jsonl"),
                   "".join(json.dumps(t) + "\n" for t in traces))
        write_text(safe_join(root, "solutions", op, g.name, f"{solution['name']}.json"),
                   json.dumps(solution, indent=1) + "\n")
        summary.written.append({"definition": g.name, "op_type": op, "kernel": g.ex.name, "model": g.ex.model,
                                "workloads": len(traces), "artifacts": sorted(set(g.art_files)),
                                "tolerances": _tolerances(g)})
    for rel in bd.unreadable:
        summary.skip(rel, "unreadable: not JSON")
    summary.save()
    return summary
