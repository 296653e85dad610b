"""`vkc export --format kernelbench | flashinfer-trace` over a small folder of real artifacts.

Data (copied into tests/export_formats/data/): two Triton artifacts with a reference (the gated
RMSNorm of the Mamba layers, from the golden set, and kernel_paged_attention_2d with its block
table, from `vkc collect` at Llama-3.1-8B decode) and one CUDA artifact (skipped: no CUDA references).
The tasks and definitions are imported and run in subprocesses under TRITON_INTERPRET=1 at SMALL.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from vkc.cli import main as cli_main
from vkc.export.flashinfer import export_flashinfer
from vkc.export.kernelbench import export_kernelbench

HERE = Path(__file__).parent
DATA = HERE / "data"
LAYERNORM = "_layer_norm_fwd_1pass_kernel.json"
PAGED = "vllm.v1.attention.ops.chunked_prefill_paged_decode--kernel_paged_attention_2d.json"
CUDA = "rms_norm_kernel.json"
SAFE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.@\-]*")


@pytest.fixture
def arts(tmp_path: Path) -> Path:
    d = tmp_path / "arts"
    d.mkdir()
    for name in (LAYERNORM, PAGED, CUDA):
        shutil.copy(DATA / name, d / name)
    return d


def _env() -> dict[str, str]:
    env = dict(os.environ, TRITON_INTERPRET="1", CUDA_VISIBLE_DEVICES="")
    env.pop("VKC_CONFIG", None)
    return env


def _run(script: str, *args: str) -> list[dict]:
    proc = subprocess.run([sys.executable, str(HERE / script), *args], capture_output=True, text=True,
                          env=_env(), timeout=600)
    lines = [json.loads(ln.split(" ", 1)[1]) for ln in proc.stdout.splitlines() if ln.startswith(("KB_EVAL", "FI_EVAL"))]
    assert proc.returncode == 0 and lines, proc.stderr[-3000:]
    return lines


def _all_safe(root: Path) -> None:
    for p in root.rglob("*"):
        rel = p.relative_to(root)
        assert all(SAFE.fullmatch(part) and ".." not in part for part in rel.parts), rel
        assert p.resolve().is_relative_to(root.resolve())


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# ---------------------------------------------------------------- KernelBench
def test_kernelbench_tasks(arts: Path, tmp_path: Path) -> None:
    out = tmp_path / "kb"
    summary = export_kernelbench(arts, out)
    assert len(summary.written) == 2
    assert [s["reason"].split(":")[0] for s in summary.skipped] == ["CUDA artifact"]
    _all_safe(out)
    task = out / "_layer_norm_fwd_1pass_kernel__meta-llama--Llama-3.1-8B-Instruct__prefill"
    assert sorted(p.name for p in task.iterdir()) == ["_layer_norm_fwd_1pass_kernel.py", "model_new.py",
                                                      "reference.py", "vkc_example.py", "vkc_task.json"]
    art = json.loads((arts / LAYERNORM).read_text())["kernel"]
    assert (task / "vkc_example.py").read_text() == art["invocation_example"]
    assert (task / "_layer_norm_fwd_1pass_kernel.py").read_text() == art["source_code"]
    side = json.loads((task / "vkc_task.json").read_text())
    assert side["outputs"] == [{"param": "Y", "index": None, "poisoned": True,
                                "tolerance": {"bfloat16": {"atol": 0.01, "rtol": 0.01},
                                              "float16": {"atol": 0.01, "rtol": 0.01}}}]
    assert side["reference"]["source"] == "test-reference"
    assert side["provenance"]["vllm_version"] == "0.33.0"
    assert "class Model(nn.Module)" in (task / "reference.py").read_text()
    assert "class ModelNew(nn.Module)" in (task / "model_new.py").read_text()
    summary2 = export_kernelbench(arts, tmp_path / "kb2")
    assert summary2.to_json() == summary.to_json() and _tree(out) == _tree(tmp_path / "kb2")   # byte-identical


def test_kernelbench_modelnew_matches_model_on_cpu(arts: Path, tmp_path: Path) -> None:
    """Both tasks evaluate ModelNew == Model at SMALL; a planted off-by-one grid is caught."""
    planted = tmp_path / "planted"
    planted.mkdir()
    obj = json.loads((arts / LAYERNORM).read_text())
    code = obj["kernel"]["invocation_example"]
    small = code.index("'SMALL': {")
    assert code[small:].count("'grid': (16, 1)") >= 1
    obj["kernel"]["invocation_example"] = code[:small] + code[small:].replace("'grid': (16, 1)", "'grid': (15, 1)", 1)
    (planted / LAYERNORM).write_text(json.dumps(obj))
    export_kernelbench(arts, tmp_path / "kb")
    export_kernelbench(planted, tmp_path / "kb_planted")
    tasks = sorted(str(p) for p in (tmp_path / "kb").iterdir() if p.is_dir())
    bad = [str(p) for p in (tmp_path / "kb_planted").iterdir() if p.is_dir()]
    results = _run("kb_eval.py", *tasks, *bad)
    assert [r["ok"] for r in results] == [True, True, False], results
    assert all(r["config"] == "SMALL" for r in results)
    paged = next(r for r in results if "paged_attention" in r["task"])
    assert paged["outputs"][0]["param"] == "output_ptr" and paged["outputs"][0]["atol"] == 0.015


# ---------------------------------------------------------------- FlashInfer-Trace
def test_flashinfer_trace_validates(arts: Path, tmp_path: Path) -> None:
    fib = pytest.importorskip("flashinfer_bench.data")
    from flashinfer_bench.bench.utils import load_safetensors

    out = tmp_path / "fi"
    summary = export_flashinfer(arts, out)
    assert len(summary.written) == 2 and summary.reasons() == {"CUDA artifact": 1}
    _all_safe(out)
    ts = fib.TraceSet.from_path(str(out))   # flashinfer-bench's own models validate every file
    assert len(ts.definitions) == 2 and sum(len(v) for v in ts.solutions.values()) == 2
    name = "vllm.v1.attention.ops.chunked_prefill_paged_decode--kernel_paged_attention_2d__meta-llama--Llama-3.1-8B-Instruct"
    d = ts.definitions[name]
    assert d.op_type == "attention"
    assert {"model:meta-llama/Llama-3.1-8B-Instruct", "stage:decode", "tp:1"} <= set(d.tags)
    assert d.const_axes["H_q"] == 32 and d.const_axes["D"] == 128
    assert {"batch", "num_blocks", "blocks_per_seq"} <= set(d.var_axes)
    assert d.inputs["block_tables_ptr"].shape == ["batch", "blocks_per_seq"]
    assert list(d.outputs) == ["output_ptr"] and "output_ptr" not in d.inputs
    (trace,) = ts.workloads[name]
    w = trace.workload
    assert w.axes["batch"] == 64 and w.axes["num_blocks"] == 131072
    assert w.inputs["block_tables_ptr"].type == "safetensors" and w.inputs["query_ptr"].type == "random"
    assert w.inputs["scale"].type == "scalar"
    blobs = load_safetensors(d, w, ts.root)     # shapes and dtypes as the definition says
    assert 0 <= int(blobs["block_tables_ptr"].min()) and int(blobs["block_tables_ptr"].max()) < 131072
    assert blobs["query_start_len_ptr"].tolist() == list(range(65))
    (sol,) = ts.solutions[name]
    assert sol.spec.language.value == "triton" and sol.spec.destination_passing_style
    assert sol.spec.entry_point == "main.py::run" and {s.path for s in sol.sources} == {"main.py", "kernel.py"}
    again = tmp_path / "fi2"
    export_flashinfer(arts, again)
    assert _tree(out) == _tree(again)


def test_flashinfer_reference_and_solution_run_on_cpu(arts: Path, tmp_path: Path) -> None:
    """The SMALL launches as definitions: flashinfer-bench's gen_inputs + the reference's run and
    the solution's run (destination passing) agree at vkc's tolerances."""
    pytest.importorskip("flashinfer_bench.data")
    out = tmp_path / "fis"
    summary = export_flashinfer(arts, out, small=True)
    names = sorted(w["definition"] for w in summary.written)
    assert len(names) == 2 and all(n.endswith("__small") for n in names)
    results = _run("fi_eval.py", str(out), *names)
    assert [r["ok"] for r in results] == [True, True], results


# ---------------------------------------------------------------- hostile input
def test_hostile_names_stay_inside_out(arts: Path, tmp_path: Path) -> None:
    obj = json.loads((arts / LAYERNORM).read_text())
    hostile = tmp_path / "hostile"
    hostile.mkdir()
    bad_name = dict(obj, name="../../evil")
    (hostile / "a.json").write_text(json.dumps(bad_name))
    bad_file = json.loads(json.dumps(obj))
    bad_file["kernel"]["invocation_example"] = bad_file["kernel"]["invocation_example"].replace(
        "KERNEL_FILE = '_layer_norm_fwd_1pass_kernel.py'", "KERNEL_FILE = '../../evil.py'")
    (hostile / "b.json").write_text(json.dumps(bad_file))
    bad_model = json.loads(json.dumps(obj))
    bad_model["kernel"]["invocation_example"] = bad_model["kernel"]["invocation_example"].replace(
        "MODEL_NAME = 'meta-llama/Llama-3.1-8B-Instruct'", "MODEL_NAME = '../../../tmp/x\\n/..\\\\y'").replace(
        "WORKLOAD = 'prefill'", "WORKLOAD = '../..'")
    (hostile / "c.json").write_text(json.dumps(bad_model))
    bad_source = json.loads(json.dumps(obj))
    bad_source["kernel"]["source_code"] += "\nimport os\nos.system('echo pwned')\n"
    bad_source["name"] = "other_kernel"
    (hostile / "d.json").write_text(json.dumps(bad_source))
    for fmt, export in (("kb", export_kernelbench), ("fi", export_flashinfer)):
        out = tmp_path / fmt
        summary = export(hostile, out)
        _all_safe(out)
        reasons = {s["artifact"]: s["reason"] for s in summary.skipped}
        assert reasons["a.json"].startswith("artifact name is not a safe kernel name")
        assert reasons["b.json"].startswith("refused: KERNEL_FILE")
        assert reasons["d.json"].startswith("refused: the kernel source may not be imported")
        assert len(summary.written) == 1            # c.json: its model id and workload are slugged
        assert not (tmp_path / "evil.py").exists() and not Path("/tmp/x").exists()
    (task,) = [p.name for p in (tmp_path / "kb").iterdir() if p.is_dir()]
    assert re.fullmatch(r"_layer_norm_fwd_1pass_kernel__tmp--x_--__y-[0-9a-f]{8}__[0-9a-f]{8}", task), task


def test_cli_formats(arts: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["export", str(arts), "--format", "kernelbench", "--out", str(tmp_path / "kb")]) == 0
    assert cli_main(["export", str(arts), "--format", "flashinfer-trace", "--out", str(tmp_path / "fi")]) == 0
    out, err = capsys.readouterr()
    assert out.count("WROTE ") == 2 and "2 written, 1 skipped (CUDA artifact: 1)" in out
    assert "skipped rms_norm_kernel.json: CUDA artifact" in err
    assert json.loads((tmp_path / "fi" / "export_summary.json").read_text())["written"] == 2


def test_flashinfer_files_structure_without_the_package(arts: Path, tmp_path: Path) -> None:
    """What flashinfer-bench's models check, checked by hand (runs where the package is absent)."""
    import ast

    out = tmp_path / "fi"
    export_flashinfer(arts, out)
    defs = [json.loads(p.read_text()) for p in sorted((out / "definitions").rglob("*.json"))]
    assert len(defs) == 2
    dtypes = {"float32", "float16", "bfloat16", "float8_e4m3fn", "float8_e5m2", "int64", "int32", "int16", "int8", "bool"}
    for d in defs:
        assert set(d) >= {"name", "op_type", "axes", "inputs", "outputs", "reference", "tags"}
        assert not set(d["inputs"]) & set(d["outputs"])
        for spec in [*d["inputs"].values(), *d["outputs"].values()]:
            assert spec["dtype"] in dtypes and all(a in d["axes"] for a in spec["shape"] or [])
        assert any(isinstance(n, ast.FunctionDef) and n.name == "run" for n in ast.parse(d["reference"]).body)
        for a in d["axes"].values():
            assert a["type"] == "var" or (a["type"] == "const" and isinstance(a["value"], int) and a["value"] >= 0)
        var = {a for a, v in d["axes"].items() if v["type"] == "var"}
        bound = {a for spec in d["inputs"].values() for a in spec["shape"] or []}
        assert var <= bound                      # every var axis is bound by an input
        op = d["op_type"]
        (sol_file,) = (out / "solutions" / op / d["name"]).glob("*.json")
        sol = json.loads(sol_file.read_text())
        assert sol["definition"] == d["name"] and sol["spec"]["entry_point"].count("::") == 1
        assert sol["spec"]["entry_point"].split("::")[0] in {s["path"] for s in sol["sources"]}
        for line in (out / "workloads" / op / f"{d['name']}.jsonl").read_text().splitlines():
            t = json.loads(line)
            assert t["definition"] == d["name"] and t["solution"] is None and t["evaluation"] is None
            assert set(t["workload"]["axes"]) == var and list(t["workload"]["inputs"]) == list(d["inputs"])
            for spec in t["workload"]["inputs"].values():
                if spec["type"] == "safetensors":
                    assert (out / spec["path"]).is_file() and not Path(spec["path"]).is_absolute()
