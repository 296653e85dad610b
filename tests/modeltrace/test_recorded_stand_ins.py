"""Recording stand-ins a variant asks for (``@deep-gemm=recorded`` ...): the variant keys, the trace options
and request they give, and each stand-in's answers and recording (in a subprocess: installing one changes
``sys.modules``); no vLLM run."""
from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from vkc.errors import ModelError
from vkc.invoke.triton.modeltraced import session
from vkc.modelcfg import load_model
from vkc.modelcfg.fetch import fetch_config
from vkc.modeltrace.features import with_features
from vkc.modeltrace.layers import plan_layers
from vkc.modeltrace.recorded import RECORDED
from vkc.modeltrace.records import StepSpec, TraceOptions, trace_from_json, trace_to_json
from vkc.modeltrace.trace import _worker_modules, _worker_options

V4 = "defaults:DeepseekV4ForCausalLM"
V4_SOURCE = f"{V4}@deep-gemm=recorded,flash-mla=recorded,tilelang=recorded,cute-dsl=recorded,block-size=256"
LLAMA = "meta-llama/Llama-3.1-8B-Instruct"
DATA = Path(__file__).resolve().parents[1] / "data" / "modeltrace"


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def _run(code: str) -> str:
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


# ----------------------------------------------------------------------------- options


def test_the_keys_set_the_recorded_stand_ins_and_the_block_size_and_nothing_else():
    plain = session.trace_options(load_model(V4))
    assert plain.recorded == ()
    opts = session.trace_options(load_model(V4_SOURCE))
    assert opts == dataclasses.replace(plain, recorded=("cute-dsl", "deep-gemm", "flash-mla", "tilelang"),
                                       block_size=256)
    assert dataclasses.replace(load_model(V4_SOURCE), model_id=V4) == load_model(V4)   # the config is unchanged


@pytest.mark.parametrize("model", [f"{V4}@deep-gemm=yes", f"{V4}@tilelang=recorded,tilelang=recorded",
                                   f"{V4}@block-size=48"])
def test_bad_values_are_model_errors(model):
    with pytest.raises(ModelError) as e:
        load_model(model)
    assert e.value.hint


def test_only_a_trace_that_asks_sends_them_to_the_worker_and_keys_their_modules():
    cfg = load_model(V4)
    plain = session.trace_options(cfg)
    asked = session.trace_options(load_model(V4_SOURCE))
    plan = plan_layers(dict(fetch_config(V4).config))
    assert "recorded" not in _worker_options(plain, plan)              # the plain traces' cache keys stay
    assert _worker_options(asked, plan)["recorded"] == ["cute-dsl", "deep-gemm", "flash-mla", "tilelang"]
    assert not any("recorded" in m for m in _worker_modules(plain))
    assert {RECORDED[k][0] for k in RECORDED} < set(_worker_modules(asked))
    assert "vkc.modeltrace.lora" in _worker_modules(asked)       # the CuTe DSL's fake addresses are its
    assert "vkc.modeltrace.lora" not in _worker_modules(plain)
    assert "recorded" not in _worker_options(session.trace_options(load_model(LLAMA)), plan)


def test_recorded_survives_features_and_the_json_form():
    opts = TraceOptions((StepSpec("decode", 8, ctx=128),), recorded=("deep-gemm",))
    assert with_features(opts, ["sampler"]).recorded == ("deep-gemm",)
    trace = trace_from_json(json.loads((DATA / "llama-3.1-8b-instruct.trace.json").read_text()))
    assert trace.options.recorded == () and "recorded" not in trace_to_json(trace)["options"]
    r = dataclasses.replace(trace, options=dataclasses.replace(trace.options, recorded=("deep-gemm", "tilelang")))
    assert trace_from_json(trace_to_json(r)).options.recorded == ("deep-gemm", "tilelang")


# ----------------------------------------------------------------------------- the stand-ins


