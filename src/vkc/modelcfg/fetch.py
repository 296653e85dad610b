"""Find a model's raw config.json: a local file, the hub (through HF's cache), or a snapshot.

Environment is read at call time (huggingface_hub reads it once, at import): ``HF_ENDPOINT``,
``HF_HUB_OFFLINE`` / ``TRANSFORMERS_OFFLINE``, ``HF_HUB_CACHE`` / ``HUGGINGFACE_HUB_CACHE`` /
``HF_HOME`` / ``XDG_CACHE_HOME`` and ``HF_HUB_ETAG_TIMEOUT`` (default here: 3 s).

Online, one quick HEAD probe (no retries) runs first: ``hf_hub_download`` alone would retry
a failed lookup for tens of seconds before giving up.  Any hub failure falls back to the HF
cache, then to the bundled snapshot (with a warning), else raises ModelError.
"""
from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vkc.errors import ModelError

from .snapshots import bundled_ids, load_snapshot

DEFAULT_ENDPOINT = "https://huggingface.co"
DEFAULT_TIMEOUT_S = 3.0
DEFAULT_TRIES = 3
BACKOFF_S = 0.25
FILENAME = "config.json"
_REPO_ID = re.compile(r"(?:[A-Za-z0-9_][A-Za-z0-9_.-]{0,95}/)?[A-Za-z0-9_][A-Za-z0-9_.-]{0,95}")
_COMMIT = re.compile(r"^[0-9a-f]{40}$")


@dataclass(frozen=True)
class RawConfig:
    model_id: str
    config: dict[str, Any]
    origin: str                    # "hub" | "snapshot" | "file"
    sources: tuple[str, ...]
    warnings: tuple[str, ...] = ()


def canonical_url(repo_id: str) -> str:
    return f"{DEFAULT_ENDPOINT}/{repo_id}/blob/main/{FILENAME}"


def fetch_config(model: str, *, endpoint: str | None = None, offline: bool | None = None) -> RawConfig:
    """Resolve MODEL (hub id or config.json path) to its raw config dict."""
    if not model or not model.strip():
        raise ModelError("empty model name", hint="pass ORG/NAME or a path to a config.json")
    path = _as_path(model)
    if path is not None:
        return RawConfig(model, _parse(_read(path, model), model), "file", (str(path.resolve()),))
    from .variants import fetch_variant, is_variant  # MODEL@OPTIONS, defaults:ARCH (vkc.modelcfg.variants)

    if is_variant(model):
        return fetch_variant(model, lambda base: fetch_config(base, endpoint=endpoint, offline=offline), RawConfig)
    if not _REPO_ID.fullmatch(model) or "--" in model or ".." in model:
        raise ModelError(f"not a Hugging Face model id or config file: {_shown(model)}",
                         hint="pass ORG/NAME (e.g. meta-llama/Llama-3.1-8B-Instruct) or a path to a config.json")
    endpoint = (endpoint or os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")
    if offline is None:
        offline = env_offline()
    return _from_hub(model, endpoint, offline, hub_cache_dir())


# -- environment ---------------------------------------------------------------------------
def env_offline() -> bool:
    value = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or ""
    return value.strip().upper() in {"1", "ON", "YES", "TRUE"}


def hub_cache_dir() -> str:
    """HF's hub cache folder, resolved from the environment as huggingface_hub does."""
    home = os.environ.get("HF_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache"), "huggingface")
    cache = os.environ.get("HF_HUB_CACHE") or os.environ.get("HUGGINGFACE_HUB_CACHE") \
        or os.path.join(os.path.expanduser(os.path.expandvars(home)), "hub")
    return os.path.expanduser(os.path.expandvars(cache))


def _timeout() -> float:
    try:
        return float(os.environ.get("HF_HUB_ETAG_TIMEOUT") or DEFAULT_TIMEOUT_S)
    except ValueError:
        return DEFAULT_TIMEOUT_S


