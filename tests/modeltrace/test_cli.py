"""``vkc model kernels`` argument and error handling (no trace process)."""
from __future__ import annotations

from vkc.cli import main


def test_prompt_len_with_decode_is_a_usage_error(capsys):
    assert main(["model", "kernels", "meta-llama/Llama-3.1-8B-Instruct", "--prompt-len", "128"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("vkc: error: --prompt-len is for --workload prefill") and "Traceback" not in err


def test_bad_batch_is_a_usage_error(capsys):
    assert main(["model", "kernels", "meta-llama/Llama-3.1-8B-Instruct", "--batch", "0"]) == 2


def test_missing_model_config_is_a_model_error(tmp_path, capsys):
    assert main(["model", "kernels", str(tmp_path / "nope" / "config.json"), "--offline"]) == 7
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