def test_deep_gemm_answers_host_queries_shapes_results_and_records_kernels():
    out = _run("""
        import importlib.util, sys, torch
        from vkc.modeltrace.recorded import install_recorded
        from vkc.modeltrace.recorder import RECORDER
        assert install_recorded([], {"multi_processor_count": 132}) == []
        assert "vllm.third_party.deep_gemm" not in sys.modules           # nothing without the option
        assert install_recorded(["deep-gemm"], {"multi_processor_count": 132}) == ["deep_gemm"]
        assert "vllm" not in sys.modules                                 # the parent package is not imported
        assert importlib.util.find_spec("vllm.third_party.deep_gemm") is not None
        dg = sys.modules["vllm.third_party.deep_gemm"]
        assert dg.get_num_sms() == 132
        dg.set_num_sms(100); assert dg.get_num_sms() == 100
        assert getattr(dg, "no_such_kernel", None) is None               # getattr(_dg, NAME, None) sees it missing
        q = torch.empty(6, 64, 128, dtype=torch.float8_e4m3fn, device="meta")
        RECORDER.reset_step(); RECORDER.active = True
        logits = dg.fp8_fp4_mqa_logits((q, None), (q, q), q, q, q, 4096)
        paged = dg.fp8_fp4_paged_mqa_logits((q.view(3, 2, 64, 128), None), q, q, q, q, q, 8192)
        sched = dg.get_paged_mqa_logits_metadata(q, 64, 132)
        x, fn = torch.empty(6, 8, device="meta"), torch.empty(4, 8, device="meta")
        o, s = torch.empty(2, 6, 4, device="meta"), torch.empty(2, 6, device="meta")
        assert dg.tf32_hc_prenorm_gemm(x, fn, o, s, 2) is None
        RECORDER.active = False
        assert (tuple(logits.shape), logits.dtype) == ((6, 4096), torch.float32)
        assert tuple(paged.shape) == (6, 8192) and (tuple(sched.shape), sched.dtype) == ((133, 2), torch.int32)
        evs = RECORDER.events
        assert [e["name"] for e in evs if e["kind"] == "external"] == [
            "deep_gemm.fp8_fp4_mqa_logits", "deep_gemm.fp8_fp4_paged_mqa_logits",
            "deep_gemm.get_paged_mqa_logits_metadata", "deep_gemm.tf32_hc_prenorm_gemm"], evs
        assert [o["shape"] for o in evs[-1]["outputs"]] == [[2, 6, 4], [2, 6]]
        assert evs[0]["outputs"][0]["shape"] == [6, 4096]
        print("ok")
    """)
    assert out.strip() == "ok"


def test_flashmla_answers_as_its_interface_documents_and_records():
    out = _run("""
        import sys, torch
        from vkc.modeltrace.recorded import install_recorded
        from vkc.modeltrace.recorder import RECORDER
        assert install_recorded(["flash-mla"], {"multi_processor_count": 132}) == ["flashmla"]
        assert "vllm._flashmla_C" in sys.modules and "vllm" not in sys.modules
        fm = sys.modules["vllm.third_party.flashmla.flash_mla_interface"]
        meta, none = fm.get_mla_metadata()
        assert isinstance(meta, fm.FlashMLASchedMeta) and not meta.have_initialized and none is None
        q = torch.empty(4, 1, 64, 512, dtype=torch.bfloat16, device="meta")
        kc = torch.empty(10, 256, 1, 584, dtype=torch.uint8, device="meta")
        RECORDER.reset_step(); RECORDER.active = True
        out, lse = fm.flash_mla_with_kvcache(q=q, k_cache=kc, block_table=None, head_dim_v=512,
                                             tile_scheduler_metadata=meta, cache_seqlens=None)
        o2, ml, lse2 = fm.flash_mla_sparse_fwd(q[:, 0], kc, kc, 0.1)
        RECORDER.active = False
        assert tuple(out.shape) == (4, 1, 64, 512) and (tuple(lse.shape), lse.dtype) == ((4, 64, 1), torch.float32)
        assert tuple(o2.shape) == (4, 64, 512) and tuple(ml.shape) == tuple(lse2.shape) == (4, 64)
        assert [e["name"] for e in RECORDER.events] == ["flash_mla.flash_mla_with_kvcache",
                                                         "flash_mla.flash_mla_sparse_fwd"]
        assert "tile_scheduler_metadata" not in dict(RECORDER.events[0]["args"])
        print("ok")
    """)
    assert out.strip() == "ok"


