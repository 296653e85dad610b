"""The worker-side steps the variant sources needed (no vLLM run): overload schemas, meta placements,
the new checklist steps, per-layer MoE lists in the layer plan."""
from __future__ import annotations

import pytest
import torch

from vkc.modeltrace.checklist import STEPS, check_tree, fingerprints, known_fingerprints
from vkc.modeltrace.layers import plan_layers
from vkc.modeltrace.opschema import register_schemas
from vkc.modeltrace.startup_steps import flash_attn_versions, meta_placements

BINDINGS = """
TORCH_LIBRARY_FRAGMENT(vkc_src_test, ops) {
  ops.def("quant(Tensor input, Tensor scale) -> (Tensor, Tensor)");
  ops.def("quant.out(Tensor input, Tensor scale, *, Tensor(a!) output, Tensor(b!) output_scale) -> ()");
}
"""


def test_an_out_overload_is_registered_after_its_base(tmp_path):
    (tmp_path / "csrc").mkdir()
    (tmp_path / "csrc" / "torch_bindings.cpp").write_text(BINDINGS)
    counts = register_schemas(tmp_path, lambda q: None)
    assert counts["defined"] == 2
    assert set(torch.ops.vkc_src_test.quant.overloads()) == {"default", "out"}   # the .out was skipped before
    assert register_schemas(tmp_path, lambda q: None)["skipped"] == 2           # both defined already


def test_cuda_placements_go_to_meta_and_others_stay():
    with meta_placements():
        assert torch.empty(3, device="cuda").device.type == "meta"
        assert torch.zeros(2, device=torch.device("cuda", 0)).device.type == "meta"
        assert torch.ones(2).to("cuda").device.type == "meta"
        assert torch.ones(2, device="cpu").device.type == "cpu"
        assert torch.ones(2).to(torch.float16).dtype == torch.float16
        t = torch.ones(1)
        assert t.cuda() is t
    if not torch.cuda.is_available():
        try:
            torch.empty(1, device="cuda")
        except (AssertionError, RuntimeError):
            pass
        else:
            raise AssertionError("the mode outlived its block")


def test_new_checklist_steps_are_fingerprinted_for_0_33(vllm_tree):
    new = tuple(s for s in STEPS if s.id in ("meta-placements", "mamba-ssu", "fa-versions"))
    assert len(new) == 3
    fps = fingerprints(vllm_tree.root, new)
    assert all(fps.values()) and fps == {k: known_fingerprints()["0.33.0"][k] for k in fps}
    assert check_tree(vllm_tree.root, vllm_tree.version)[0] == "known"


def test_a_per_layer_moe_list_decides_the_mlp_type():
    cfg = {"num_hidden_layers": 4, "num_attention_heads": 8, "hidden_size": 64, "num_experts": 8,
           "moe_layer_freq": [0, 0, 1, 1]}
    plan = plan_layers(cfg)
    assert plan.types == ("attn/dense", "attn/dense", "attn/moe", "attn/moe")
    assert plan.traced == 3 and plan.config["moe_layer_freq"] == [0, 0, 1]


def test_flash_attn_stand_in_answers_as_an_sm90_build(monkeypatch):
    import sys
    import types

    fa = types.ModuleType("vllm.vllm_flash_attn")
    fa.is_fa_version_supported = lambda *a, **k: False        # the stub's answer without the step
    iface = types.ModuleType("vllm.vllm_flash_attn.flash_attn_interface")
    monkeypatch.setitem(sys.modules, "vllm.vllm_flash_attn", fa)
    monkeypatch.setitem(sys.modules, "vllm.vllm_flash_attn.flash_attn_interface", iface)
    flash_attn_versions()
    for m in (fa, iface):
        assert [v for v in (2, 3, 4) if m.is_fa_version_supported(v)] == [2, 3]
        assert m.fa_version_unsupported_reason(3) is None and "SM 9.0" in m.fa_version_unsupported_reason(4)


