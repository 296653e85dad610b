"""Config values are untrusted: sizes and signs are bounded, JSON must be finite and shallow,
torch_dtype must be a dtype, model ids are checked whole (issue 15, "Medium"/"Low")."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from vkc.errors import ModelError
from vkc.modelcfg import load_model

BASE = {"hidden_size": 4096, "num_attention_heads": 32, "num_key_value_heads": 8, "num_hidden_layers": 32,
        "intermediate_size": 14336, "vocab_size": 128256, "max_position_embeddings": 131072,
        "rms_norm_eps": 1e-5, "torch_dtype": "bfloat16", "model_type": "llama"}
MOE = {**BASE, "num_experts": 8, "num_experts_per_tok": 2, "moe_intermediate_size": 1024}


def _write(tmp_path: Path, cfg: dict | str) -> Path:
    p = tmp_path / "config.json"
    p.write_text(cfg if isinstance(cfg, str) else json.dumps(cfg))
    return p


@pytest.mark.parametrize("key,value", [
    ("num_hidden_layers", 10**12), ("num_hidden_layers", 1001), ("hidden_size", 2**31), ("hidden_size", 2**63),
    ("hidden_size", -4096), ("hidden_size", 0), ("num_attention_heads", -1), ("num_key_value_heads", 0),
    ("intermediate_size", -1), ("intermediate_size", 2**40), ("vocab_size", 2**31), ("head_dim", -128),
    ("head_dim", 10**6), ("max_position_embeddings", 2**31), ("sliding_window", -1), ("hidden_size", 4096.5),
    ("hidden_size", "4096"), ("hidden_size", True), ("hidden_size", 1e300), ("rms_norm_eps", -1.0),
])
def test_out_of_bounds_names_the_field(tmp_path: Path, key: str, value: object) -> None:
    with pytest.raises(ModelError) as err:
        load_model(str(_write(tmp_path, {**BASE, key: value})))
    assert err.value.exit_code == 7 and key in err.value.message


@pytest.mark.parametrize("key,value", [("num_experts_per_tok", 9), ("num_experts", -8), ("moe_intermediate_size", 0)])
def test_moe_bounds(tmp_path: Path, key: str, value: int) -> None:
    with pytest.raises(ModelError, match=key):
        load_model(str(_write(tmp_path, {**MOE, key: value})))


def test_real_shapes_pass_and_head_dim_mismatch_stays_a_warning(tmp_path: Path) -> None:
    cfg = load_model(str(_write(tmp_path, {**MOE, "head_dim": 128, "num_attention_heads": 64})))
    assert cfg.num_experts_per_tok == 2 and cfg.head_dim == 128
    assert any("head_dim * num_attention_heads" in w for w in cfg.warnings)


def test_gqa_divisibility_still_checked(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="not a multiple of num_key_value_heads"):
        load_model(str(_write(tmp_path, {**BASE, "num_key_value_heads": 7})))


@pytest.mark.parametrize("text,words", [
    ('{"hidden_size": NaN}', "non-finite"), ('{"hidden_size": Infinity}', "non-finite"),
    ('{"x": ' + "[" * 100000 + "]" * 100000 + "}", "nested too deeply"),
    ('{"hidden_size": ' + "9" * 5000 + "}", "malformed"),
])
def test_bad_json(tmp_path: Path, text: str, words: str) -> None:
    with pytest.raises(ModelError, match=words):
        load_model(str(_write(tmp_path, text)))


@pytest.mark.parametrize("dtype", ["banana", 7, ["bfloat16"], "torch.int77"])
def test_dtype_that_is_no_dtype(tmp_path: Path, dtype: object) -> None:
    with pytest.raises(ModelError, match="torch_dtype"):
        load_model(str(_write(tmp_path, {**BASE, "torch_dtype": dtype})))


def test_dtype_aliases(tmp_path: Path) -> None:
    assert load_model(str(_write(tmp_path, {**BASE, "torch_dtype": "torch.float16"}))).dtype == "float16"
    assert load_model(str(_write(tmp_path, {**BASE, "torch_dtype": "float"}))).dtype == "float32"


@pytest.mark.parametrize("model", ["meta-llama/Llama-3.1-8B-Instruct\n", "org/" + "x" * 300, "a" * 5000,
                                   "org/na\x1bme", "org/name\0"])
def test_bad_model_ids_are_model_errors(model: str) -> None:
    with pytest.raises(ModelError) as err:
        load_model(model, offline=True)
    assert err.value.exit_code == 7 and "\n" not in err.value.message and "\x1b" not in err.value.message


def test_cli_one_line_exit_7(tmp_path: Path) -> None:
    path = _write(tmp_path, {**BASE, "num_hidden_layers": 10**12})
    p = subprocess.run([sys.executable, "-m", "vkc", "model", "show", str(path), "--offline"],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 7 and p.stderr.count("\n") == 1 and "num_hidden_layers" in p.stderr