def test_tilelang_and_the_cute_dsl_record_launches_and_compile_nothing():
    out = _run("""
        import importlib.util, sys, torch
        from vkc.modeltrace.recorded import install_recorded
        from vkc.modeltrace.recorder import RECORDER
        assert importlib.util.find_spec("tilelang") is None and importlib.util.find_spec("cutlass") is None
        assert install_recorded(["tilelang", "cute-dsl"], {"multi_processor_count": 132}) == [
            "cutlass-dsl", "quack", "cuda-python", "tilelang"]
        assert importlib.util.find_spec("tilelang") is not None
        import tilelang, tilelang.language as T
        import cutlass, cutlass.cute as cute
        from cuda.bindings.driver import CUstream
        from cutlass import Float32
        assert isinstance(CUstream, type) and not isinstance(object(), CUstream) and Float32(1.0) is not None
        ran = []
        @tilelang.jit(pass_configs={tilelang.PassConfigKey.TL_DISABLE_TMA_LOWER: True})
        def mhc_post(hidden, hc_mult):
            ran.append("body")
        @cute.jit
        def host_entrypoint(a):
            ran.append("body")
        x = torch.empty(4, 8, dtype=torch.bfloat16, device="meta")
        RECORDER.reset_step(); RECORDER.active = True
        assert mhc_post(4096, 4)(x, x, 7) is None
        assert cute.compile(host_entrypoint, x, cute.runtime.make_fake_stream())(x) is None
        RECORDER.active = False
        assert ran == [] and T.prim_func is not None
        assert [e["name"] for e in RECORDER.events] == ["tilelang.mhc_post", "cute_dsl.__main__:host_entrypoint"]
        assert RECORDER.events[0]["outputs"] == []
        print("ok")
    """)
    assert out.strip() == "ok"


def test_a_compiled_cute_kernel_finds_its_tensors_and_scalars_and_counts_them_written_but_weights():
    """Step5's RMSNorm hands its compiled kernel make_ptr(dtype, t.data_ptr()) and DSL scalars: the event names
    the tensors (meta tensors' distinct fake addresses) and the values; every tensor but the weight is written
    (the DSL body never runs: a later launch must not take the buffer for its earlier contents)."""
    out = _run("""
        import torch
        from vkc.modeltrace.recorded import install_recorded
        from vkc.modeltrace.recorder import RECORDER
        install_recorded(["cute-dsl"], {"multi_processor_count": 132})
        import cutlass, cutlass.cute as cute
        from cutlass import Float32, Int32
        from cutlass.cute.runtime import make_ptr, from_dlpack
        from cuda.bindings.driver import CUstream
        class RMSNormKernel:
            @cute.jit
            def __call__(self, x, w, y, rows, eps, stream): pass
        x = torch.empty(4, 8, dtype=torch.bfloat16, device="meta"); w = torch.empty(8, device="meta")
        y = torch.empty_like(x)
        assert len({x.data_ptr(), w.data_ptr(), y.data_ptr()}) == 3 and x[1].data_ptr() == x.data_ptr() + 16
        RECORDER.reset_step(); RECORDER.active = True
        RECORDER.name_storage(w, "weight:norm.weight"); RECORDER.name_storage(x, "input:x")
        f = cute.compile(RMSNormKernel(), make_ptr(cutlass.BFloat16, 16, cute.AddressSpace.gmem), Int32(1), CUstream(0))
        assert f(make_ptr(cutlass.BFloat16, x.data_ptr(), assumed_align=16), make_ptr(Float32, w.data_ptr()),
                 from_dlpack(y), Int32(4), Float32(1e-5), CUstream(0)) is None
        RECORDER.active = False
        (ev,) = RECORDER.events
        assert ev["name"] == "cute_dsl.__main__:RMSNormKernel"
        args = [a["base"] if a["kind"] == "tensor" else a["value"] for _k, a in ev["args"]]
        base = {id(t): RECORDER.describe(t)["base"] for t in (x, w, y)}
        assert args == [base[id(x)], base[id(w)], base[id(y)], 4, 1e-05]          # CUstream(0) is no scalar
        assert sorted(o["base"] for o in ev["outputs"]) == sorted([base[id(x)], base[id(y)]])
        assert RECORDER.describe(y)["producer"] == f"event:{ev['index']}"
        assert RECORDER.describe(w)["producer"] == "weight:norm.weight"
        print("ok")
    """)
    assert out.strip() == "ok"


