"""Sources vLLM's build generates (vkc.extract.cuda.generated) on a small fixture tree: the generator
commands read from CMakeLists.txt, run in a temporary copy (the tree is never written), cached by the
script's bytes, and resolved by the extractor's unit as the including file's headers."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from vkc.extract.cuda import generated
from vkc.extract.cuda.unit import build_unit

_CMAKE = """
set(GEN_SCRIPT
  ${CMAKE_CURRENT_SOURCE_DIR}/csrc/gen/generate.py)
execute_process(
  COMMAND ${CMAKE_COMMAND} -E env
  PYTHONPATH=$ENV{PYTHONPATH}
    ${Python_EXECUTABLE} ${GEN_SCRIPT} ${CUDA_ARCHS_STR}
  RESULT_VARIABLE gen_result
  OUTPUT_FILE ${CMAKE_CURRENT_BINARY_DIR}/gen.log
)
execute_process(
  COMMAND ${CMAKE_COMMAND} -E env
    ${Python_EXECUTABLE} ${GEN_SCRIPT} ${CUDA_ARCHS_STR}
    ${CMAKE_CURRENT_SOURCE_DIR}/csrc/other
  RESULT_VARIABLE gen_result2
)
execute_process(
  COMMAND ${Python_EXECUTABLE} ${GEN_SCRIPT} ${SOME_UNKNOWN_VAR}
)
"""
# writes selector.h (one line per arch digit pair) next to itself or into argv[2]; counts its runs
_SCRIPT = """
import os, sys
out = sys.argv[2] if len(sys.argv) > 2 else os.path.dirname(__file__)
arch = sys.argv[1].replace(".", "")
with open(os.path.join(out, "selector.h"), "w") as f:
    f.write(f"if (n == {arch}) kernel = Pick<{arch}>;\\n")
with open(os.path.join(out, "sm80_kernel_a.cu"), "w") as f:
    f.write("// generated\\n")
runs = os.environ.get("GEN_RUNS")
if runs:
    with open(runs, "a") as f:
        f.write("x")
"""
_CU = """
template <int N> __global__ void Pick(int* p) { p[0] = N; }
__global__ void Default(int* p) {}
using Fn = void (*)(int*);
Fn choose(int n) {
  Fn kernel = Default;
  #include "selector.h"
  return kernel;
}
"""


@pytest.fixture
def tree(tmp_path, monkeypatch):
    root = tmp_path / "tree"
    (root / "csrc/gen").mkdir(parents=True)
    (root / "csrc/other").mkdir(parents=True)
    (root / "CMakeLists.txt").write_text(_CMAKE)
    (root / "csrc/gen/generate.py").write_text(_SCRIPT)
    (root / "csrc/gen/ops.cu").write_text(_CU)
    monkeypatch.setenv("VKC_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("GEN_RUNS", str(tmp_path / "runs"))
    generated._generated.cache_clear()
    yield root
    generated._generated.cache_clear()


def test_generators_mirror_cmake_commands(tree):
    gens = generated.generators(tree)
    assert [(g.script, g.args) for g in gens] == [
        ("csrc/gen/generate.py", ("9.0",)),
        ("csrc/gen/generate.py", ("9.0", "${CMAKE_CURRENT_SOURCE_DIR}/csrc/other"))]   # unknown variable: not run
    assert gens[1].command.startswith("python csrc/gen/generate.py 9.0 csrc/other (vLLM's CMakeLists.txt:")


def test_outputs_are_generated_outside_the_tree_and_cached(tree, tmp_path):
    got = generated.generated_files(tree)
    assert not got.failures
    assert sorted(got.files) == ["csrc/gen/selector.h", "csrc/gen/sm80_kernel_a.cu", "csrc/other/selector.h",
                                 "csrc/other/sm80_kernel_a.cu"]
    assert got.files["csrc/gen/selector.h"].path.read_text() == "if (n == 90) kernel = Pick<90>;\n"
    assert sorted(p.name for p in (tree / "csrc/gen").iterdir()) == ["generate.py", "ops.cu"]   # tree untouched
    assert not any((tree / "csrc/other").iterdir())
    assert (tmp_path / "runs").read_text() == "xx"
    generated._generated.cache_clear()
    generated.generated_files(tree)          # a new process: the disk cache answers
    assert (tmp_path / "runs").read_text() == "xx"
    # the key is the script's bytes: an edit runs it again
    (tree / "csrc/gen/generate.py").write_text(_SCRIPT + "\n# edited\n")
    generated._generated.cache_clear()
    generated.generated_files(tree)
    assert (tmp_path / "runs").read_text() == "xxxx"


def test_a_failing_generator_is_reported_and_remembered(tree, tmp_path):
    (tree / "csrc/gen/generate.py").write_text("import no_such_module_vkc\n")
    got = generated.generated_files(tree)
    assert not got.files
    assert len(got.failures) == 2 and "ModuleNotFoundError" in got.failures[0]
    manifests = [json.loads(p.read_text()) for p in Path(tmp_path / "cache/generated").glob("*/manifest.json")]
    assert all(m["failure"] for m in manifests) and len(manifests) == 2


def test_unit_inlines_a_generated_header_included_in_a_function_body(tree):
    unit = build_unit(tree, "csrc/gen/ops.cu")
    assert not unit.missing_includes
    assert unit.generated == {"csrc/gen/selector.h": generated.generators(tree)[0].command}
    (choose,) = [it for it in unit.items if "choose" in it.defines]
    assert "kernel = Pick<90>;" in choose.text and "// begin csrc/gen/selector.h (generated" in choose.text
    assert "Pick" in choose.refs
    assert unit.generated_in["csrc/gen/selector.h"] == {id(choose)}


def test_a_header_no_generator_writes_stays_missing(tree):
    (tree / "csrc/gen/ops.cu").write_text(_CU.replace("selector.h", "nowhere.h"))
    unit = build_unit(tree, "csrc/gen/ops.cu")
    assert unit.missing_includes == [("nowhere.h", "csrc/gen/ops.cu")]
    assert not unit.generated
