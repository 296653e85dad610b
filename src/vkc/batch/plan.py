"""What ``vkc collect --all`` collects, under which name, into which folder.

Names: every *entry* kernel of the index (``--type`` filters the language) is collected
with its bare name when ``lookup(index, bare)`` resolves to exactly that kernel, else with
its qualified name, so the file is ``<out>/<bare>.json`` or e.g.
``<out>/vllm.ops.a--dup_kernel.json`` / ``<out>/csrc.x.cu--k@120.json``
(:func:`vkc.write.names.safe_stem`).  Bare stems never contain ``--``, qualified stems
always do, and qualified names are unique, so no two kernels share a file.

Layout: with one model and one workload (given or not), files go straight into ``<out>/``.
With several models or workloads every (model, workload) pair gets its own folder::

    <out>/<model-slug>/<workload>/<stem>.json     workload: prefill | decode | inferred

where ``<model-slug>`` is the model id with ``/`` -> ``--`` (``meta-llama--Llama-3.1-8B``)
and ``inferred`` holds the runs without ``--workload`` (each kernel's own default).
``<out>/collect_results.json`` always sits at the top.
"""
from __future__ import annotations

import hashlib
import os
import re
import shlex
from collections.abc import Collection, Mapping
from dataclasses import dataclass, replace

from vkc.errors import AmbiguousKernelError, KernelLookupError, UsageError
from vkc.records import KernelEntry, KernelIndex

WORKLOADS = ("prefill", "decode")
INFERRED = "inferred"
DEFAULT_OUT = "kernels_out"


@dataclass(frozen=True)
class Job:
    """One kernel x model x workload to collect (picklable: it crosses to a worker)."""
    name: str                 # the name collected with: bare when unique, else qualified
    qualified: str
    lang: str
    model: str | None         # as given; None = the default model
    workload: str | None      # as given; None = the kernel's inferred workload
    out_dir: str
    command: str              # the regenerating command written into the artifact header
    order: int = 0            # position in the plan (results are reported in this order)
    reach: str = ""           # "<model> <workload>" when the reach map chose them (no --model)
    test_model: str = ""      # the model the test-size map chose (no --model; :mod:`vkc.batch.testsize`)
    fallback: Job | None = None   # with ``reach`` / ``test_model``: the job as it is without the map, run if this one fails


def collect_name(index: KernelIndex, kernel: KernelEntry) -> str:
    """The bare name if it designates ``kernel`` in ``index``, else the qualified name."""
    from vkc.index import lookup
    try:
        if lookup(index, kernel.name).qualified == kernel.qualified:
            return kernel.name
    except (AmbiguousKernelError, KernelLookupError):
        pass
    return kernel.qualified


def model_slug(model: str) -> str:
    """A folder name for a model id (``org/name`` -> ``org--name``) or a config path."""
    if os.path.exists(model) or model.endswith(".json"):
        absolute = os.path.abspath(model)
        base = os.path.basename(absolute.rstrip(os.sep))
        if base == "config.json":
            base = os.path.basename(os.path.dirname(absolute))
        digest = hashlib.sha256(absolute.encode()).hexdigest()[:8]
        return f"local-{_clean(base) or 'model'}-{digest}"
    return _clean(model.replace("/", "--")) or "model"