def test_flash_attention_4_entry_points_write_out_and_return_it():
    """Inkling's Hopper attention calls FA4's flash_attn_varlen_func(out=...) with a CuTe score_mod: an event
    that writes out; without out a new tensor like q, with return_lse also the fp32 log-sum-exp."""
    out = _run("""
        import sys, types, torch
        from vkc.modeltrace.recorded import install_recorded
        from vkc.modeltrace.recorder import RECORDER
        for n in ("vllm", "vllm.vllm_flash_attn"):      # the tree's packages (not imported in a fast test)
            m = types.ModuleType(n); m.__path__ = []; sys.modules[n] = m
        install_recorded(["cute-dsl"], {"multi_processor_count": 132})
        from vllm.vllm_flash_attn.cute import flash_attn_varlen_func
        q = torch.empty(6, 4, 64, dtype=torch.bfloat16, device="meta"); o = torch.empty_like(q)
        rel = torch.empty(6, 4, 16, dtype=torch.bfloat16, device="meta")
        RECORDER.reset_step(); RECORDER.active = True
        assert flash_attn_varlen_func(q=q, k=q, v=q, out=o, score_mod=lambda *a: a, aux_tensors=[rel]) is o
        new, lse = flash_attn_varlen_func(q, q, q, return_lse=True)
        RECORDER.active = False
        assert new.shape == q.shape and lse.shape == (4, 6) and lse.dtype == torch.float32
        first, second = RECORDER.events
        assert first["name"] == second["name"] == "vllm_flash_attn.cute.flash_attn_varlen_func"
        assert [o["base"] for o in first["outputs"]] == [RECORDER.describe(o)["base"]]
        assert "aux_tensors[0]" in [k for k, _a in first["args"]]
        print("ok")
    """)
    assert out.strip() == "ok"


def test_vllm_code_that_imports_the_dsl_sees_a_meta_tensor_on_cuda_and_places_on_meta(tmp_path):
    """DeepSeek-V4's router host check (``device.type != "cuda"`` raises) in a module that imports the DSL;
    another module, torch and vkc see the meta device; a tensor placed on the answer is a meta tensor."""
    (tmp_path / "vllm_dsl_host.py").write_text(
        "def check(t):\n    import cutlass  # noqa\n    d = t.device\n"
        "    import torch\n    return d.type, d == t.device, torch.empty(2, device=d).is_meta\n")
    (tmp_path / "vllm_plain.py").write_text("def check(t):\n    return t.device.type\n")
    out = _run(f"""
        import sys, torch
        sys.path.insert(0, {str(tmp_path)!r})
        from vkc.modeltrace.recorded import install_recorded
        install_recorded(["cute-dsl"], {{"multi_processor_count": 132}})
        import vllm_dsl_host, vllm_plain
        x = torch.empty(4, device="meta")
        assert vllm_dsl_host.check(x) == ("cuda", True, True), vllm_dsl_host.check(x)
        assert vllm_plain.check(x) == "meta" and x.device.type == "meta"
        assert vllm_dsl_host.check.__module__ == "vllm_dsl_host" and torch.empty(1).device.type == "cpu"
        print("ok")
    """)
    assert out.strip() == "ok"
