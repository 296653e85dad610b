"""``trace_model``: one worker subprocess per (vLLM tree, model config, serving options), cached.

Cache: ``$VKC_CACHE_DIR/modeltraces/<key>.json`` (the :func:`~vkc.modeltrace.records.trace_to_json`
form), key = sha256 of the tree (root, sdist sha256, version), the cut config JSON, the options, the
H100 profile, the vkc version and the source of every worker-side module (editing one invalidates).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from filelock import FileLock

import vkc
from vkc.atomic import store_cache
from vkc.errors import InvocationError
from vkc.records import ModelConfig, SourceTree

from .checklist import CHECKLIST_VERSION, check_features, check_tree
from .features import FEATURE_MODULES, LORA_MODULES, feature_groups, features_of, lora_rank_of, sampling_of
from .layers import LayerPlan, plan_layers
from .mixes import DEFAULT_MIX
from .recorded import RECORDED, RECORDED_USES
from .records import (
    ModelTrace,
    StepTrace,
    TraceOptions,
    event_from_worker,
    trace_from_json,
    trace_to_json,
)
from .spec import NUM_SPECULATIVE_TOKENS

__all__ = ["TIMEOUT_S", "cache_key", "module_source_hash", "trace_model"]

TIMEOUT_S = 900
_WORKER_MODULES = ("vkc.modeltrace.worker", "vkc.modeltrace.startup", "vkc.modeltrace.startup_steps",
                   "vkc.modeltrace.dummy_scalars",
                   "vkc.modeltrace.recorder", "vkc.modeltrace.hostcopy",
                   "vkc.modeltrace.opschema", "vkc.modeltrace.launches", "vkc.modeltrace.records",
                   "vkc.invoke.triton.traced.capture", "vkc.invoke.triton.traced.platform",
                   "vkc.modeltrace.release_stubs", "vkc.modeltrace.external",
                   "vkc.modeltrace.recording_packages", "vkc.modeltrace.gates")
_memo: dict[str, ModelTrace] = {}


def module_source_hash(module: str) -> str:
    """The first 16 hex digits of the sha256 of a module's source file ('-' when it has none)."""
    import importlib.util

    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return "-"
    if spec is None or not spec.origin or not os.path.exists(spec.origin):
        return "-"
    return hashlib.sha256(Path(spec.origin).read_bytes()).hexdigest()[:16]


