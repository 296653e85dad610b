"""``vkc collect --all --resume``: skip the artifacts already written for the same inputs.

Every ``--all`` run keeps a journal, ``<out>/.vkc-collect-journal.jsonl``: one JSON line per
artifact written, appended as it is written (so a killed run leaves what it finished), and
rewritten sorted by key when the run ends (so an interrupted-and-resumed folder ends
byte-identical to an uninterrupted one)::

    {"key": <sha256>, "path": <artifact path relative to out>, "sha256": <of the file>, "model": <id>}

The key is the sha256 of everything the artifact depends on: vkc's version and the digest
of its own source files, the index cache key of the tree (vLLM sdist hash, or a
fingerprint of a local tree's files), the job (name, qualified name, model, workload,
folder, regenerating command) and the normalised config of the model(s) it is sized for.
``--resume`` skips a job whose key is in the journal and whose file is still there with the
recorded sha256 (``VKC_CODE_DIGEST`` pins vkc's digest, for tests); anything else (a changed vkc, tree or config, a missing or edited file)
is collected again.  Without ``--resume`` the journal starts empty.
"""
from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import vkc
from vkc.atomic import replace_file
from vkc.batch.plan import Job

__all__ = ["JOURNAL", "Journal", "code_digest", "job_key"]

JOURNAL = ".vkc-collect-journal.jsonl"
# the collect record's fields a journal entry keeps, so a resumed run's results file says them too
RECORD_FACTS = ("invocation_mode", "invocation_source", "model_accurate", "reference_source", "workload")
_CODE_SUFFIXES = (".py", ".j2", ".json", ".scm", ".h", ".cuh", ".cu")
_DIGEST: str | None = None


def code_digest() -> str:
    """sha256 of vkc's own source files (a changed vkc redoes every artifact)."""
    global _DIGEST
    if os.environ.get("VKC_CODE_DIGEST"):   # pinned (tests in a checkout others are editing)
        return os.environ["VKC_CODE_DIGEST"]
    if _DIGEST is None:
        h = hashlib.sha256(vkc.__version__.encode() + b"\0")
        pkg = Path(vkc.__file__).parent
        for p in sorted(pkg.rglob("*")):
            if p.is_file() and p.suffix in _CODE_SUFFIXES and "__pycache__" not in p.parts:
                h.update(p.relative_to(pkg).as_posix().encode() + b"\0" + p.read_bytes() + b"\0")
        _DIGEST = h.hexdigest()
    return _DIGEST


def model_digest(models: Iterable[str]) -> str:
    """sha256 of the normalised configs (without warnings) of ``models``."""
    from vkc.modelcfg import load_model_cached, model_to_json

    h = hashlib.sha256()
    for m in models:
        cfg = model_to_json(load_model_cached(m))
        cfg.pop("warnings", None)
        h.update(json.dumps(cfg, sort_keys=True, default=str).encode() + b"\n")
    return h.hexdigest()


def job_key(job: Job, tree_key: str, models_key: str) -> str:
    parts = [code_digest(), tree_key, models_key, job.name, job.qualified, job.lang, job.model or "",
             job.workload or "", job.out_dir, job.command]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def _file_sha(path: str) -> str | None:
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return None


class Journal:
    """The journal of one output folder."""

    def __init__(self, out_dir: str, *, resume: bool) -> None:
        self.out_dir = out_dir
        self.path = os.path.join(out_dir, JOURNAL)
        self.old: dict[str, dict[str, Any]] = self._read() if resume else {}
        self.done: dict[str, dict[str, Any]] = {}
        if not resume:
            replace_file(self.path, "")

    def _read(self) -> dict[str, dict[str, Any]]:
        entries: dict[str, dict[str, Any]] = {}
        try:
            text = Path(self.path).read_text(encoding="utf-8", errors="replace")
        except OSError:
            return entries
        for line in text.splitlines():
            try:
                e = json.loads(line)
            except ValueError:
                continue            # a line cut short by a kill
            if isinstance(e, dict) and all(isinstance(e.get(k), str) for k in ("key", "path", "sha256")):
                entries[e["key"]] = e
        return entries

    def skip(self, key: str) -> dict[str, Any] | None:
        """The journal entry when the job's artifact is already there, unchanged; else None."""
        e = self.old.get(key)
        if e is None or os.path.isabs(e["path"]) or ".." in Path(e["path"]).parts:
            return None
        path = os.path.join(self.out_dir, e["path"])
        if _file_sha(path) != e["sha256"]:
            return None
        self.done[key] = e
        return {**e, "path": path.replace(os.sep, "/")}

    def add(self, key: str, path: str, model: str | None, facts: dict[str, Any] | None = None) -> None:
        """Record an artifact just written (appended at once: a kill keeps it); ``facts``: the collect
        record's fields a resumed run reports again (invocation mode and source, reference)."""
        sha = _file_sha(path)
        if sha is None:
            return
        rel = os.path.relpath(path, self.out_dir).replace(os.sep, "/")
        e = {"key": key, "path": rel, "sha256": sha, "model": model,
             **{k: v for k, v in sorted((facts or {}).items()) if k in RECORD_FACTS}}
        self.done[key] = e
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(e, sort_keys=True) + "\n")

    def finish(self) -> None:
        """Rewrite the journal sorted by key (the same folder however the run got there)."""
        replace_file(self.path, "".join(json.dumps(self.done[k], sort_keys=True) + "\n" for k in sorted(self.done)))
