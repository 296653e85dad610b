"""vkc report: coverage / GPU / fidelity tables from a batch folder, golden Markdown/JSON/HTML."""
from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from vkc.report import build_report, family_of, write_report
from vkc.report.build import failure_reason
from vkc.report.cli_hooks import add_report_args, run_report

DATA = Path(__file__).parent.parent / "data" / "report"
BATCH = DATA / "batch"
GOLDEN = DATA / "golden"
CHROMIUM = "/usr/bin/chromium"


@pytest.mark.parametrize("path,name,family", [
    ("vllm/v1/attention/ops/chunked_prefill_paged_decode.py", "kernel_paged_attention_2d", "attention"),
    ("csrc/cache_kernels.cu", "reshape_and_cache_flash_kernel", "cache"),
    ("vllm/v1/attention/ops/triton_reshape_and_cache_flash.py", "reshape_and_cache_kernel_flash", "cache"),
    ("csrc/layernorm_kernels.cu", "rms_norm_kernel", "norm"),
    ("csrc/layernorm_quant_kernels.cu", "rms_norm_static_fp8_quant_kernel", "norm"),
    ("csrc/quantization/w8a8/int8/scaled_quant.cu", "dynamic_scaled_int8_quant_kernel", "quant"),
    ("vllm/model_executor/layers/fused_moe/fused_moe.py", "fused_moe_kernel", "moe"),
    ("csrc/moe/topk_softmax_kernels.cu", "topkGatingSoftmax", "moe"),
    ("vllm/lora/ops/triton_ops/fused_moe_lora_op.py", "_fused_moe_lora_kernel", "lora"),
    ("csrc/activation_kernels.cu", "act_and_mul_kernel", "activation"),
    ("csrc/pos_encoding_kernels.cu", "rotary_embedding_kernel", "rotary"),
    ("vllm/model_executor/layers/rotary_embedding/mrope.py", "_triton_mrope_forward", "rotary"),
    ("csrc/mamba/mamba_ssm/selective_scan_fwd.cu", "selective_scan_fwd_kernel", "ssm"),
    ("vllm/model_executor/layers/fla/ops/chunk_o.py", "chunk_fwd_kernel_o", "linear_attention"),
    ("vllm/v1/sample/ops/topk_topp_triton.py", "_topk_topp_kernel", "sampler"),
    ("csrc/custom_all_reduce.cuh", "cross_device_reduce_1stage", "allreduce"),
    ("csrc/misc.cu", "some_kernel", "other"),
])
def test_family_rules(path, name, family):
    assert family_of(path, name) == family


def test_failure_reason_groups_messages():
    a = failure_reason("InvocationError: launch tracing timed out after 300s (hint: rerun)", "error")
    b = failure_reason("launch tracing timed out after 600s", "failed", "InvocationError")
    assert a == b == "InvocationError: launch tracing timed out after Ns"
    assert failure_reason("kernel name 'x' is ambiguous (2 candidates): a, b", "error") == "kernel name '…' is ambiguous"
    assert failure_reason(None, "timeout") == "status=timeout"


