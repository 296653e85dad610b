"""How the features are asked for, and what they leave alone (no vLLM run)."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from vkc.errors import UsageError
from vkc.modeltrace import trace as tr
from vkc.modeltrace.cli_hooks import add_model_kernels_args, options_from_args
from vkc.modeltrace.features import FEATURE_MODULES, FeatureOptions, features_of, parse_features, with_features
from vkc.modeltrace.layers import plan_layers
from vkc.modeltrace.records import StepSpec, TraceOptions
from vkc.records import SourceTree

PLAIN = TraceOptions((StepSpec("decode", 64, ctx=4096), StepSpec("prefill", 4, prompt_len=2048)))
CONFIG = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "num_hidden_layers": 4,
          "hidden_size": 64, "intermediate_size": 128, "num_attention_heads": 4, "num_key_value_heads": 2,
          "vocab_size": 1000}
TREE = SourceTree(root=Path("/nonexistent/vllm"), version="0.33.0", origin="test", sha256="0" * 64)


def _args(*argv):
    p = argparse.ArgumentParser()
    add_model_kernels_args(p.add_subparsers()).prog = "vkc model kernels"
    return p.parse_args(["kernels", "M", *argv])


def test_parse_features():
    assert parse_features(["sampler", "sampler,"]) == ("sampler",)
    assert parse_features([]) == ()
    with pytest.raises(UsageError, match="unknown serving feature"):
        parse_features(["sampler,beam"])


def test_with_features_keeps_the_options():
    f = with_features(PLAIN, ["sampler"])
    assert isinstance(f, FeatureOptions) and isinstance(f, TraceOptions)
    assert f.features == ("sampler",) and f.steps == PLAIN.steps and f.attention_backend == PLAIN.attention_backend
    assert with_features(PLAIN, []) == PLAIN and type(with_features(PLAIN, [])) is TraceOptions
    assert features_of(PLAIN) == ()


@pytest.mark.parametrize("argv", [["--sampler"], ["--features", "sampler"], ["--features", "sampler", "--sampler"]])
def test_cli_flags(argv):
    opts, spec = options_from_args(_args(*argv))
    assert features_of(opts) == ("sampler",) and spec == StepSpec("decode", 64, ctx=4096)


def test_cli_without_flags_is_the_plain_options():
    opts, _spec = options_from_args(_args())
    assert type(opts) is TraceOptions


def test_unknown_feature_is_a_usage_error(capsys):
    from vkc.cli import main

    assert main(["model", "kernels", "meta-llama/Llama-3.1-8B-Instruct", "--features", "beam"]) == 2
    assert "unknown serving feature(s): beam" in capsys.readouterr().err


def test_plain_request_and_key_are_unchanged():
    """Without features: no "features" entry in the worker request, the plain worker modules in
    the key -- the cache keys of existing traces stay valid."""
    plan = plan_layers(CONFIG)
    assert "features" not in tr._worker_options(PLAIN, plan)
    assert tr._worker_modules(PLAIN) == tr._WORKER_MODULES
    assert not set(FEATURE_MODULES) & set(tr._WORKER_MODULES)
    feat = with_features(PLAIN, ["sampler"])
    assert tr._worker_options(feat, plan)["features"] == ["sampler"]
    assert tr._worker_modules(feat) == tr._WORKER_MODULES + FEATURE_MODULES
    k_plain, k_feat = tr.cache_key(TREE, CONFIG, PLAIN), tr.cache_key(TREE, CONFIG, feat)
    assert k_plain != k_feat and k_plain == tr.cache_key(TREE, CONFIG, with_features(PLAIN, []))


def test_plain_key_blob_is_the_old_one(monkeypatch):
    """The key's blob without features, rebuilt here the way it was before features existed (block_size
    None since vLLM's start-up picks it: checklist step block-size)."""
    import hashlib

    import vkc
    from vkc.invoke.common import H100_PROFILE
    from vkc.modeltrace.checklist import CHECKLIST_VERSION

    plan = plan_layers(CONFIG)
    old_options = {"tp": 1, "attention_backend": "TRITON_ATTN", "kv_cache_dtype": "auto", "block_size": None,
                   "max_model_len": None, "max_batch": 64, "max_tokens": 8192,
                   "num_blocks": max(64 * 256 + 4 * 128, 16384) + 1}
    blob = {"tree": [str(TREE.root), TREE.sha256, TREE.version], "config": plan.config, "options": old_options,
            "steps": [{"id": s.id, "workload": s.workload, "batch": s.batch, "ctx": s.ctx, "prompt_len": s.prompt_len}
                      for s in PLAIN.steps], "profile": H100_PROFILE, "vkc": vkc.__version__,
            "checklist": CHECKLIST_VERSION, "src": {m: tr.module_source_hash(m) for m in tr._WORKER_MODULES}}
    old = hashlib.sha256(json.dumps(blob, sort_keys=True, default=str).encode()).hexdigest()[:32]
    assert tr.cache_key(TREE, CONFIG, PLAIN) == old


def test_the_featured_worker_is_another_module(monkeypatch):
    seen = {}

    class Proc:
        returncode, stderr = 0, ""
        stdout = json.dumps({"ok": True, "steps": []})

    def run(cmd, **kw):
        seen["cmd"], seen["req"] = cmd, json.loads(kw["input"])
        return Proc()

    monkeypatch.setattr(tr.subprocess, "run", run)
    plan = plan_layers(CONFIG)
    tr._run_worker(TREE, plan, PLAIN)
    assert seen["cmd"][-1] == "vkc.modeltrace.worker" and "features" not in seen["req"]["options"]
    tr._run_worker(TREE, plan, with_features(PLAIN, ["sampler"]))
    assert seen["cmd"][-1] == "vkc.modeltrace.serving_worker" and seen["req"]["options"]["features"] == ["sampler"]


def test_a_step_whose_features_failed_is_a_warning():
    from vkc.records import ModelConfig  # noqa: F401 -- the trace's model record

    class Cfg:
        model_id = "m"

    resp = {"ok": True, "steps": [
        {"id": s.id, "num_tokens": 1, "events": [], "forward_s": 0.0, "features_s": 0.1,
         "features": {"error": "RuntimeError: vLLM changed", "traceback": "Traceback ..."}} for s in PLAIN.steps]}
    feat = with_features(PLAIN, ["sampler"])
    t = tr._to_trace(TREE, Cfg(), feat, plan_layers(CONFIG), resp)
    assert features_of(t) == ("sampler",) and t.options == feat
    warned = [w for w in t.warnings if "not traced in step" in w]
    assert len(warned) == 2 and "RuntimeError: vLLM changed" in warned[0]
    assert "traceback" not in t.notes["features"]["steps"][PLAIN.steps[0].id]