# -- local files -------------------------------------------------------------------------
def _as_path(model: str) -> Path | None:
    """A local config path for MODEL, None for a hub id; raises for a missing path."""
    if "\0" in model or any(len(part.encode()) > 255 for part in re.split(r"[/\\]", model)):
        return None             # no such file can exist: checked as a hub id (and refused there)
    try:
        path = Path(model).expanduser()
        if path.is_file():
            return path
    except (OSError, RuntimeError):      # e.g. a path too long, ~user that does not exist
        return None
    if path.is_dir() and (path / FILENAME).is_file():
        return path / FILENAME
    if model.endswith(".json") or model.startswith((".", "/", "~")) or "\\" in model or path.is_dir():
        raise ModelError(f"config file not found: {model}",
                         hint="pass an existing config.json path (or a folder holding one) or a hub id ORG/NAME")
    return None


def _read(path: Path, model: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelError(f"cannot read config.json for {model}: {exc}",
                         hint="check the file is a readable UTF-8 JSON file") from None


def _parse(text: str, model: str) -> dict[str, Any]:
    try:
        data = json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise ModelError(f"malformed config.json for {_shown(model)}: {exc.msg} at line {exc.lineno} column "
                         f"{exc.colno}", hint="the file must be valid JSON (a Hugging Face config.json)") from None
    except (ValueError, RecursionError) as exc:   # NaN/Infinity, a 5000-digit number, nesting too deep
        why = "nested too deeply" if isinstance(exc, RecursionError) else str(exc).splitlines()[0][:120]
        raise ModelError(f"malformed config.json for {_shown(model)}: {why}",
                         hint="the file must be valid, finite JSON (a Hugging Face config.json)") from None
    if not isinstance(data, dict):
        raise ModelError(f"config.json for {model} is not a JSON object (got {type(data).__name__})",
                         hint="a Hugging Face config.json is one JSON object of model hyper-parameters")
    return data


def _no_constant(name: str) -> Any:
    raise ValueError(f"non-finite number {name} (JSON has no NaN/Infinity)")


def _shown(text: str, limit: int = 120) -> str:
    """``text`` for a one-line message: repr (control characters escaped), long ones cut."""
    r = repr(text)
    return r if len(r) <= limit else r[:limit] + f"... ({len(text)} characters)"


# -- hub, cache, snapshot ---------------------------------------------------------------
def _from_hub(repo_id: str, endpoint: str, offline: bool, cache_dir: str) -> RawConfig:
    if offline:
        cached = _cached(repo_id, endpoint, cache_dir)
        if cached is not None:
            return _hub_result(repo_id, endpoint, cached, ())
        return _snapshot_or_fail(repo_id, "offline", "offline and config.json is not in the HF cache",
                                 "go online (unset HF_HUB_OFFLINE / drop --offline) or pass a config.json path")
    try:
        path, tries = _download_retrying(repo_id, endpoint, cache_dir)
    except _Failed as failed:
        exc, tries = failed.exc, failed.tries
        reason, hint = _describe(exc, repo_id, endpoint)
        reason += f" ({tries} tries)" if tries > 1 else ""
        cached = _cached(repo_id, endpoint, cache_dir)
        if cached is not None:
            return _hub_result(repo_id, endpoint, cached, (f"{reason}; using the HF cache copy of config.json",))
        return _snapshot_or_fail(repo_id, reason, reason, hint)
    retried = (f"the hub answered on try {tries} of {_tries()}; using the hub's config.json",) if tries > 1 else ()
    return _hub_result(repo_id, endpoint, path, retried)


class _Failed(Exception):
    def __init__(self, exc: Exception, tries: int) -> None:
        super().__init__(str(exc))
        self.exc, self.tries = exc, tries


def _tries() -> int:
    try:
        return max(1, min(10, int(os.environ.get("VKC_HUB_TRIES") or DEFAULT_TRIES)))
    except ValueError:
        return DEFAULT_TRIES


def _transient(exc: Exception) -> bool:
    """A failure worth retrying: no answer, a timeout, HTTP 408/429/5xx (not 'not found', gated, offline)."""
    status = getattr(getattr(exc, "response", None), "status_code", None)
    if status is not None:
        return status in (408, 429) or status >= 500
    name = type(exc).__name__
    return not any(word in name for word in ("NotFound", "Gated", "Offline", "Revision"))


def _download_retrying(repo_id: str, endpoint: str, cache_dir: str) -> tuple[str, int]:
    """``_download`` up to ``VKC_HUB_TRIES`` (default 3) times with a short exponential backoff
    (0.25 s, 0.5 s, ...) for transient failures; (path, tries used) or _Failed."""
    tries = _tries()
    for attempt in range(1, tries + 1):
        try:
            return _download(repo_id, endpoint, cache_dir), attempt
        except Exception as exc:  # noqa: BLE001 - every failure of the hub client: classified by the caller
            if attempt == tries or not _transient(exc):
                raise _Failed(exc, attempt) from None
            time.sleep(BACKOFF_S * 2 ** (attempt - 1))
    raise AssertionError("unreachable")


def _download(repo_id: str, endpoint: str, cache_dir: str) -> str:
    from huggingface_hub import get_hf_file_metadata, hf_hub_download, hf_hub_url

    timeout = _timeout()
    # Fast probe without retries; errors propagate (hf_hub_download would retry them slowly).
    get_hf_file_metadata(hf_hub_url(repo_id, FILENAME, endpoint=endpoint), timeout=timeout)
    return hf_hub_download(repo_id, FILENAME, endpoint=endpoint, cache_dir=cache_dir, etag_timeout=timeout)


def _cached(repo_id: str, endpoint: str, cache_dir: str) -> str | None:
    from huggingface_hub import hf_hub_download

    try:
        return hf_hub_download(repo_id, FILENAME, endpoint=endpoint, cache_dir=cache_dir, local_files_only=True)
    except Exception:  # noqa: BLE001 - not cached (LocalEntryNotFoundError) or unusable cache
        return None


def _hub_result(repo_id: str, endpoint: str, path: str, warnings: tuple[str, ...]) -> RawConfig:
    commit = Path(path).parent.name
    revision = commit if _COMMIT.match(commit) else "main"
    resolve = f"{endpoint}/{repo_id}/resolve/{revision}/{FILENAME}"
    config = _parse(_read(Path(path), repo_id), repo_id)
    return RawConfig(repo_id, config, "hub", (canonical_url(repo_id), resolve), warnings)


def _snapshot_or_fail(repo_id: str, why: str, reason: str, hint: str) -> RawConfig:
    snap = load_snapshot(repo_id)
    if snap is None:
        raise ModelError(f"no config.json for {repo_id}: {reason}, and vkc bundles no snapshot of it",
                         hint=f"{hint}; bundled models: {', '.join(bundled_ids())}")
    warnings = [(f"using vkc's bundled snapshot of {snap.model_id}'s config.json ({why}); "
                 f"it may differ from the current hub file")]
    if not snap.exact:
        warnings.append(f"the bundled snapshot is not a verified exact copy ({snap.confidence})")
    sources = (snap.canonical_url, f"vkc bundled snapshot {snap.file}")
    return RawConfig(snap.model_id, snap.config, "snapshot", sources, tuple(warnings))


def _describe(exc: Exception, repo_id: str, endpoint: str) -> tuple[str, str]:
    """(one-line reason, hint) for a failed hub look-up."""
    from huggingface_hub import errors as hf_errors

    def cls(name: str) -> type:
        return getattr(hf_errors, name, None) or type(f"_Missing{name}", (Exception,), {})

    status = getattr(getattr(exc, "response", None), "status_code", None)
    if isinstance(exc, cls("GatedRepoError")) or status == 401:
        return (f"{repo_id} is gated or private on {endpoint} (HTTP {status})",
                "accept the model's licence on the hub and set HF_TOKEN, or pass a local config.json path")
    if isinstance(exc, cls("RepositoryNotFoundError")):
        return (f"model {repo_id} not found on {endpoint}",
                "check the model id (ORG/NAME, as on huggingface.co)")
    if isinstance(exc, cls("RevisionNotFoundError")):
        return f"{repo_id} has no 'main' revision on {endpoint}", "check the model id"
    if isinstance(exc, (cls("RemoteEntryNotFoundError"), cls("EntryNotFoundError"))):
        return (f"{repo_id} has no {FILENAME} on {endpoint}",
                "the repo is not a transformers model; pass a local config.json path")
    if isinstance(exc, cls("OfflineModeIsEnabled")):
        return "offline (HF_HUB_OFFLINE was set when huggingface_hub was imported)", "unset HF_HUB_OFFLINE"
    if status is not None:
        return f"hub {endpoint} answered HTTP {status}", "retry later, or use --offline"
    detail = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
    return (f"hub {endpoint} unreachable ({detail})",
            "check the network / HF_ENDPOINT, or use --offline with a cached or bundled model")