def test_reshape_and_cache_flash_takes_the_nvfp4_kernel_only_for_nvfp4_caches():
    from vkc.invoke.cuda.modeltraced.dispatch import call_launches
    from vkc.modeltrace.records import ScalarArg, TracedEvent

    def call(dtype: str) -> TracedEvent:
        return TracedEvent(index=0, kind="op", name="_C_cache_ops::reshape_and_cache_flash", layer=0, module=None,
                           args=(("kv_cache_dtype", ScalarArg(dtype)),))
    flash, nvfp4 = "csrc/cache_kernels.cu:reshape_and_cache_flash_kernel", \
        "csrc/nvfp4_kv_cache_kernels.cu:reshape_and_cache_nvfp4_kernel"
    for dtype in ("auto", "fp8"):
        assert call_launches(flash, call(dtype)) is True and call_launches(nvfp4, call(dtype)) is False
    assert call_launches(nvfp4, call("nvfp4")) is True and call_launches(flash, call("nvfp4")) is False


@pytest.mark.slow
def test_a_config_class_defaults_source_traces_its_new_kernels(vllm_tree, monkeypatch):
    """One real trace (about 30 s cold; the model-trace cache is keyed by the worker's sources): Jamba's
    class defaults, cut to 2 layers, launch Mamba1's selective scan (CUDA, prefill) and state update
    (Triton, decode) -- kernels no bundled model reaches."""
    from vkc.index import build_index
    from vkc.modelcfg import load_model

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from vkc.batch.used import op_map, step_kernels
    from vkc.invoke.triton.modeltraced.session import FULL_STEPS, model_trace_for

    index = build_index(vllm_tree)
    trace = model_trace_for(vllm_tree, load_model("defaults:JambaForCausalLM"))
    known = {k.qualified: k for k in index.kernels if k.role == "entry"}
    got = {w: step_kernels(trace.step(s), known, op_map(index), tree=vllm_tree) for w, s in FULL_STEPS.items()}
    assert "csrc/mamba/selective_scan_fwd.cu:selective_scan_fwd_kernel" in got["prefill"]
    assert "vllm.model_executor.layers.mamba.ops.mamba_ssm:_selective_scan_update_kernel" in got["decode"]
    assert trace.fingerprint_status == "known" and trace.traced_layers == 2


@pytest.mark.heavy
def test_minimax_m3_traces_through_the_flashinfer_recording_stand_in(vllm_tree, monkeypatch):
    """One real trace (about 30 s cold): MiniMax-M3's norms are flashinfer calls (not installed), recorded as
    external events with results shaped like their inputs, so the step runs on to its own fused CUDA kernel."""
    from vkc.index import build_index
    from vkc.modelcfg import load_model

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from vkc.batch.used import op_map, step_kernels
    from vkc.invoke.triton.modeltraced.session import FULL_STEPS, model_trace_for

    index = build_index(vllm_tree)
    trace = model_trace_for(vllm_tree, load_model("defaults:MiniMaxM3SparseForCausalLM"))
    known = {k.qualified: k for k in index.kernels if k.role == "entry"}
    decode = trace.step(FULL_STEPS["decode"])
    got = step_kernels(decode, known, op_map(index), tree=vllm_tree)
    assert "csrc/fused_minimax_m3_qknorm_rope_kv_insert_kernel.cu:fusedMiniMaxM3QNormRopeKVInsertKernel" in got
    # the cut keeps sparse_attention_freq's layer 3: its layer 1 is sparse, vLLM's SM 9.0 Triton indexer/attention
    assert "vllm.models.minimax_m3.common.ops.sparse_attn:_gqa_sparse_decode_kernel" in got
    assert "vllm.models.minimax_m3.common.ops.index_topk:_decode_index_score_kernel" in got
    names = {e.name for e in decode.events if e.kind == "external"}
    assert {"flashinfer.norm.gemma_rmsnorm", "flashinfer.norm.gemma_fused_add_rmsnorm"} <= names
    assert any("recording stand-ins" in w and "flashinfer" in w for w in trace.warnings)