def _clean(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", s).strip("._-")


def _dedupe(values) -> list:
    return list(dict.fromkeys(values))


def regen_command(name: str, *, model: str | None, workload: str | None, out_dir: str,
                  vllm_path: str | None, vllm_version: str | None) -> str:
    """The single-kernel command that writes the same file (same format as the CLI's)."""
    parts = ["vkc", "collect", name]
    for flag, val in (("--model", model), ("--workload", workload), ("--vllm", vllm_path),
                      ("--vllm-version", vllm_version)):
        if val:
            parts += [flag, val]
    if out_dir != DEFAULT_OUT:
        parts += ["--out", out_dir]
    return shlex.join(parts)


def plan_jobs(index: KernelIndex, *, lang: str | None = None, models: list[str] | None = None,
              workloads: list[str] | None = None, out_dir: str = DEFAULT_OUT,
              vllm_path: str | None = None, vllm_version: str | None = None,
              default_model: str = "meta-llama/Llama-3.1-8B-Instruct",
              only: Mapping[str | None, Collection[str]] | None = None,
              reach: Mapping[str, tuple[str, str]] | None = None,
              test_models: Mapping[str, str] | None = None) -> list[Job]:
    """Every entry kernel x model x workload, in (model, workload, lang, qualified) order; with
    ``only``, per workload just the kernels it names (``--all-used``: what the model's step launches).

    ``reach`` (qualified -> (model, workload), :mod:`vkc.batch.reach`; only without ``models`` and
    ``workloads``): a kernel it names is collected at that model and workload, its command naming
    both, with the plain job as its ``fallback``; the file stays ``<out>/<stem>.json``.  ``test_models``
    (qualified -> model, :mod:`vkc.batch.testsize`; same condition): a kernel it names and ``reach``
    does not is collected at that model (workload inferred), likewise with its fallback."""
    if lang not in (None, "triton", "cuda"):
        raise UsageError(f"unknown kernel type {lang!r}", hint="use triton or cuda")
    ms: list[str | None] = _dedupe(models) if models else [None]
    ws: list[str | None] = _dedupe(workloads) if workloads else [None]
    for w in ws:
        if w is not None and w not in WORKLOADS:
            raise UsageError(f"unknown workload {w!r}", hint="use prefill or decode")
    nested = len(ms) > 1 or len(ws) > 1
    slugs = _unique_slugs([m or default_model for m in ms])
    kernels = sorted((k for k in index.kernels if k.role == "entry" and (lang is None or k.lang == lang)),
                     key=lambda k: (k.lang, k.qualified))
    names = [(k, collect_name(index, k)) for k in kernels]
    jobs: list[Job] = []
    for m, slug in zip(ms, slugs):
        for w in ws:
            sub = "/".join([out_dir.rstrip("/") or ".", slug, w or INFERRED]) if nested else out_dir
            for k, name in names:
                if only is not None and k.qualified not in only.get(w, ()):
                    continue
                job = Job(name=name, qualified=k.qualified, lang=k.lang, model=m, workload=w, out_dir=sub,
                          order=len(jobs), command=regen_command(name, model=m, workload=w, out_dir=sub,
                                                                 vllm_path=vllm_path, vllm_version=vllm_version))
                jobs.append(_reached(job, reach or {}, test_models or {}, vllm_path, vllm_version)
                            if (reach or test_models) and m is None and w is None else job)
    return jobs


def _reached(job: Job, reach: Mapping[str, tuple[str, str]], test_models: Mapping[str, str],
             vllm_path: str | None, vllm_version: str | None) -> Job:
    """``job`` at the model and workload the reach map names for its kernel, else at the model the
    test-size map names (else ``job``)."""
    if job.qualified in reach:
        m, w = reach[job.qualified]
        return replace(job, model=m, workload=w, reach=f"{m} {w}", fallback=job,
                       command=regen_command(job.name, model=m, workload=w, out_dir=job.out_dir,
                                             vllm_path=vllm_path, vllm_version=vllm_version))
    tm = test_models.get(job.qualified)
    if tm is None:
        return job
    return replace(job, model=tm, test_model=tm, fallback=job,
                   command=regen_command(job.name, model=tm, workload=None, out_dir=job.out_dir,
                                         vllm_path=vllm_path, vllm_version=vllm_version))


def _unique_slugs(models: list[str]) -> list[str]:
    out: list[str] = []
    for m in models:
        s = model_slug(m)
        base, n = s, 2
        while s in out:
            s, n = f"{base}-{n}", n + 1
        out.append(s)
    return out
