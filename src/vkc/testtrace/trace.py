"""``capture_tests``: run the test worker (:mod:`.worker`) over jobs and cache each answer on disk.

Cache: ``$VKC_CACHE_DIR/testtraces/<key>.json`` (one :meth:`Capture.to_json` per job), key = sha256
of the tree (root, sdist sha256, version), the test file's bytes, the job (test, kernel, model
dims, timeout), the H100 profile, the vkc version and the source of every worker-side module
(editing one invalidates).  Failures are cached too (the same inputs fail the same way), except a
timeout or a worker that died, which are retried on the next call.
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import vkc
from vkc.atomic import store_cache
from vkc.modeltrace.trace import module_source_hash
from vkc.records import SourceTree

from .records import Capture, VllmTest

__all__ = ["IMPORT_S", "TestJob", "capture_tests", "job_key", "tests_enabled"]

IMPORT_S = 240                   # the worker's start-up (vLLM import) allowance, besides each job's timeout
JOB_TIMEOUT_S = 90
_WORKER_MODULES = ("vkc.testtrace.worker", "vkc.testtrace.harness", "vkc.testtrace.fixtures", "vkc.testtrace.standins",
                   "vkc.testtrace.opcall", "vkc.testtrace.lenient", "vkc.testtrace.writes", "vkc.testtrace.interp",
                   "vkc.modeltrace.opschema", "vkc.invoke.triton.traced.capture", "vkc.invoke.triton.traced.platform",
                   "vkc.invoke.cuda.modeltraced.dispatch", "vkc.invoke.cuda.modeltraced.dispatch_args",
                   "vkc.invoke.cuda.modeltraced.dispatch_quant", "vkc.invoke.cuda.modeltraced.dispatch_topk",
                   "vkc.invoke.cuda.modeltraced.dispatch_fused", "vkc.invoke.cuda.modeltraced.binding")
_NOT_CACHED = ("timeout", "worker")
_memo: dict[str, Capture] = {}


def tests_enabled() -> bool:
    """``VKC_TEST_TRACE=0`` turns the test-traced source off."""
    return os.environ.get("VKC_TEST_TRACE", "1") != "0"


@dataclass(frozen=True)
class TestJob:
    """Run ``test`` until it launches ``kernel``; ``dims``: the model's sizes (None: the test's own).

    ``ops`` (the CUDA half): run it until it calls one of these compiled ops (``"_C::rms_norm"``),
    which launch the CUDA ``kernel``; the capture is the call (:attr:`Capture.op_call`)."""

    __test__ = False             # not a pytest class

    test: VllmTest
    kernel: str
    kernel_line: int | None = None
    dims: Mapping[str, Any] | None = None
    timeout_s: int = JOB_TIMEOUT_S
    ops: tuple[str, ...] = ()

    def request(self, job_id: str) -> dict[str, Any]:
        req: dict[str, Any] = {"id": job_id, "file": self.test.file, "function": self.test.function,
                               "kernel": self.kernel, "kernel_line": self.kernel_line,
                               "dims": dict(self.dims) if self.dims else None, "timeout_s": self.timeout_s}
        if self.ops:
            req["ops"] = list(self.ops)
        return req


def job_key(tree: SourceTree, job: TestJob) -> str:
    from vkc.invoke.common import H100_PROFILE

    test_file = Path(tree.root) / job.test.file
    file_hash = hashlib.sha256(test_file.read_bytes()).hexdigest()[:16] if test_file.is_file() else "-"
    req = job.request("")
    blob = {"tree": [str(tree.root), tree.sha256, tree.version], "test_file": file_hash,
            "job": {k: v for k, v in sorted(req.items()) if k != "id"}, "profile": H100_PROFILE,
            "vkc": vkc.__version__, "src": {m: module_source_hash(m) for m in _WORKER_MODULES}}
    return hashlib.sha256(json.dumps(blob, sort_keys=True, default=str).encode()).hexdigest()[:32]


def _cache_dir() -> Path:
    from vkc.source import cache_dir

    return Path(cache_dir()) / "testtraces"


def _failed(job: TestJob, reason: str, category: str) -> Capture:
    return Capture(False, job.test.node_id, job.kernel, reason=reason, category=category,
                   attempts=(f"{job.test.node_id}: {category}: {reason}",))


def _run_worker(tree: SourceTree, jobs: Sequence[TestJob]) -> list[Capture]:
    from vkc.invoke.common import H100_PROFILE

    req = {"tree_root": str(tree.root), "profile": H100_PROFILE,
           "jobs": [j.request(str(i)) for i, j in enumerate(jobs)]}
    env = dict(os.environ)
    env["CUDA_VISIBLE_DEVICES"] = ""
    env.pop("TRITON_INTERPRET", None)
    env.setdefault("VLLM_LOGGING_LEVEL", "WARNING")
    env["PYTHONPATH"] = os.pathsep.join([str(Path(vkc.__file__).resolve().parent.parent)]
                                        + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    limit = IMPORT_S + sum(j.timeout_s + 10 for j in jobs)
    try:
        proc = subprocess.run([sys.executable, "-m", "vkc.testtrace.worker"], input=json.dumps(req), check=False,
                              capture_output=True, text=True, env=env, timeout=limit, cwd=str(tree.root))
    except subprocess.TimeoutExpired:
        return [_failed(j, f"the test worker timed out after {limit}s", "timeout") for j in jobs]
    try:
        resp = json.loads(proc.stdout)
    except ValueError:
        tail = " | ".join((proc.stderr or "").strip().splitlines()[-2:])[-300:]
        return [_failed(j, f"the test worker exited {proc.returncode}: {tail}", "worker") for j in jobs]
    if not resp.get("ok"):
        return [_failed(j, f"the test worker failed: {resp.get('error')}", "worker") for j in jobs]
    by_id = {str(r.get("id")): r for r in resp.get("jobs", [])}
    out = []
    for i, j in enumerate(jobs):
        r = by_id.get(str(i))
        out.append(_failed(j, "no answer from the test worker", "worker") if r is None else
                   Capture.from_json(dict(r, versions=resp.get("versions") or {})))
    return out


def capture_tests(tree: SourceTree, jobs: Sequence[TestJob], *, use_cache: bool = True) -> list[Capture]:
    """One :class:`Capture` per job, in order; uncached jobs run in one worker process."""
    keys = [job_key(tree, j) for j in jobs]
    found: dict[int, Capture] = {}
    for i, key in enumerate(keys):
        if not use_cache:
            continue
        if key in _memo:
            found[i] = _memo[key]
            continue
        path = _cache_dir() / f"{key}.json"
        if path.is_file():
            try:
                found[i] = _memo[key] = Capture.from_json(json.loads(path.read_text()))
            except (OSError, ValueError, KeyError):
                pass
    todo = [i for i in range(len(jobs)) if i not in found]
    if todo:
        for i, cap in zip(todo, _run_worker(tree, [jobs[i] for i in todo])):
            found[i] = cap
            if cap.category not in _NOT_CACHED:
                _memo[keys[i]] = cap
                store_cache(_cache_dir() / f"{keys[i]}.json", json.dumps(cap.to_json(), sort_keys=True))
    return [found[i] for i in range(len(jobs))]
