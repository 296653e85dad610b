"""Trace worker: run a recipe's real vLLM wrapper on meta tensors and capture its launches.

Usage: ``python -m vkc.invoke.triton.traced.worker < request.json > response.json``
(run by :mod:`vkc.invoke.triton.traced.tracer` with ``CUDA_VISIBLE_DEVICES=""``, which keeps real
Triton inside ``vllm.triton_utils``).  Request::

    {"tree_root": "...", "profile": {...H100_PROFILE...},
     "jobs": [{"id": "FULL", "recipe": "attention", "kernel": "module:qualname",
               "kernel_line": 46, "shapes": {...}, "platform": "h100"|"generic"}]}

Response: ``{"ok": true, "versions": {...}, "jobs": [{"id", "ok", "error", "launches",
"selected", "buffers", ...}]}``.  Nothing is launched: ``JITFunction.run`` and
``Autotuner.run`` are replaced by recorders; ``Heuristics.run`` stays real.
vLLM's own logging goes to stderr; the JSON is the only thing written to stdout.
"""
from __future__ import annotations

import importlib
import json
import os
import sys
import traceback
from typing import Any

from vkc.invoke.triton.traced.capture import STATE, _jsonable, install_capture
from vkc.invoke.triton.traced.platform import install_fake_h100, install_generic
from vkc.invoke.triton.traced.tensors import TensorFactoryImpl


def _matches(fn: dict[str, Any], kernel: str, line: int | None) -> bool:
    module, _, qualname = kernel.partition(":")
    if fn["module"] == module and fn["qualname"] == qualname:
        return True
    # a kernel defined in a module that was executed under another name (rare)
    return bool(line) and fn["line"] == line and fn["qualname"] == qualname


def run_job(job: dict[str, Any], getter) -> dict[str, Any]:
    from vkc.invoke.triton.recipes import plan_in_module

    STATE.launches = []
    STATE.keep = []
    STATE.factory = TensorFactoryImpl()
    out: dict[str, Any] = {"id": job["id"], "ok": False, "error": None, "launches": [], "selected": []}
    recipe = None
    try:
        recipe = plan_in_module(job["recipe"], job.get("recipe_kernel", job["kernel"]))
        aliases = job.get("aliases") or {}
        if aliases:                 # the recipe follows its kernel's moved module (traced/moved.py)
            real_get = getter

            def getter(name: str) -> Any:
                return real_get(aliases.get(name, name))
        recipe.call(getter, dict(job["shapes"], kernel=job["kernel"]), STATE.factory)
    except Exception as e:  # noqa: BLE001
        out["error"] = f"{type(e).__name__}: {e}"
        out["error_class"] = type(e).__name__
        out["error_message"] = str(e)
        out["traceback"] = traceback.format_exc(limit=8)
    out["launches"] = STATE.launches
    matched = [i for i, rec in enumerate(STATE.launches) if _matches(rec["fn"], job["kernel"], job.get("kernel_line"))]
    if matched and recipe is not None and recipe.select is not None:
        picked = recipe.select([STATE.launches[i] for i in matched], job["kernel"])
        matched = [matched[int(k)] for k in picked]
    out["selected"] = matched
    used = {a["base"] for i in matched for a in STATE.launches[i]["args"].values() if a.get("kind") == "tensor"}
    out["buffers"] = {n: b for n, b in STATE.factory.bases.items() if n in used}
    out["ok"] = bool(matched) and out["error"] is None
    if out["error"] is None and not matched:
        seen = sorted({f"{r['fn']['module']}:{r['fn']['qualname']}" for r in STATE.launches})
        out["error"] = f"the wrapper made {len(STATE.launches)} launch(es), none of {job['kernel']} (saw: {seen})"
    return out


def main() -> int:
    req = json.load(sys.stdin)
    real_stdout = sys.stdout
    sys.stdout = sys.stderr          # vLLM may print; keep stdout for the JSON
    os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")
    sys.path.insert(0, req["tree_root"])
    STATE.tree_root = os.path.abspath(req["tree_root"])
    resp: dict[str, Any] = {"ok": False, "jobs": [], "error": None}
    try:
        import torch
        import triton

        resp["versions"] = {"torch": torch.__version__, "triton": triton.__version__,
                            "python": sys.version.split()[0]}
        platforms = {j.get("platform", "h100") for j in req["jobs"]}
        if platforms == {"generic"}:
            install_generic()
        else:
            install_fake_h100(req["profile"])
        install_capture()
        getter = importlib.import_module
        for job in req["jobs"]:
            resp["jobs"].append(run_job(job, getter))
        resp["ok"] = True
    except Exception as e:  # noqa: BLE001
        resp["error"] = f"{type(e).__name__}: {e}"
        resp["traceback"] = traceback.format_exc(limit=10)
    real_stdout.write(json.dumps(resp, sort_keys=True))
    real_stdout.flush()
    return 0


# the model tracer (vkc.modeltrace) reuses these through this module
__all__ = ["STATE", "_jsonable", "install_capture", "install_fake_h100", "main", "run_job"]


if __name__ == "__main__":
    sys.exit(main())
