"""The CLI's contract for bad input: one line on stderr, a distinct non-zero exit, no
traceback, and no file touched."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
sys.path.insert(0, str(TESTS))
from hub_server import closed_port_endpoint, hub_server


def vkc(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    e = dict(os.environ)
    e.pop("VKC_DEBUG", None)
    e.update(env or {})
    return subprocess.run([sys.executable, "-m", "vkc", *args], cwd=cwd, env=e,
                          capture_output=True, text=True, timeout=300)


def assert_one_line_error(p: subprocess.CompletedProcess, code: int, *needles: str) -> None:
    assert p.returncode == code, (p.returncode, p.stderr)
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1, p.stderr
    assert lines[0].startswith("vkc: error: "), lines[0]
    assert "Traceback" not in p.stderr
    assert p.stdout == ""
    for n in needles:
        assert n in lines[0], lines[0]


@pytest.fixture
def work(tmp_path: Path) -> Path:
    out = tmp_path / "kernels_out"
    out.mkdir()
    (out / "keep.json").write_text('{"untouched": true}')
    return tmp_path


def untouched(work: Path) -> None:
    assert sorted(p.name for p in (work / "kernels_out").iterdir()) == ["keep.json"]
    assert json.loads((work / "kernels_out" / "keep.json").read_text()) == {"untouched": True}


@pytest.mark.parametrize("name", ["../evil", "/etc/passwd", "a/../../b", "x\\y", "bad name", ".."])
def test_path_like_kernel_names(work, name):
    p = vkc("collect", name, cwd=work)
    assert_one_line_error(p, 6)
    untouched(work)


@pytest.mark.sdist
def test_unknown_kernel_suggests(work, vllm_tree):
    p = vkc("collect", "rms_norm_kernal", cwd=work)
    assert_one_line_error(p, 4, "rms_norm_kernel")
    untouched(work)


@pytest.mark.sdist
def test_ambiguous_kernel_lists_candidates(work, vllm_tree):
    p = vkc("collect", "_fwd_kernel", cwd=work)
    assert_one_line_error(p, 5, "vllm.v1.attention.ops.prefix_prefill:_fwd_kernel")
    untouched(work)


def test_unknown_model_offline(work):
    p = vkc("model", "show", "nobody/no-such-model", "--offline", cwd=work)
    assert_one_line_error(p, 7, "nobody/no-such-model")


def test_malformed_config_file(work):
    bad = work / "config.json"
    bad.write_text("{ not json")
    p = vkc("model", "show", str(bad), cwd=work)
    assert_one_line_error(p, 7)


def test_unreachable_hub_without_snapshot(work):
    p = vkc("model", "show", "nobody/no-such-model", cwd=work,
            env={"HF_ENDPOINT": closed_port_endpoint(), "HF_HUB_OFFLINE": "0",
                 "HF_HOME": str(work / "hf")})
    assert_one_line_error(p, 7)


def test_model_through_local_hub(work):
    cfg = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 1024,
           "num_attention_heads": 16, "num_key_value_heads": 4, "intermediate_size": 4096,
           "num_hidden_layers": 4, "max_position_embeddings": 8192, "torch_dtype": "bfloat16",
           "vocab_size": 32000}
    with hub_server(files={"vkc-test/small-llama": {"config.json": json.dumps(cfg)}}) as hub:
        p = vkc("model", "show", "vkc-test/small-llama", "--json", cwd=work,
                env={"HF_ENDPOINT": hub.endpoint, "HF_HUB_OFFLINE": "0", "HF_HOME": str(work / "hf")})
    assert p.returncode == 0, p.stderr
    data = json.loads(p.stdout)
    assert (data["num_attention_heads"], data["num_key_value_heads"], data["head_dim"]) == (16, 4, 64)
    assert data["origin"] == "hub"
    assert any("huggingface.co/vkc-test/small-llama" in s for s in data["sources"])


def test_gpt_oss_offline_acceptance(work):
    p = vkc("model", "show", "openai/gpt-oss-120b", "--json", "--offline", cwd=work)
    assert p.returncode == 0, p.stderr
    d = json.loads(p.stdout)
    assert (d["num_attention_heads"], d["num_key_value_heads"], d["head_dim"], d["hidden_size"]) == (64, 8, 64, 2880)
    assert d["sliding_window"] == 128
    assert d["layer_types"][:2] == ["sliding_attention", "full_attention"]
    assert any("head_dim" in w and "2880" in w for w in d["warnings"])


@pytest.mark.sdist
def test_unwritable_output_dir(work, vllm_tree):
    blocker = work / "not_a_dir"
    blocker.write_text("a file where the output folder should be")
    p = vkc("collect", "rms_norm_kernel", "--out", str(blocker / "sub"), cwd=work)
    assert_one_line_error(p, 10)
    assert blocker.read_text().startswith("a file")
    untouched(work)


def test_usage_error_is_one_line(work):
    p = vkc("collect", cwd=work)
    assert_one_line_error(p, 2)


def test_debug_shows_traceback(work):
    p = vkc("--debug", "collect", "../x", cwd=work)
    assert p.returncode != 0 and "Traceback" in p.stderr