def _worker_options(options: TraceOptions, plan: LayerPlan) -> dict[str, Any]:
    steps = options.steps
    max_batch = max(s.batch for s in steps)
    q = 1 + NUM_SPECULATIVE_TOKENS if "spec" in features_of(options) else 1   # decode tokens per sequence
    max_tokens = max(s.batch * (q if s.workload == "decode" else s.prompt_len) for s in steps)
    # sized at the requested block size or vLLM's default 16 (the worker allocates more if vLLM picks less)
    blocks = sum(s.batch * -(-max(s.ctx, s.prompt_len) // (options.block_size or 16)) for s in steps)
    out = {"tp": options.tp, "attention_backend": options.attention_backend,
           "kv_cache_dtype": options.kv_cache_dtype, "block_size": options.block_size,
           "max_model_len": None, "max_batch": max_batch, "max_tokens": max_tokens,
           "num_blocks": max(blocks, 16384) + 1}
    if options.quantization:            # absent without it: the plain trace's key stays
        out["quantization"] = options.quantization
    if options.kda_prefill_backend:     # --kda-prefill-backend (a variant's serving option)
        out["kda_prefill_backend"] = options.kda_prefill_backend
    if options.linear_backend:          # --linear-backend (a variant's serving option)
        out["linear_backend"] = options.linear_backend
    if options.dtype:                   # --dtype (a variant's serving option)
        out["dtype"] = options.dtype
    if options.recorded:                # absent without them: the plain trace's key stays
        out["recorded"] = list(options.recorded)
    if features_of(options):            # absent without features: the plain trace's key stays
        out["features"] = list(features_of(options))
    if sampling_of(options) != DEFAULT_MIX:     # absent for the default mix: its traces' keys stay
        out["sampling"] = sampling_of(options)
    if "spec" in features_of(options) and getattr(options, "speculative", "ngram") != "ngram":
        out["speculative"] = options.speculative  # type: ignore[attr-defined]
    if "spec" in features_of(options) and (draft := str(getattr(options, "draft_model", "") or "")):
        from vkc.modelcfg.fetch import fetch_config  # the drafter's config, cut as the target's is

        out["draft_config"] = plan_layers(dict(fetch_config(draft).config)).config
    if lora_rank_of(options):
        out["lora_rank"] = lora_rank_of(options)
    return out


def _steps_json(options: TraceOptions) -> list[dict[str, Any]]:
    return [{"id": s.id, "workload": s.workload, "batch": s.batch, "ctx": s.ctx, "prompt_len": s.prompt_len}
            for s in options.steps]


def cache_key(tree: SourceTree, config: Mapping[str, Any], options: TraceOptions) -> str:
    from vkc.invoke.common import H100_PROFILE

    plan = plan_layers(config)
    blob = {"tree": [str(tree.root), tree.sha256, tree.version], "config": plan.config,
            "options": _worker_options(options, plan), "steps": _steps_json(options), "profile": H100_PROFILE,
            "vkc": vkc.__version__, "checklist": CHECKLIST_VERSION,
            "src": {m: module_source_hash(m) for m in _worker_modules(options)}}
    if options.optional_steps:          # the parent's rule for a failed step (the worker runs the same)
        blob["optional_steps"] = sorted(options.optional_steps)
    return hashlib.sha256(json.dumps(blob, sort_keys=True, default=str).encode()).hexdigest()[:32]


def _worker_modules(options: TraceOptions) -> tuple[str, ...]:
    lora = LORA_MODULES if "lora" in features_of(options) else ()
    rec = ("vkc.modeltrace.recorded", *(m for r in options.recorded for m in (RECORDED[r][0], *RECORDED_USES.get(r, ())))
           ) if options.recorded else ()
    return _WORKER_MODULES + (FEATURE_MODULES if features_of(options) else ()) + lora + rec


def _cache_path(key: str) -> Path:
    from vkc.source import cache_dir

    return Path(cache_dir()) / "modeltraces" / f"{key}.json"


def _raw_config(model_cfg: ModelConfig) -> dict[str, Any]:
    from vkc.modelcfg.fetch import fetch_config

    return dict(fetch_config(model_cfg.model_id).config)


def trace_model(tree: SourceTree, model_cfg: ModelConfig, options: TraceOptions, *,
                raw_config: Mapping[str, Any] | None = None, use_cache: bool = True) -> ModelTrace:
    """Trace every step of ``options`` for ``model_cfg`` in one worker process (or read the cache)."""
    config = dict(raw_config) if raw_config is not None else _raw_config(model_cfg)
    key = cache_key(tree, config, options)
    if use_cache and key in _memo:
        return _memo[key]
    path = _cache_path(key)
    path.parent.mkdir(parents=True, exist_ok=True)
    # one tracer per key at a time: concurrent `collect --all` workers wait for the first one's result
    with FileLock(str(path) + ".lock"):
        cached = _read_cached(path, options) if use_cache else None
        if cached is not None:
            _memo[key] = cached
            return cached
        failed = path.with_suffix(".failed.json")
        if use_cache and failed.is_file():   # a failure is cached too (same key: a vkc fix retraces)
            try:
                err = json.loads(failed.read_text())
                raise InvocationError(str(err["message"]), hint=err.get("hint"))
            except (OSError, ValueError, KeyError, TypeError):
                pass
        plan = plan_layers(config)
        try:
            resp = _run_worker(tree, plan, options)
            trace = _to_trace(tree, model_cfg, options, plan, resp)
        except InvocationError as e:
            if "timed out" not in e.message:   # a timeout on a busy machine is worth retrying
                store_cache(failed, json.dumps({"message": e.message, "hint": e.hint}, sort_keys=True))
            raise
        _memo[key] = trace
        store_cache(path, json.dumps(trace_to_json(trace), sort_keys=True))
        return trace


def _read_cached(path: Path, options: TraceOptions) -> ModelTrace | None:
    if not path.is_file():
        return None
    try:
        trace = trace_from_json(json.loads(path.read_text()))
    except (OSError, ValueError, KeyError, TypeError):
        return None   # a damaged entry heals: traced again and replaced
    # the JSON form keeps the plain options; a featured trace gets its (equal-keyed) options back
    return dataclasses.replace(trace, options=options) if features_of(options) else trace


def _run_worker(tree: SourceTree, plan: LayerPlan, options: TraceOptions,
                skip_steps: tuple[str, ...] = ()) -> dict[str, Any]:
    """The worker's response; ``skip_steps`` (checklist ids) exists for the tests that pin what
    skipping a step silently changes."""
    from vkc.invoke.common import H100_PROFILE

    req = {"tree_root": str(tree.root), "profile": H100_PROFILE, "config": plan.config,
           "options": _worker_options(options, plan), "steps": _steps_json(options),
           "skip_steps": list(skip_steps)}
    env = dict(os.environ)
    env["CUDA_VISIBLE_DEVICES"] = ""
    env.pop("TRITON_INTERPRET", None)
    env["VLLM_LOGGING_LEVEL"] = "INFO"          # vLLM's "Using ... backend" lines are INFO
    env["PYTHONPATH"] = os.pathsep.join(
        [str(Path(vkc.__file__).resolve().parent.parent)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    try:
        module = ("vkc.modeltrace.lora_worker" if "lora" in features_of(options)
                  else "vkc.modeltrace.serving_worker" if features_of(options) else "vkc.modeltrace.worker")
        proc = subprocess.run([sys.executable, "-m", module], input=json.dumps(req), check=False,
                              capture_output=True, text=True, env=env, timeout=TIMEOUT_S, cwd=str(tree.root))
    except subprocess.TimeoutExpired as e:
        raise InvocationError(f"model trace timed out after {TIMEOUT_S}s", hint="rerun; the vLLM import is slow on a busy machine") from e
    try:
        resp = json.loads(proc.stdout)
    except ValueError:
        tail = " | ".join((proc.stderr or "").strip().splitlines()[-3:])
        raise InvocationError(f"model trace worker exited {proc.returncode} without a result: {tail[-400:]}",
                              hint="rerun with --debug; the worker's stderr has vLLM's log") from None
    if not resp.get("ok") and not _optional_failures(resp, options):
        if os.environ.get("VKC_DEBUG", "") not in ("", "0"):
            tb = resp.get("traceback") or "".join(s.get("traceback") or "" for s in resp.get("steps", []))
            log = "\n".join((proc.stderr or "").splitlines()[-60:])
            sys.stderr.write(f"model trace worker log (tail):\n{log}\nmodel trace worker traceback:\n{tb}\n")
        err = str(resp.get("error") or "unknown error").splitlines()[0][:400]
        where = _where(resp.get("traceback") or next((s.get("traceback") for s in resp.get("steps", [])
                                                      if s.get("traceback")), "") or "")
        raise InvocationError(f"model trace failed: {err}{where}",
                              hint="this model/option combination does not run under the CPU trace yet")
    return resp


def _optional_failures(resp: dict[str, Any], options: TraceOptions) -> dict[str, str]:
    """``{step id: error}`` when start-up and every step outside ``options.optional_steps`` ran and only
    optional steps failed (the trace stands without them); else ``{}`` (the trace fails)."""
    steps = resp.get("steps") or []
    if resp.get("traceback") or len(steps) != len(options.steps):    # start-up failed: no step ran
        return {}
    failed = {str(s["id"]): f"{str(s.get('error')).splitlines()[0][:300]}{_where(s.get('traceback') or '')}"
              for s in steps if not s.get("ok")}
    if not failed or set(failed) - set(options.optional_steps) or len(failed) == len(steps):
        return {}
    return failed


def _where(tb: str) -> str:
    """The innermost frame in vLLM's own code (else the innermost frame) of a worker traceback."""
    lines = [ln.strip() for ln in tb.splitlines() if ln.strip().startswith("File ")]
    own = [ln for ln in lines if "/vllm/" in ln and "site-packages" not in ln]
    pick = (own or lines)[-1:]
    return f" (at {pick[0].split(', in ')[0].removeprefix('File ')})" if pick else ""


def _to_trace(tree: SourceTree, model_cfg: ModelConfig, options: TraceOptions, plan: LayerPlan,
              resp: dict[str, Any]) -> ModelTrace:
    status, fp_warn, fps = check_tree(tree.root, tree.version)
    warnings = list(fp_warn) + list(resp.get("warnings", []))
    if resp.get("stand_ins"):
        warnings.append(f"not installed, imported as stand-ins (no kernel of theirs runs): {', '.join(resp['stand_ins'])}")
    if resp.get("recording_packages"):
        warnings.append("not installed, recording stand-ins (every call an external event): "
                        + ", ".join(resp["recording_packages"]))
    for mod, left in sorted((resp.get("gated_imports") or {}).items()):
        warnings.append(f"CuTe DSL not installed: {mod} imported partially (its gate decides as vLLM's code; "
                        f"{len(left)} top-level statements that need the DSL left out)")
    if resp.get("guessed_outputs"):
        warnings.append(f"op results guessed (no fake in the tree): {', '.join(resp['guessed_outputs'])}")
    notes: dict[str, Any] = {}
    if failed_steps := _optional_failures(resp, options):
        notes["failed_steps"] = failed_steps
        warnings += [f"step {sid} not traced (the trace has no such step; model-traced examples that need it fall "
                     f"back): {why}" for sid, why in sorted(failed_steps.items())]
    if features_of(options):
        status, feat_warn, feat_fps = check_features(tree.root, tree.version, feature_groups(options), status)
        warnings += feat_warn
        fps = {**fps, **feat_fps}
        notes["features"] = _features_note(options, resp)
        warnings += [f"serving features {', '.join(features_of(options))} not traced in step {sid}: {d['error']}"
                     for sid, d in sorted(notes["features"]["steps"].items()) if d.get("error")]
        failed = [f"{sid}: {d['error']}" for sid, d in sorted(notes["features"]["steps"].items()) if d.get("error")]
        if failed and sampling_of(options) != DEFAULT_MIX:     # the mix is what such a trace is for
            raise InvocationError(f"sampling mix {sampling_of(options)!r} not traced: {failed[0]}",
                                  hint="rerun with --debug; vkc.modeltrace.mix_worker mirrors the runner's steps")
    host = {str(s["id"]): s["host_contents"] for s in resp["steps"] if s.get("ok") and s.get("host_contents")}
    if host:                            # what vLLM's host code copied into device buffers, per step
        notes["host_contents"] = host
    steps = tuple(StepTrace(spec, int(s["num_tokens"]), tuple(event_from_worker(e) for e in s["events"]),
                            float(s["forward_s"]))
                  for spec, s in zip(options.steps, resp["steps"]) if s.get("ok"))
    return ModelTrace(
        model_id=model_cfg.model_id, vllm_version=tree.version, tree_sha256=tree.sha256, options=options,
        full_layers=plan.full_layers, traced_layers=plan.traced, layer_types=plan.types,
        layer_weights=dict(plan.weights), steps=steps, backends=tuple(resp.get("backends", [])),
        importable=dict(resp.get("importable", {})), warnings=tuple(warnings), fingerprint_status=status,
        fingerprints=dict(fps), vllm_config=dict(resp.get("vllm_config", {})), versions=dict(resp.get("versions", {})),
        timings=dict(resp.get("timings", {})),
        notes={"fake_mismatches": resp.get("fake_mismatches", []), "reentered_vllm_ops": resp.get("reentered_vllm_ops", []),
               "schemas": resp.get("schemas", {}), "attention_layers": resp.get("attention_layers", {}),
               "external_stand_ins": resp.get("external_stand_ins", []), "stand_ins": resp.get("stand_ins", []),
               **({"dummy_scalars": resp["dummy_scalars"]} if resp.get("dummy_scalars", {}).get("answered") else {}),
               **({"weight_launches": resp["weight_launches"]} if resp.get("weight_launches") else {}),
               **({"block_size": resp["block_size"]} if resp.get("block_size") else {}),
               **({"gated_imports": resp["gated_imports"]} if resp.get("gated_imports") else {}),
               **notes})


def _features_note(options: TraceOptions, resp: dict[str, Any]) -> dict[str, Any]:
    """``notes["features"]``: what was traced, the sampling mix, vLLM's choices and the time per step."""
    from .features import SAMPLER_NOTE, SPEC_DRAFT_NOTE, SPEC_NOTE, lora_note
    from .mixes import mix_notes

    feats = features_of(options)
    out: dict[str, Any] = {"traced": list(feats), "steps": {
        s["id"]: {"features_s": s.get("features_s"),
                  **{k: v for k, v in (s.get("features") or {}).items() if k != "traceback"}}
        for s in resp["steps"]}}
    out["sampling_params"] = mix_notes(sampling_of(options))   # every request's (default) or per kind, request i: kind i % n
    if sampling_of(options) != DEFAULT_MIX:
        out["sampling_mix"] = sampling_of(options)
    if "sampler" in feats or "spec" in feats:
        out["sampler_note"] = SAMPLER_NOTE
    if "spec" in feats:
        from .spec import SPEC_CONFIGS

        spec = str(getattr(options, "speculative", "ngram"))
        out["spec_note"] = SPEC_DRAFT_NOTE.get(spec, SPEC_NOTE)
        out["speculative_config"] = dict(SPEC_CONFIGS[spec])
    if "watermark" in feats:
        from .watermark import WATERMARK_CONFIG

        out["watermark_config"] = {k: v for k, v in WATERMARK_CONFIG.items() if k != "key"}   # the key stays out
    if lora_rank_of(options):
        out["lora_rank"] = lora_rank_of(options)
        out["lora_note"] = lora_note(lora_rank_of(options))
    return out
