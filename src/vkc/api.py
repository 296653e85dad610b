"""vkc's public Python API, for people who script vkc (dataset builders, notebooks).

    >>> import vkc
    >>> vkc.list_kernels(lang="cuda", role="entry")[:1]          # doctest: +SKIP
    (KernelEntry(lang='cuda', name='...', ...),)
    >>> vkc.collect("rms_norm_kernel", model="Qwen/Qwen3-30B-A3B")  # doctest: +SKIP
    WriteResult(path='kernels_out/rms_norm_kernel.json', size=..., sha256='...', model_id='Qwen/Qwen3-30B-A3B')

Each function returns the typed records of :mod:`vkc.records` (or
:class:`vkc.verify.CheckResult`) and raises the :mod:`vkc.errors` hierarchy; the ``vkc``
command line calls these same functions, so an artifact written here is byte-identical to the
one ``vkc collect`` writes with the same arguments.
"""
from __future__ import annotations

import os
import shlex
from collections.abc import Iterable
from typing import TYPE_CHECKING, TextIO

from vkc.records import KernelEntry, ModelConfig, WriteResult

if TYPE_CHECKING:  # vkc.verify imports the rubric and jsonschema; only verify() needs it
    from vkc.verify.result import CheckResult

__all__ = ["collect", "list_kernels", "load_model", "verify"]

DEFAULT_OUT = "kernels_out"


def collect(kernel: str, *, model: str | None = None, workload: str | None = None,
            out_dir: str | os.PathLike[str] = DEFAULT_OUT, vllm_path: str | None = None,
            vllm_version: str | None = None) -> WriteResult:
    """Collect one kernel into ``<out_dir>/<stem>.json`` (``vkc collect KERNEL``).

    ``model``: a Hugging Face id or a config.json path (default: the first bundled model the
    kernel applies to); ``workload``: "prefill" or "decode" (default: the recipe's choice).
    The artifact's header names the equivalent ``vkc collect`` command line."""
    from vkc.pipeline import collect as run

    return run(kernel, model=model, workload=workload, out_dir=out_dir, vllm_path=vllm_path,
               vllm_version=vllm_version,
               command=regenerate_command(kernel, model, workload, out_dir, vllm_path, vllm_version))


def regenerate_command(kernel: str, model: str | None, workload: str | None,
                       out_dir: str | os.PathLike[str], vllm_path: str | None, vllm_version: str | None) -> str:
    """The ``vkc collect`` command line that writes the same artifact (the header's COMMAND)."""
    parts = ["vkc", "collect", kernel]
    for flag, val in (("--model", model), ("--workload", workload), ("--vllm", vllm_path),
                      ("--vllm-version", vllm_version)):
        if val:
            parts += [flag, val]
    out = os.fspath(out_dir)
    if out != DEFAULT_OUT:
        parts += ["--out", out]
    return shlex.join(parts)


def list_kernels(*, lang: str | None = None, role: str | None = None, vllm_path: str | None = None,
                 vllm_version: str | None = None, use_cache: bool = True) -> tuple[KernelEntry, ...]:
    """The kernels of the vLLM tree (``vkc list``), filtered by ``lang`` ("triton" | "cuda") and
    ``role`` ("entry" | "helper" | "orphan"), sorted by (lang, qualified name)."""
    from vkc.index.listing import select
    from vkc.pipeline import load_index

    index = load_index(vllm_path, vllm_version, use_cache=use_cache)
    return tuple(select(index, lang=lang, role=role))


def load_model(model: str, *, offline: bool | None = None, endpoint: str | None = None) -> ModelConfig:
    """The normalised config of a model (``vkc model show``): a hub id or a config.json path.
    ``offline`` (default: ``HF_HUB_OFFLINE``) uses the HF cache, then the bundled snapshots."""
    from vkc.modelcfg import load_model as run

    return run(model, endpoint=endpoint, offline=offline)


def verify(paths: Iterable[str | os.PathLike[str]], *, compile: bool = False, run: bool = False,
           sanitizer: bool = False, jobs: int | None = None, run_jobs: int = 1, timeout: float = 300.0,
           compile_timeout: float = 1800.0, results_path: str | None = None, sandboxed: bool = True,
           log: TextIO | None = None) -> list[CheckResult]:
    """Check artifact files or folders against the spec's rubric (``vkc verify``), optionally
    compiling (``compile``) and running (``run``, ``sanitizer``) them in ``jobs`` isolated
    workers (runs one at a time, or ``run_jobs`` at once for correctness sweeps); writes
    ``verify_results.json`` beside the artifacts (or ``results_path``).
    ``log`` (e.g. ``sys.stderr``) gets progress lines and the note on running host code."""
    from vkc.batch.progress import make_progress
    from vkc.batch.verify_many import verify_many

    progress = make_progress(log) if log is not None and (compile or run) else None
    return verify_many(paths, compile=compile, run=run, sanitizer=sanitizer, jobs=jobs, run_jobs=run_jobs,
                       timeout=timeout,
                       results_path=results_path, progress=progress, compile_timeout=compile_timeout,
                       sandboxed=sandboxed, notice=log)
