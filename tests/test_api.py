"""vkc's public Python API: names, signatures, lazy import, and that the CLI goes through it."""
from __future__ import annotations

import inspect
import json
import subprocess
import sys

import pytest

import vkc
from vkc import api, cli

SIGNATURES = {
    "collect": "(kernel: 'str', *, model: 'str | None' = None, workload: 'str | None' = None, "
               "out_dir: 'str | os.PathLike[str]' = 'kernels_out', vllm_path: 'str | None' = None, "
               "vllm_version: 'str | None' = None) -> 'WriteResult'",
    "list_kernels": "(*, lang: 'str | None' = None, role: 'str | None' = None, vllm_path: 'str | None' = None, "
                    "vllm_version: 'str | None' = None, use_cache: 'bool' = True) -> 'tuple[KernelEntry, ...]'",
    "load_model": "(model: 'str', *, offline: 'bool | None' = None, endpoint: 'str | None' = None) "
                  "-> 'ModelConfig'",
    "verify": "(paths: 'Iterable[str | os.PathLike[str]]', *, compile: 'bool' = False, run: 'bool' = False, "
              "sanitizer: 'bool' = False, jobs: 'int | None' = None, run_jobs: 'int' = 1, timeout: 'float' = 300.0, "
              "compile_timeout: 'float' = 1800.0, results_path: 'str | None' = None, sandboxed: 'bool' = True, "
              "log: 'TextIO | None' = None) -> 'list[CheckResult]'",
}


def test_all_is_pinned():
    assert vkc.__all__ == ["__version__", "collect", "list_kernels", "load_model", "verify"]
    assert api.__all__ == sorted(SIGNATURES)


@pytest.mark.parametrize("name", sorted(SIGNATURES))
def test_signature_is_pinned(name):
    fn = getattr(vkc, name)
    assert fn is getattr(api, name)
    assert str(inspect.signature(fn)) == SIGNATURES[name]
    assert fn.__doc__


def test_import_vkc_is_light():
    """``import vkc`` loads no stage; the API module comes on first attribute use."""
    code = ("import sys, vkc; before = sorted(m for m in sys.modules if m.startswith('vkc'));"
            "vkc.load_model; print(before, 'vkc.api' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['vkc'] True"


def test_verify_stays_the_function_after_the_package_is_imported():
    import vkc.verify.driver
    from vkc.verify import check_artifact  # the stage package still imports normally

    assert vkc.verify is api.verify and callable(check_artifact)
    assert sys.modules["vkc.verify"].__name__ == "vkc.verify"
    with pytest.raises(AttributeError):
        vkc.no_such_name  # noqa: B018


def test_regenerate_command_is_the_cli_line():
    assert api.regenerate_command("k", None, None, "kernels_out", None, None) == "vkc collect k"
    assert (api.regenerate_command("csrc/a b.cu:k", "org/m", "decode", "out dir", "/v", None)
            == "vkc collect 'csrc/a b.cu:k' --model org/m --workload decode --vllm /v --out 'out dir'")


def test_load_model_returns_the_record(tmp_path):
    cfg_path = tmp_path / "config.json"
    cfg_path.write_text(json.dumps({"model_type": "llama", "hidden_size": 64, "num_attention_heads": 4,
                                    "num_key_value_heads": 2, "num_hidden_layers": 2, "intermediate_size": 128,
                                    "vocab_size": 100, "max_position_embeddings": 256,
                                    "torch_dtype": "bfloat16"}))
    from vkc.records import ModelConfig
    cfg = vkc.load_model(str(cfg_path))
    assert isinstance(cfg, ModelConfig) and cfg.hidden_size == 64 and cfg.head_dim == 16 and cfg.origin == "file"


@pytest.mark.parametrize(("argv", "fn", "kwargs"), [
    (["collect", "k", "--model", "m", "--out", "o"], "collect",
     {"model": "m", "workload": None, "out_dir": "o", "vllm_path": None, "vllm_version": None}),
    (["list", "--type", "cuda", "--no-cache"], "list_kernels",
     {"lang": "cuda", "role": None, "vllm_path": None, "vllm_version": None, "use_cache": False}),
    (["model", "show", "x", "--offline"], "load_model", {"offline": True}),
    (["verify", "d", "--compile", "--jobs", "3"], "verify",
     {"compile": True, "run": False, "sanitizer": False, "jobs": 3, "run_jobs": 1, "timeout": 300.0,
      "compile_timeout": 1800.0, "results_path": None, "sandboxed": True, "log": sys.stderr}),
])
def test_cli_calls_the_api(monkeypatch, argv, fn, kwargs):
    calls = []

    class Stop(Exception):
        pass

    def fake(*args, **kw):
        calls.append((args, kw))
        raise Stop

    monkeypatch.setattr(api, fn, fake)
    with pytest.raises(Stop):
        cli._run(cli.build_parser().parse_args(argv))
    [(_args, kw)] = calls
    assert kw == kwargs