def test_build_report_numbers():
    r = build_report(str(BATCH))
    cov = r["coverage"]
    assert (cov["attempted"], cov["collected"], cov["not_applicable"], cov["failed"]) == (7, 3, 1, 3)
    assert cov["rate"] == 0.5   # collected / applicable
    assert cov["by_language"] == {"cuda": {"attempted": 4, "collected": 2, "not_applicable": 1, "failed": 1},
                                  "triton": {"attempted": 3, "collected": 1, "not_applicable": 0, "failed": 2}}
    assert cov["by_family"]["ssm"] == {"attempted": 1, "collected": 0, "not_applicable": 0, "failed": 1}
    assert cov["by_family"]["rotary"]["not_applicable"] == 1
    assert cov["by_family"]["lora"]["failed"] == 1 and cov["by_family"]["moe"]["collected"] == 1
    reasons = {f["reason"]: f["count"] for f in cov["failure_reasons"]}
    assert reasons == {"InvocationError: launch tracing timed out after Ns": 2,
                       "ExtractionError: kernel '…' needs CUTLASS headers at <file>": 1}
    gpu = {g["name"]: g for g in r["gpu"]}
    assert set(gpu) == {"kernel_paged_attention_2d", "rms_norm_kernel"}   # the failed run has no row
    assert gpu["rms_norm_kernel"]["pct_hbm_peak"] == 80.0                 # 2680 / 3350
    assert gpu["kernel_paged_attention_2d"]["time_ms"] == 4.2
    assert r["checks"]["run"] == {"ok": 2, "failed": 1}
    assert r["fidelity"]["summary"]["mismatch_rate"] == 0.5
    k = {x["name"]: x for x in r["kernels"]}
    assert k["moe_align_block_size_kernel"]["run"] == "failed" and k["rms_norm_kernel"]["fidelity"] == "mismatch"


def test_report_without_result_files(tmp_path):
    shutil.copy(BATCH / "rms_norm_kernel.json", tmp_path)
    r = build_report(str(tmp_path))
    assert r["coverage"]["attempted"] == 1 and r["gpu"] == [] and r["fidelity"] is None
    paths = write_report(tmp_path)
    assert [p.name for p in paths] == ["report.md", "report.json", "report.html"]
    assert "No run results." in paths[0].read_text() and "no GB/s results" in paths[2].read_text()


class _Collect(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[str] = []
        self.external: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        a = dict(attrs)
        if tag in ("script", "link", "img", "iframe") or (tag != "a" and re.match(r"https?:", a.get("src", "") or "")):
            self.external.append(tag)


def test_golden_outputs_and_cli_hook(tmp_path, golden):
    batch = tmp_path / "batch"
    shutil.copytree(BATCH, batch)
    parser = argparse.ArgumentParser()
    add_report_args(parser.add_subparsers(dest="cmd"))
    assert run_report(parser.parse_args(["report", str(batch)])) == 0
    md, js, page = ((batch / f"report.{e}").read_text(encoding="utf-8") for e in ("md", "json", "html"))
    golden(GOLDEN / "report.md", md)
    golden(GOLDEN / "report.json", js)
    golden(GOLDEN / "report.html", page)
    assert json.loads(js)["coverage"]["attempted"] == 7
    c = _Collect()
    c.feed(page)
    assert c.external == [] and "svg" in c.tags and c.tags.count("table") >= 6
    assert page.count('class="bar"') == 2 and "3350 GB/s" in page
    # deterministic: a second run gives the same bytes; the report files are not read back as artifacts
    write_report(batch, tmp_path / "again")
    assert (tmp_path / "again.html").read_text(encoding="utf-8") == page


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="chromium not installed (apt-get install -y chromium)")
def test_html_renders_in_headless_chromium(tmp_path):
    write_report(BATCH, tmp_path / "report")
    url = (tmp_path / "report.html").resolve().as_uri()
    base = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={tmp_path / 'prof'}"]
    dom = subprocess.run([*base, "--dump-dom", url], check=False, capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    for needle in ('id="bandwidth-plot"', 'class="gpu-row"', "rms_norm_kernel", "kernel_paged_attention_2d",
                   "InvocationError: launch tracing timed out after Ns", "<rect"):
        assert needle in dom.stdout, needle
    assert dom.stdout.count('class="kernel-row"') == 3
    shot = tmp_path / "shot.png"
    r = subprocess.run([*base, f"--screenshot={shot}", "--window-size=1200,1600", url],
                       check=False, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000


def test_peaks_follow_the_gpu_the_results_name():
    from vkc.report import H100_PEAK, H200_PEAK, peak_for

    assert peak_for(["NVIDIA_H200", ""]) is H200_PEAK and H200_PEAK["hbm_gbps"] == 4800.0
    assert peak_for(["NVIDIA_H100_80GB_HBM3"]) is H100_PEAK and peak_for([]) is H100_PEAK
