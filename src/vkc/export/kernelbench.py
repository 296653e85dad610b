"""``vkc export DIR --format kernelbench --out OUTDIR``: one KernelBench-style task per Triton
artifact whose invocation example carries a reference.

Route: the task imports vkc's invocation example rather
than re-generating its buffer code, so ``get_inputs()`` builds exactly the valid inputs the
example builds (its init specs: block tables inside the cache, cumulative lengths, top-k ids)
and ``Model.forward`` is exactly the example's ``reference(a, c)``.  Per task folder
``OUTDIR/<kernel stem>__<model slug>__<workload>/``:

* ``reference.py``: ``Model`` (forward = the reference; outputs reshaped/cast to the kernel's
  output buffers), ``get_inputs()`` (the kernel's arguments in signature order, outputs poisoned
  as the example's check does), ``get_init_inputs()`` (``[]``);
* ``model_new.py``: the same inputs, and ``ModelNew`` launching vkc's extracted kernel through the
  example's ``make_launch`` (in-place kernels return the buffer they mutate);
* ``vkc_example.py`` and ``<KERNEL_FILE>``: the artifact's example and kernel, byte for byte;
* ``vkc_task.json``: per-output tolerances by dtype (vkc's, not KernelBench's single 1e-2),
  how to compare, and provenance.

Nothing of the artifact is executed here: its text is read with ``ast`` (:mod:`vkc.export.example`).
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from vkc import __version__
from vkc.export.example import Example, ExampleSkip, read_example
from vkc.export.inputs import load_dir
from vkc.export.outdir import ExportSummary, safe_join, task_name, write_text
from vkc.export.provenance import parse_provenance
from vkc.templating import render

__all__ = ["KERNELBENCH_TOLERANCE", "export_kernelbench"]

KERNELBENCH_TOLERANCE = {"atol": 1e-2, "rtol": 1e-2}   # KernelBench's eval default (one for every dtype)
COMPARE_RULE = ("per output: torch.allclose(new.double(), ref.double(), atol, rtol, equal_nan=True) at the "
                "output dtype's (atol, rtol) from `outputs` (`default` when the dtype is not listed); "
                "poisoned outputs hold NaN / the integer minimum before the launch, so an element the "
                "kernel should write and does not fails, as in the example's own check")


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _sidecar(ex: Example, art_file: str, name: str, files: dict[str, tuple[str, str]]) -> dict[str, Any]:
    prov = parse_provenance("triton", ex.code).to_json()
    return {
        "format": "kernelbench", "generator": f"vkc {__version__}", "task": name, "kernel": ex.name,
        "artifact": art_file, "model": ex.model, "workload": ex.workload,
        "configs": sorted(ex.configs), "config_rule": "VKC_CONFIG=NAME, else FULL on CUDA and SMALL on CPU",
        "files": {k: {"path": v, "sha256": _sha(t)} for k, (v, t) in sorted(files.items())},
        "entry": {"reference": "reference.py::Model", "model_new": "model_new.py::ModelNew",
                  "inputs": "get_inputs", "init_inputs": "get_init_inputs"},
        "outputs": [{"param": p, "index": i, "poisoned": poisoned,
                     "tolerance": {dt: {"atol": at, "rtol": rt} for dt, (at, rt) in sorted(tols.items())}}
                    for p, i, poisoned, tols in ex.outputs],
        "compare": COMPARE_RULE,
        "kernelbench_tolerance": {**KERNELBENCH_TOLERANCE, "note": (
            "KernelBench compares every task at one atol/rtol; vLLM's own are tighter for fp32 and "
            "per dtype (fp8 has none in KernelBench): use `outputs[].tolerance`")},
        "reference": {"source": ex.reference_source, "origin": ex.reference_origin,
                      "tolerance_lines": list(ex.tolerance_lines)},
        "provenance": {k: prov.get(k) for k in ("vkc_version", "vllm_version", "vllm_source_url", "kernel_symbol",
                                              "kernel_file", "kernel_line", "wrapper", "wrapper_file",
                                              "wrapper_line", "regenerate_command")},
    }


def _task(ex: Example, art_file: str, root: Path) -> dict[str, Any]:
    name = task_name(ex.stem, ex.model, ex.workload)
    module = "vkc_kb_" + hashlib.sha256(name.encode()).hexdigest()[:16]
    ctx = {"vkc_version": __version__, "artifact": art_file, "kernel": ex.name, "model": ex.model or "default",
           "workload": ex.workload or "none", "reference": f"{ex.reference_source} {ex.reference_origin}",
           "kernel_file": ex.kernel_file, "module_name": module,
           "outputs": [(p, i, poisoned) for p, i, poisoned, _t in ex.outputs]}
    files = {
        "reference": ("reference.py", render("vkc.export/kb_reference.py.j2", check="python", **ctx)),
        "model_new": ("model_new.py", render("vkc.export/kb_model_new.py.j2", check="python", **ctx)),
        "example": ("vkc_example.py", ex.code),
        "kernel": (ex.kernel_file, ex.source_code),
    }
    folder = safe_join(root, name)
    for path, text in files.values():
        write_text(safe_join(folder, path), text)
    sidecar = _sidecar(ex, art_file, name, files)
    write_text(safe_join(folder, "vkc_task.json"), json.dumps(sidecar, indent=1, sort_keys=True) + "\n")
    return {"artifact": art_file, "task": name, "kernel": ex.name, "model": ex.model, "workload": ex.workload,
            "reference_source": ex.reference_source}


def export_kernelbench(directory: str | os.PathLike[str], out: str | os.PathLike[str] | None = None) -> ExportSummary:
    """Write the tasks under ``out`` (default ``DIR/kernelbench``) and ``export_summary.json``."""
    bd = load_dir(directory)
    root = Path(out) if out else bd.root / "kernelbench"
    summary = ExportSummary("kernelbench", root)
    seen: dict[str, str] = {}
    for art in bd.artifacts:
        artifact = {"name": art.name, "kernel": {"kernel_type": art.kernel_type, "source_code": art.source_code,
                                                  "invocation_example": art.invocation_example}}
        try:
            ex = read_example(artifact)
            name = task_name(ex.stem, ex.model, ex.workload)
        except (ExampleSkip, ValueError) as exc:
            summary.skip(art.file, str(exc))
            continue
        if name in seen:
            summary.skip(art.file, f"duplicate: the same kernel, model and workload as {seen[name]}")
            continue
        seen[name] = art.file
        summary.written.append(_task(ex, art.file, root))
    for rel in bd.unreadable:
        summary.skip(rel, "unreadable: not JSON")
    summary.save()
    return summary
